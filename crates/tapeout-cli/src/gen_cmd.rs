//! `tapeout gen`: seeded traces in the real formats, for benchmarks and load tests.

use std::path::PathBuf;

use anyhow::{Context, bail};
use tapeout_formats::synth::{
    Profile, RequestFormat, TelemetryFormat, TelemetrySpec, generate_requests, generate_telemetry, replicate_kineto,
};

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
    /// Device telemetry of a GPU fleet: dcgm-exporter scrapes (Prometheus text, the exporter's
    /// label set, MIG labels included) or nvidia-smi CSV logs, one file per host
    /// (`gpu-node-NN.prom` / `.csv`), starting 2023-11-16 18:00:00 UTC.
    Telemetry {
        /// prometheus (dcgm-exporter `/metrics`) or nvidia-smi (`--query-gpu … --format=csv`).
        #[arg(long, default_value = "prometheus")]
        format: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1)]
        hosts: u32,
        /// GPUs per host.
        #[arg(long, default_value_t = 8)]
        gpus: u32,
        /// Number of the first host name (gpu-node-01 for 1).
        #[arg(long, default_value_t = 1)]
        first_host: u32,
        /// Seconds between scrapes (nvidia-smi `-l`).
        #[arg(long, default_value_t = 15.0)]
        interval: f64,
        /// Seconds covered: scrapes at 0, interval, … below it.
        #[arg(long, default_value_t = 3600.0)]
        duration: f64,
        /// Fields, comma-separated: DCGM field names (default: dcgm-exporter's default counters)
        /// or nvidia-smi `--query-gpu` names after timestamp,index,name,uuid (default:
        /// utilization.gpu,utilization.memory,memory.used,memory.total,power.draw).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// modelName / name of every GPU.
        #[arg(long, default_value = "NVIDIA H100 80GB HBM3")]
        model: String,
        /// Frame buffer per GPU, MiB.
        #[arg(long, default_value_t = 81_559)]
        memory_mib: u64,
        /// Share of the GPUs in MIG mode (the last ones in fleet order), two 3g instances each.
        #[arg(long, default_value_t = 0.0)]
        mig_share: f64,
        /// Workloads in fleet order, NAME[:GPUS] comma-separated (GPUS default 1); the GPUs after
        /// them run no workload; '' for none. Default: conversation:4,code:2,train_2rank:2, as far
        /// as the fleet has GPUs.
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<String>,
        /// none, gz or zst (adds .gz / .zst to the file names).
        #[arg(long, default_value = "none")]
        compression: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Compresses `bytes` as `how` (none, gz, zst): the bytes and the file name suffix.
fn compress(bytes: Vec<u8>, how: &str) -> anyhow::Result<(Vec<u8>, &'static str)> {
    use std::io::Write as _;
    Ok(match how {
        "none" => (bytes, ""),
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&bytes)?;
            (e.finish()?, ".gz")
        }
        "zst" => (zstd::encode_all(bytes.as_slice(), 3)?, ".zst"),
        c => bail!("--compression `{c}`: expected none, gz or zst"),
    })
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
        GenWhat::Telemetry {
            format,
            seed,
            hosts,
            gpus,
            first_host,
            interval,
            duration,
            fields,
            model,
            memory_mib,
            mig_share,
            workloads,
            compression,
            out,
        } => {
            let format = match format.as_str() {
                "prometheus" | "dcgm" | "dcgm-exporter" => TelemetryFormat::Prometheus,
                "nvidia-smi" | "nvidia_smi" => TelemetryFormat::NvidiaSmi,
                f => bail!("--format `{f}`: expected prometheus or nvidia-smi"),
            };
            if !(interval > 0.0 && duration > 0.0) {
                bail!("--interval and --duration must be positive seconds");
            }
            let workloads = if workloads.is_empty() {
                // The default mix, as far as the fleet has GPUs for it.
                let mut left = u64::from(hosts) * u64::from(gpus);
                TelemetrySpec::default()
                    .workloads
                    .into_iter()
                    .filter_map(|(w, n)| {
                        let n = u64::from(n).min(left);
                        left -= n;
                        (n > 0).then_some((w, n as u32))
                    })
                    .collect()
            } else {
                workloads
                    .iter()
                    .filter(|w| !w.trim().is_empty())
                    .map(|w| match w.trim().split_once(':') {
                        None => Ok((w.trim().to_string(), 1)),
                        Some((name, n)) => match n.trim().parse::<u32>() {
                            Ok(n) if !name.trim().is_empty() => Ok((name.trim().to_string(), n)),
                            _ => bail!("--workloads `{w}`: expected NAME or NAME:GPUS"),
                        },
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            };
            let spec = TelemetrySpec {
                seed,
                hosts,
                gpus_per_host: gpus,
                first_host,
                interval_ms: (interval * 1000.0).round() as u64,
                duration_ms: (duration * 1000.0).round() as u64,
                fields,
                model,
                memory_mib,
                mig_share,
                workloads,
                ..TelemetrySpec::default()
            };
            let files = generate_telemetry(&spec, format)?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let (hosts_written, mut total) = (files.len(), 0);
            for (name, bytes) in files {
                let (bytes, suffix) = compress(bytes, &compression)?;
                total += bytes.len();
                tapeout_run::write_atomic(&out.join(format!("{name}{suffix}")), &bytes)?;
            }
            eprintln!("wrote {hosts_written} host files ({total} bytes) to {}", out.display());
        }
    }
    Ok(0)
}
