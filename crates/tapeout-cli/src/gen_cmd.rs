//! `tapeout gen`: seeded traces in the real formats, for benchmarks and load tests.

use std::path::PathBuf;

use anyhow::{Context, bail};
use tapeout_formats::synth::{Profile, RequestFormat, generate_requests, replicate_kineto};

/// The sample rank-0 training trace: the default Kineto template.
const DEFAULT_TEMPLATE: &str = include_str!("../../../sample-traces/kineto/train_2rank/rank0.json");

#[derive(clap::Args)]
pub struct GenArgs {
    #[command(subcommand)]
    pub what: GenWhat,
}

#[derive(clap::Subcommand)]
pub enum GenWhat {
    /// Request log (Azure CSV, BurstGPT CSV or Mooncake JSONL) with token lengths and arrivals
    /// fitted to the Azure 2023 traces (see the `synth` module docs for the distributions).
    Requests {
        /// azure, burstgpt or mooncake.
        #[arg(long, default_value = "azure")]
        format: String,
        /// conversation or code.
        #[arg(long, default_value = "conversation")]
        profile: String,
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (written atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Kineto traces: a template trace repeated per rank, ids and steps renumbered.
    Kineto {
        /// Template trace (default: sample-traces/kineto/train_2rank/rank0.json, built in).
        #[arg(long)]
        template: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        ranks: u32,
        /// Copies of the template's events per rank.
        #[arg(long, default_value_t = 1)]
        copies: u32,
        /// Output directory (rank<N>.json).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(args: GenArgs) -> anyhow::Result<u8> {
    match args.what {
        GenWhat::Requests { format, profile, rows, seed, out } => {
            let format = match format.as_str() {
                "azure" | "azure_llm" => RequestFormat::Azure,
                "burstgpt" => RequestFormat::BurstGpt,
                "mooncake" => RequestFormat::Mooncake,
                f => bail!("--format `{f}`: expected azure, burstgpt or mooncake"),
            };
            let profile = match profile.as_str() {
                "conversation" => Profile::CONVERSATION,
                "code" => Profile::CODE,
                p => bail!("--profile `{p}`: expected conversation or code"),
            };
            // 2023-11-16 18:00:00 UTC, the Azure 2023 traces' day.
            let bytes = generate_requests(format, &profile, rows, seed, 1_700_157_600_000_000_000);
            tapeout_run::write_atomic(&out, &bytes)?;
            eprintln!("wrote {rows} requests to {}", out.display());
        }
        GenWhat::Kineto { template, ranks, copies, out } => {
            let text = match &template {
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                None => DEFAULT_TEMPLATE.as_bytes().to_vec(),
            };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for r in 0..ranks.max(1) {
                let bytes = replicate_kineto(&text, r, ranks.max(1), copies.max(1)).with_context(|| {
                    format!("template {}", template.as_ref().map_or("(built-in)".into(), |p| p.display().to_string()))
                })?;
                tapeout_run::write_atomic(&out.join(format!("rank{r}.json")), &bytes)?;
            }
            eprintln!("wrote {} rank traces ({} copies each) to {}", ranks.max(1), copies.max(1), out.display());
        }
    }
    Ok(0)
}
