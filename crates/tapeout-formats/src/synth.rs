//! Seeded generators of traces in the real formats, for benchmarks and load tests (`tapeout gen`).
//!
//! Requests ([`generate_requests`]): Poisson arrivals at `rate` per second; prompt and output
//! lengths log-normal, `ln(tokens) ~ N(μ, σ)`, rounded and clamped to [1, max], with (μ, σ)
//! fitted to the real Azure LLM inference 2023 traces (`ln` of every record's tokens; mean and
//! population standard deviation; [`Profile`]):
//!
//! | profile | prompt μ, σ | output μ, σ | max prompt / output | rate (req/s) |
//! |---|---|---|---|---|
//! | code (AzureLLMInferenceTrace_code, 8,819 requests) | 6.9986, 1.3602 | 2.7882, 0.8472 | 7,437 / 1,899 | 2.57 |
//! | conversation (AzureLLMInferenceTrace_conv, 19,366) | 6.6333, 0.9852 | 5.0190, 0.8590 | 14,050 / 1,000 | 5.53 |
//!
//! Mooncake output adds `hash_ids`: each request reuses the blocks of a random earlier prompt
//! for a random share of its own blocks (a shared-prefix model: `reuse` probability), the
//! rest new. The generator is deterministic for a seed (SplitMix64, Box–Muller).
//!
//! Kernel traces ([`replicate_kineto`]): a template Kineto trace repeated `copies` times per
//! rank, each copy shifted in time by the template's span plus 1 ms, with `correlation`,
//! `External id`, `Ev Idx` and flow `id`s offset by copy × 10^7 (so linking stays one-to-one)
//! and `ProfilerStep#N` renumbered; `distributedInfo` set to the rank and world size.
//!
//! Device telemetry ([`generate_telemetry`]): a fleet of `hosts` × `gpus_per_host` GPUs, the
//! first ones assigned to workloads in order, the last `mig_share` of them split into two MIG
//! instances, scraped every `interval_ms` as dcgm-exporter serves `/metrics` (its label set and
//! default fields, [`DCGM_DEFAULT_FIELDS`]) or as `nvidia-smi --query-gpu=… --format=csv -l`
//! logs ([`NVIDIA_SMI_DEFAULT_FIELDS`]). Activity levels per workload are illustrative (a name
//! with `train`: tensor-heavy; `code`: serving with more prefill; any other: DRAM-heavy decode
//! serving; no workload: idle), with Gaussian noise per scrape; UUIDs are stable for a seed,
//! host and index.

use std::fmt::Write as _;

use serde_json::Value;

/// Output format of generated requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    Azure,
    BurstGpt,
    Mooncake,
}

/// Token and arrival distributions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub input_mu: f64,
    pub input_sigma: f64,
    pub input_max: u64,
    pub output_mu: f64,
    pub output_sigma: f64,
    pub output_max: u64,
    /// Mean arrivals per second.
    pub rate: f64,
}

impl Profile {
    /// Fitted to AzureLLMInferenceTrace_code (2023).
    pub const CODE: Profile = Profile {
        input_mu: 6.9986,
        input_sigma: 1.3602,
        input_max: 7437,
        output_mu: 2.7882,
        output_sigma: 0.8472,
        output_max: 1899,
        rate: 2.57,
    };
    /// Fitted to AzureLLMInferenceTrace_conv (2023).
    pub const CONVERSATION: Profile = Profile {
        input_mu: 6.6333,
        input_sigma: 0.9852,
        input_max: 14050,
        output_mu: 5.0190,
        output_sigma: 0.8590,
        output_max: 1000,
        rate: 5.53,
    };
}

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn lognormal_tokens(rng: &mut Rng, mu: f64, sigma: f64, max: u64) -> u64 {
    ((mu + sigma * rng.normal()).exp().round() as u64).clamp(1, max)
}

/// `rows` requests in `format`, starting at `start_ns` (Unix ns; Azure timestamps are UTC).
pub fn generate_requests(format: RequestFormat, profile: &Profile, rows: usize, seed: u64, start_ns: i64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(rows * 48);
    match format {
        RequestFormat::Azure => out.push_str("TIMESTAMP,ContextTokens,GeneratedTokens\n"),
        RequestFormat::BurstGpt => {
            out.push_str("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n")
        }
        RequestFormat::Mooncake => {}
    }
    let mut t_ns = start_ns as f64;
    let mut next_block = 0u64;
    let mut prompts: Vec<Vec<u64>> = Vec::new();
    for i in 0..rows {
        t_ns += -rng.unit().ln() / profile.rate * 1e9;
        let input = lognormal_tokens(&mut rng, profile.input_mu, profile.input_sigma, profile.input_max);
        let output = lognormal_tokens(&mut rng, profile.output_mu, profile.output_sigma, profile.output_max);
        match format {
            RequestFormat::Azure => {
                let secs = (t_ns / 1e9).floor() as i64;
                let frac = (t_ns - secs as f64 * 1e9).max(0.0) as i64 / 100; // 7 decimals, as Azure writes
                let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
                let (y, m, d) = civil_from_days(days);
                let _ = writeln!(
                    out,
                    "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:07},{input},{output}",
                    sod / 3600,
                    sod % 3600 / 60,
                    sod % 60
                );
            }
            RequestFormat::BurstGpt => {
                let secs = ((t_ns - start_ns as f64) / 1e9).round() as i64;
                let (model, log) =
                    if rng.unit() < 0.5 { ("ChatGPT", "Conversation log") } else { ("GPT-4", "API log") };
                let _ = writeln!(out, "{secs},{model},{input},{output},{},{log}", input + output);
            }
            RequestFormat::Mooncake => {
                let ms = ((t_ns - start_ns as f64) / 1e6).round() as i64;
                let blocks = input.div_ceil(512) as usize;
                let mut ids: Vec<u64> = Vec::with_capacity(blocks);
                if !prompts.is_empty() && rng.unit() < 0.6 {
                    let donor = &prompts[(rng.next_u64() % prompts.len() as u64) as usize];
                    let keep = ((donor.len().min(blocks) as f64) * rng.unit()).ceil() as usize;
                    ids.extend_from_slice(&donor[..keep.min(donor.len())]);
                }
                while ids.len() < blocks {
                    ids.push(next_block);
                    next_block += 1;
                }
                let list = ids.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
                let _ = writeln!(
                    out,
                    "{{\"timestamp\": {ms}, \"input_length\": {input}, \"output_length\": {output}, \"hash_ids\": [{list}]}}"
                );
                if i < 100_000 {
                    prompts.push(ids);
                }
            }
        }
    }
    out.into_bytes()
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Why a template cannot be replicated.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("template is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("template has no `traceEvents` array")]
    NotATrace,
}

const ID_OFFSET: i64 = 10_000_000;

/// One rank's trace: `copies` shifted copies of the template's events.
pub fn replicate_kineto(template: &[u8], rank: u32, world: u32, copies: u32) -> Result<Vec<u8>, GenError> {
    let doc: Value = serde_json::from_slice(template)?;
    let Some(events) = doc.get("traceEvents").and_then(Value::as_array) else { return Err(GenError::NotATrace) };
    let ts = |e: &Value| e.get("ts").and_then(Value::as_f64);
    let start = events.iter().filter_map(ts).fold(f64::INFINITY, f64::min);
    let end = events
        .iter()
        .filter_map(|e| Some(ts(e)? + e.get("dur").and_then(Value::as_f64).unwrap_or(0.0)))
        .fold(f64::NEG_INFINITY, f64::max);
    let shift = if end > start { end - start + 1000.0 } else { 1000.0 };
    let mut header = doc.clone();
    let obj = header.as_object_mut().ok_or(GenError::NotATrace)?;
    obj.remove("traceEvents");
    let dist = obj.entry("distributedInfo").or_insert_with(|| serde_json::json!({"backend": "nccl"}));
    if let Some(d) = dist.as_object_mut() {
        d.insert("rank".into(), rank.into());
        d.insert("world_size".into(), world.into());
    }
    let mut out = serde_json::to_vec(&header)?;
    out.pop(); // the closing brace
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(b"\"traceEvents\":[");
    let mut first = true;
    for k in 0..copies {
        for e in events {
            let mut e = e.clone();
            if k > 0 {
                if let Some(t) = ts(&e) {
                    e["ts"] = Value::from(((t + k as f64 * shift) * 1000.0).round() / 1000.0);
                }
                if let Some(args) = e.get_mut("args").and_then(Value::as_object_mut) {
                    for key in ["correlation", "External id", "Ev Idx"] {
                        if let Some(v) = args.get(key).and_then(Value::as_i64) {
                            args.insert(key.into(), (v + k as i64 * ID_OFFSET).into());
                        }
                    }
                }
                if let Some(v) = e.get("id").and_then(Value::as_i64) {
                    e["id"] = (v + k as i64 * ID_OFFSET).into();
                }
                if let Some(n) = e
                    .get("name")
                    .and_then(Value::as_str)
                    .and_then(|n| n.strip_prefix("ProfilerStep#"))
                    .and_then(|n| n.parse::<i64>().ok())
                {
                    e["name"] = format!("ProfilerStep#{}", n + k as i64 * 1000).into();
                }
            }
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut out, &e)?;
        }
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

// ---- Device telemetry ------------------------------------------------------------------------

/// Output format of generated device telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelemetryFormat {
    /// dcgm-exporter's `/metrics` (Prometheus text), one file per host.
    Prometheus,
    /// `nvidia-smi --query-gpu=… --format=csv -l N` log, one file per host.
    NvidiaSmi,
}

/// A seeded GPU fleet to write telemetry for ([`generate_telemetry`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySpec {
    pub seed: u64,
    pub hosts: u32,
    /// GPUs per host.
    pub gpus_per_host: u32,
    /// Number of the first host (`gpu-node-01` for 1).
    pub first_host: u32,
    /// Scrape (or `nvidia-smi -l`) interval, ms.
    pub interval_ms: u64,
    /// Time covered, ms: scrapes at 0, interval, … while below it (at least one).
    pub duration_ms: u64,
    /// Time of the first scrape, ns since the Unix epoch (UTC).
    pub start_ns: i64,
    /// Fields: DCGM field names for Prometheus ([`DCGM_DEFAULT_FIELDS`]), `--query-gpu` names
    /// for nvidia-smi ([`NVIDIA_SMI_DEFAULT_FIELDS`]); empty = the format's default.
    pub fields: Vec<String>,
    pub model: String,
    /// Frame buffer per GPU, MiB.
    pub memory_mib: u64,
    /// Share of the fleet's GPUs in MIG mode (the last ones, in fleet order), each split into two
    /// `3g.<memory/2>gb` GPU instances (GPU_I_ID 1 and 2).
    pub mig_share: f64,
    /// (workload, GPUs) in fleet order (host by host, index by index); GPUs beyond them run no
    /// workload (no pod, no `workload` label).
    pub workloads: Vec<(String, u32)>,
}

impl Default for TelemetrySpec {
    fn default() -> Self {
        TelemetrySpec {
            seed: 1,
            hosts: 1,
            gpus_per_host: 8,
            first_host: 1,
            interval_ms: 15_000,
            duration_ms: 3_600_000,
            start_ns: 1_700_157_600_000_000_000,
            fields: Vec::new(),
            model: "NVIDIA H100 80GB HBM3".into(),
            memory_mib: 81_559,
            mig_share: 0.0,
            workloads: vec![("conversation".into(), 4), ("code".into(), 2), ("train_2rank".into(), 2)],
        }
    }
}

/// A field dcgm-exporter can export: name, Prometheus type, help text (as in its counters CSV).
struct DcgmField {
    name: &'static str,
    counter: bool,
    help: &'static str,
}

const fn field(name: &'static str, counter: bool, help: &'static str) -> DcgmField {
    DcgmField { name, counter, help }
}

/// Every field the generator writes, with dcgm-exporter's type and help text
/// (`etc/default-counters.csv`, `etc/dcp-metrics-included.csv`).
const DCGM_FIELDS: &[DcgmField] = &[
    field("DCGM_FI_DEV_SM_CLOCK", false, "SM clock frequency (in MHz)."),
    field("DCGM_FI_DEV_MEM_CLOCK", false, "Memory clock frequency (in MHz)."),
    field("DCGM_FI_DEV_MEMORY_TEMP", false, "Memory temperature (in C)."),
    field("DCGM_FI_DEV_GPU_TEMP", false, "GPU temperature (in C)."),
    field("DCGM_FI_DEV_POWER_USAGE", false, "Power draw (in W)."),
    field("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", true, "Total energy consumption since boot (in mJ)."),
    field("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", true, "Total number of PCIe retries."),
    field("DCGM_FI_DEV_GPU_UTIL", false, "GPU utilization (in %)."),
    field("DCGM_FI_DEV_MEM_COPY_UTIL", false, "Memory utilization (in %)."),
    field("DCGM_FI_DEV_ENC_UTIL", false, "Encoder utilization (in %)."),
    field("DCGM_FI_DEV_DEC_UTIL", false, "Decoder utilization (in %)."),
    field("DCGM_FI_DEV_XID_ERRORS", false, "Value of the last XID error encountered."),
    field("DCGM_FI_DEV_FB_FREE", false, "Framebuffer memory free (in MiB)."),
    field("DCGM_FI_DEV_FB_USED", false, "Framebuffer memory used (in MiB)."),
    field("DCGM_FI_DEV_FB_RESERVED", false, "Framebuffer memory reserved (in MiB)."),
    field("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", true, "Total number of NVLink bandwidth counters for all lanes"),
    field("DCGM_FI_DEV_VGPU_LICENSE_STATUS", false, "vGPU License status"),
    field("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", true, "Number of remapped rows for uncorrectable errors"),
    field("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", true, "Number of remapped rows for correctable errors"),
    field("DCGM_FI_DEV_ROW_REMAP_FAILURE", false, "Whether remapping of rows has failed"),
    field("DCGM_FI_PROF_GR_ENGINE_ACTIVE", false, "Ratio of time the graphics engine is active."),
    field("DCGM_FI_PROF_SM_ACTIVE", false, "The ratio of cycles an SM has at least 1 warp assigned."),
    field("DCGM_FI_PROF_SM_OCCUPANCY", false, "The ratio of number of warps resident on an SM."),
    field("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", false, "Ratio of cycles the tensor (HMMA) pipe is active."),
    field(
        "DCGM_FI_PROF_DRAM_ACTIVE",
        false,
        "Ratio of cycles the device memory interface is active sending or receiving data.",
    ),
    field("DCGM_FI_PROF_PIPE_FP64_ACTIVE", false, "Ratio of cycles the fp64 pipes are active."),
    field("DCGM_FI_PROF_PIPE_FP32_ACTIVE", false, "Ratio of cycles the fp32 pipes are active."),
    field("DCGM_FI_PROF_PIPE_FP16_ACTIVE", false, "Ratio of cycles the fp16 pipes are active."),
    field(
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        false,
        "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.",
    ),
    field(
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        false,
        "The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.",
    ),
    field(
        "DCGM_FI_PROF_NVLINK_TX_BYTES",
        false,
        "The rate of data transmitted over NVLink, not including protocol headers, in bytes per second.",
    ),
    field(
        "DCGM_FI_PROF_NVLINK_RX_BYTES",
        false,
        "The rate of data received over NVLink, not including protocol headers, in bytes per second.",
    ),
];

/// dcgm-exporter's default field set (`etc/default-counters.csv`, DCP section included):
/// SM_ACTIVE, SM_OCCUPANCY and the FP16/FP32/FP64 pipes are commented out there.
pub const DCGM_DEFAULT_FIELDS: &[&str] = &[
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL",
    "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
];

/// The `--query-gpu` fields the generator writes after `timestamp,index,name,uuid`, with their
/// `--format=csv` header unit.
const SMI_FIELDS: &[(&str, &str)] = &[
    ("utilization.gpu", "%"),
    ("utilization.memory", "%"),
    ("memory.used", "MiB"),
    ("memory.free", "MiB"),
    ("memory.total", "MiB"),
    ("memory.reserved", "MiB"),
    ("power.draw", "W"),
    ("temperature.gpu", ""),
    ("clocks.sm", "MHz"),
    ("clocks.mem", "MHz"),
];

/// `nvidia-smi --query-gpu=timestamp,index,name,uuid,<these> --format=csv` by default.
pub const NVIDIA_SMI_DEFAULT_FIELDS: &[&str] =
    &["utilization.gpu", "utilization.memory", "memory.used", "memory.total", "power.draw"];

/// PCI bus ids of the eight GPUs of an HGX H100 board, by index.
const HGX_BUS: [u32; 8] = [0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb];

/// Mean activity of a workload's GPU (ratios; `fb` = share of memory in use). Illustrative
/// levels, not fitted to traces: serving is DRAM-heavy (decode), training tensor-heavy.
#[derive(Debug, Clone, Copy)]
struct Load {
    util: f64,
    sm: f64,
    occ: f64,
    tensor: f64,
    dram: f64,
    fp16: f64,
    fp32: f64,
    fp64: f64,
    fb: f64,
    pcie_bps: f64,
    nvlink_bps: f64,
}

fn load_of(workload: Option<&str>) -> Load {
    let idle = Load {
        util: 0.0,
        sm: 0.0,
        occ: 0.0,
        tensor: 0.0,
        dram: 0.0,
        fp16: 0.0,
        fp32: 0.0,
        fp64: 0.0,
        fb: 0.0,
        pcie_bps: 2e4,
        nvlink_bps: 0.0,
    };
    let Some(w) = workload.map(str::to_ascii_lowercase) else { return idle };
    if w.contains("train") {
        Load {
            util: 0.97,
            sm: 0.86,
            occ: 0.38,
            tensor: 0.46,
            dram: 0.31,
            fp16: 0.04,
            fp32: 0.09,
            fp64: 0.0,
            fb: 0.82,
            pcie_bps: 1.5e9,
            nvlink_bps: 6e10,
        }
    } else if w.contains("code") {
        Load {
            util: 0.78,
            sm: 0.52,
            occ: 0.24,
            tensor: 0.21,
            dram: 0.46,
            fp16: 0.03,
            fp32: 0.07,
            fp64: 0.0,
            fb: 0.9,
            pcie_bps: 4e7,
            nvlink_bps: 0.0,
        }
    } else {
        Load {
            util: 0.71,
            sm: 0.44,
            occ: 0.21,
            tensor: 0.11,
            dram: 0.58,
            fp16: 0.03,
            fp32: 0.06,
            fp64: 0.0,
            fb: 0.9,
            pcie_bps: 6e7,
            nvlink_bps: 0.0,
        }
    }
}

/// One device (a GPU, or a MIG instance of one) as the generator sees it.
#[derive(Debug, Clone)]
struct SynthDevice {
    index: u32,
    uuid: String,
    bus: String,
    /// (GPU_I_ID, GPU_I_PROFILE) of a MIG instance.
    mig: Option<(u32, String)>,
    workload: Option<String>,
    memory_mib: u64,
    /// Share of the GPU: 1, or 1/2 for each of a MIG GPU's two instances.
    share: f64,
}

/// One scrape of one device.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    util: f64,
    sm: f64,
    occ: f64,
    tensor: f64,
    dram: f64,
    fp16: f64,
    fp32: f64,
    fp64: f64,
    fb_used: u64,
    fb_free: u64,
    fb_reserved: u64,
    power: f64,
    pcie_tx: f64,
    pcie_rx: f64,
    nvlink_tx: f64,
    nvlink_rx: f64,
}

fn noisy(rng: &mut Rng, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    (mean + (0.02 + 0.06 * mean) * rng.normal()).clamp(0.0, 1.0)
}

/// Power of an idle GPU, W.
const IDLE_W: f64 = 68.0;

/// Reserved frame buffer of a GPU (driver and ECC), MiB: about 0.7%.
fn reserved_mib(memory_mib: u64) -> u64 {
    memory_mib * 7 / 1000
}

fn read(rng: &mut Rng, d: &SynthDevice) -> Reading {
    let l = load_of(d.workload.as_deref());
    let mut r = Reading {
        util: noisy(rng, l.util),
        sm: noisy(rng, l.sm),
        occ: noisy(rng, l.occ),
        tensor: noisy(rng, l.tensor),
        dram: noisy(rng, l.dram),
        fp16: noisy(rng, l.fp16),
        fp32: noisy(rng, l.fp32),
        fp64: noisy(rng, l.fp64),
        ..Reading::default()
    };
    if l.util == 0.0 && rng.unit() < 0.1 {
        r.util = 0.01; // a health probe now and then
    }
    r.fb_reserved = if d.mig.is_some() { 0 } else { reserved_mib(d.memory_mib) };
    let usable = d.memory_mib - r.fb_reserved;
    // Allocators and serving engines reserve memory up front: use moves little.
    let fb = if l.fb > 0.0 { (l.fb + 0.006 * rng.normal()).clamp(0.0, 0.97) } else { 0.0 };
    r.fb_used = (usable as f64 * fb).round() as u64;
    r.fb_free = usable - r.fb_used;
    r.power = IDLE_W + 632.0 * (0.25 * r.util + 0.45 * r.tensor + 0.3 * r.dram) + 3.0 * rng.normal().abs();
    let jitter = |rng: &mut Rng, x: f64| (x * (1.0 + 0.1 * rng.normal())).max(0.0).round();
    r.pcie_tx = jitter(rng, l.pcie_bps * 0.4);
    r.pcie_rx = jitter(rng, l.pcie_bps);
    r.nvlink_tx = jitter(rng, l.nvlink_bps);
    r.nvlink_rx = jitter(rng, l.nvlink_bps);
    r
}

/// FNV-1a of `key`, seeded.
fn key_hash(seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A version-4 style UUID from `seed` and `key` (stable: the same GPU gets the same UUID).
fn uuid_of(seed: u64, key: &str) -> String {
    let mut rng = Rng::new(key_hash(seed, key));
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        (a & 0x0fff) | 0x4000,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Why a telemetry spec cannot be generated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TelemetrySpecError {
    #[error("unknown field `{0}` for {1} (known: {2})")]
    UnknownField(String, &'static str, String),
    #[error("the workloads ask for {0} GPUs, the fleet has {1}")]
    TooManyWorkloadGpus(u64, u64),
    #[error("{0} must be positive")]
    NotPositive(&'static str),
    #[error("mig_share must be between 0 and 1, got {0}")]
    MigShare(f64),
}

/// Telemetry of the fleet `spec` in `format`: (file name, bytes) per host, `<host>.prom` or
/// `<host>.csv`. Deterministic for a spec.
///
/// Prometheus: what `curl host:9400/metrics` returns from dcgm-exporter, scrape after scrape:
/// each scrape has `# HELP` and `# TYPE` per field, then one sample per device with the labels
/// dcgm-exporter writes (`gpu`, `UUID`, `pci_bus_id`, `device`, `modelName`, on a MIG instance
/// `GPU_I_PROFILE` and `GPU_I_ID`, `Hostname`, and the pod mapping's `container`, `namespace`,
/// `pod`, empty on a GPU no pod holds) plus `workload` (a pod label, as a relabelling or
/// `--kubernetes-enable-pod-labels` adds it). Several scrapes carry millisecond timestamps (one
/// scrape has none, as dcgm-exporter serves it). A MIG instance reports no GPU_UTIL,
/// MEM_COPY_UTIL, ENC_UTIL or DEC_UTIL (NVML has none per instance) and repeats the GPU's
/// device-level fields (power, clocks, temperatures, counters).
///
/// nvidia-smi: `--format=csv` (units in the header and in the cells, `, ` between cells,
/// `YYYY/MM/DD HH:MM:SS.mmm` local timestamps, here UTC), the header once; a MIG GPU is one row
/// with `[N/A]` utilization, as nvidia-smi prints it.
pub fn generate_telemetry(
    spec: &TelemetrySpec,
    format: TelemetryFormat,
) -> Result<Vec<(String, Vec<u8>)>, TelemetrySpecError> {
    if spec.hosts == 0 {
        return Err(TelemetrySpecError::NotPositive("hosts"));
    }
    if spec.gpus_per_host == 0 {
        return Err(TelemetrySpecError::NotPositive("gpus"));
    }
    if spec.interval_ms == 0 {
        return Err(TelemetrySpecError::NotPositive("interval"));
    }
    if !(0.0..=1.0).contains(&spec.mig_share) {
        return Err(TelemetrySpecError::MigShare(spec.mig_share));
    }
    let total = u64::from(spec.hosts) * u64::from(spec.gpus_per_host);
    let asked: u64 = spec.workloads.iter().map(|(_, n)| u64::from(*n)).sum();
    if asked > total {
        return Err(TelemetrySpecError::TooManyWorkloadGpus(asked, total));
    }
    let fields = resolve_fields(spec, format)?;
    let mut workload_of_gpu = spec.workloads.iter().flat_map(|(w, n)| std::iter::repeat_n(w.clone(), *n as usize));
    let mig_gpus = (spec.mig_share * total as f64).round() as u64;
    let scrapes = (spec.duration_ms / spec.interval_ms).max(1);
    let memory_gb = (spec.memory_mib as f64 / 1024.0).round() as u64;
    let mut files = Vec::new();
    for h in 0..spec.hosts {
        let host = format!("gpu-node-{:02}", spec.first_host + h);
        let mut devices = Vec::new();
        for i in 0..spec.gpus_per_host {
            let fleet_index = u64::from(h) * u64::from(spec.gpus_per_host) + u64::from(i);
            let gpu = SynthDevice {
                index: i,
                uuid: uuid_of(spec.seed, &format!("{host}/{i}")),
                bus: format!(
                    "00000000:{:02X}:00.0",
                    HGX_BUS.get(i as usize).copied().unwrap_or((0x18 + 0x10 * i) % 0x100)
                ),
                mig: None,
                workload: workload_of_gpu.next(),
                memory_mib: spec.memory_mib,
                share: 1.0,
            };
            if fleet_index >= total - mig_gpus {
                let profile = format!("3g.{}gb", memory_gb / 2);
                let instance_mib = (spec.memory_mib - reserved_mib(spec.memory_mib)) / 2;
                for id in [1, 2] {
                    devices.push(SynthDevice {
                        mig: Some((id, profile.clone())),
                        memory_mib: instance_mib,
                        share: 0.5,
                        ..gpu.clone()
                    });
                }
            } else {
                devices.push(gpu);
            }
        }
        let mut rng = Rng::new(key_hash(spec.seed, &host));
        // Device-level values are per GPU: a MIG GPU's instances repeat them.
        let gpus: Vec<String> = {
            let mut u: Vec<String> = devices.iter().map(|d| d.uuid.clone()).collect();
            u.dedup();
            u
        };
        let gpu_of: Vec<usize> =
            devices.iter().map(|d| gpus.iter().position(|u| *u == d.uuid).expect("listed")).collect();
        // Counters since boot, per GPU.
        let mut energy_mj: Vec<f64> = gpus.iter().map(|_| (4.0e9 + 1.0e9 * rng.unit()).round()).collect();
        let mut nvlink_total: Vec<f64> = gpus.iter().map(|_| (1.0e6 * rng.unit()).round()).collect();
        let ms_offset = (rng.next_u64() % 1000) as i64;
        let mut out = String::new();
        if format == TelemetryFormat::NvidiaSmi {
            out.push_str("timestamp, index, name, uuid");
            for f in &fields {
                let unit = SMI_FIELDS.iter().find(|(n, _)| n == f).map_or("", |(_, u)| u);
                let _ = if unit.is_empty() { write!(out, ", {f}") } else { write!(out, ", {f} [{unit}]") };
            }
            out.push('\n');
        }
        for k in 0..scrapes {
            let t_ms = spec.start_ns / 1_000_000 + (k * spec.interval_ms) as i64;
            let readings: Vec<Reading> = devices.iter().map(|d| read(&mut rng, d)).collect();
            // GPU power: idle power plus each instance's share of its own load's power.
            let mut power = vec![IDLE_W; gpus.len()];
            for (i, d) in devices.iter().enumerate() {
                power[gpu_of[i]] += d.share * (readings[i].power - IDLE_W);
            }
            for g in 0..gpus.len() {
                energy_mj[g] += (power[g] * spec.interval_ms as f64).round();
            }
            for (i, d) in devices.iter().enumerate() {
                let bytes =
                    (readings[i].nvlink_tx + readings[i].nvlink_rx) * d.share * spec.interval_ms as f64 / 1000.0;
                nvlink_total[gpu_of[i]] += (bytes / 1e6).round();
            }
            match format {
                TelemetryFormat::Prometheus => {
                    let ts = if scrapes > 1 { format!(" {t_ms}") } else { String::new() };
                    for f in &fields {
                        let def = DCGM_FIELDS.iter().find(|d| d.name == f.as_str()).expect("resolved");
                        let _ = writeln!(out, "# HELP {} {}", def.name, def.help);
                        let _ = writeln!(out, "# TYPE {} {}", def.name, if def.counter { "counter" } else { "gauge" });
                        for (i, d) in devices.iter().enumerate() {
                            let r = &readings[i];
                            let per_gpu_util = matches!(
                                def.name,
                                "DCGM_FI_DEV_GPU_UTIL"
                                    | "DCGM_FI_DEV_MEM_COPY_UTIL"
                                    | "DCGM_FI_DEV_ENC_UTIL"
                                    | "DCGM_FI_DEV_DEC_UTIL"
                            );
                            if d.mig.is_some() && per_gpu_util {
                                continue;
                            }
                            let g = gpu_of[i];
                            let value = dcgm_value(def.name, r, power[g], energy_mj[g], nvlink_total[g]);
                            let _ = writeln!(out, "{}{{{}}} {value}{ts}", def.name, dcgm_labels(spec, &host, d));
                        }
                    }
                }
                TelemetryFormat::NvidiaSmi => {
                    let stamp = smi_timestamp(t_ms + ms_offset);
                    let mut seen = std::collections::HashSet::new();
                    for (i, d) in devices.iter().enumerate() {
                        if !seen.insert(d.uuid.clone()) {
                            continue;
                        }
                        // The GPU: its MIG instances summed.
                        let parts: Vec<usize> = (0..devices.len()).filter(|&j| devices[j].uuid == d.uuid).collect();
                        let used: u64 = parts.iter().map(|&j| readings[j].fb_used).sum();
                        let reserved = reserved_mib(spec.memory_mib);
                        let _ = write!(out, "{stamp}, {}, {}, {}", d.index, spec.model, d.uuid);
                        for f in &fields {
                            let cell = match f.as_str() {
                                "utilization.gpu" if d.mig.is_some() => "[N/A]".to_string(),
                                "utilization.memory" if d.mig.is_some() => "[N/A]".to_string(),
                                "utilization.gpu" => format!("{} %", (readings[i].util * 100.0).round()),
                                "utilization.memory" => format!("{} %", (readings[i].dram * 90.0).round()),
                                "memory.used" => format!("{used} MiB"),
                                "memory.free" => format!("{} MiB", spec.memory_mib - reserved - used),
                                "memory.total" => format!("{} MiB", spec.memory_mib),
                                "memory.reserved" => format!("{reserved} MiB"),
                                "power.draw" => format!("{:.2} W", power[gpu_of[i]]),
                                "temperature.gpu" => format!("{}", (31.0 + 45.0 * readings[i].util).round()),
                                "clocks.sm" => format!("{} MHz", if readings[i].util > 0.02 { 1980 } else { 345 }),
                                _ => format!("{} MHz", 2619),
                            };
                            let _ = write!(out, ", {cell}");
                        }
                        out.push('\n');
                    }
                }
            }
        }
        let ext = if format == TelemetryFormat::Prometheus { "prom" } else { "csv" };
        files.push((format!("{host}.{ext}"), out.into_bytes()));
    }
    Ok(files)
}

fn resolve_fields(spec: &TelemetrySpec, format: TelemetryFormat) -> Result<Vec<String>, TelemetrySpecError> {
    let (defaults, known, what): (&[&str], Vec<&str>, &'static str) = match format {
        TelemetryFormat::Prometheus => {
            (DCGM_DEFAULT_FIELDS, DCGM_FIELDS.iter().map(|f| f.name).collect(), "dcgm-exporter")
        }
        TelemetryFormat::NvidiaSmi => {
            (NVIDIA_SMI_DEFAULT_FIELDS, SMI_FIELDS.iter().map(|f| f.0).collect(), "nvidia-smi")
        }
    };
    if spec.fields.is_empty() {
        return Ok(defaults.iter().map(|s| s.to_string()).collect());
    }
    spec.fields
        .iter()
        .map(|f| {
            let f = f.trim();
            let name = known.iter().find(|k| k.eq_ignore_ascii_case(f));
            name.map(|n| n.to_string())
                .ok_or_else(|| TelemetrySpecError::UnknownField(f.into(), what, known.join(", ")))
        })
        .collect()
}

fn dcgm_labels(spec: &TelemetrySpec, host: &str, d: &SynthDevice) -> String {
    let mut s = format!(
        "gpu=\"{}\",UUID=\"{}\",pci_bus_id=\"{}\",device=\"nvidia{}\",modelName=\"{}\"",
        d.index, d.uuid, d.bus, d.index, spec.model
    );
    if let Some((id, profile)) = &d.mig {
        let _ = write!(s, ",GPU_I_PROFILE=\"{profile}\",GPU_I_ID=\"{id}\"");
    }
    let _ = write!(s, ",Hostname=\"{host}\"");
    match &d.workload {
        Some(w) => {
            let train = w.to_ascii_lowercase().contains("train");
            let pod_base: String =
                w.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
            let pod = match &d.mig {
                Some((id, _)) => format!("{pod_base}-{}-{}{id}", &d.uuid[4..9], d.index),
                None => format!("{pod_base}-{}-{}", &d.uuid[4..9], d.index),
            };
            let (container, namespace) = if train { ("trainer", "training") } else { ("vllm", "serving") };
            let _ = write!(s, ",container=\"{container}\",namespace=\"{namespace}\",pod=\"{pod}\",workload=\"{w}\"");
        }
        None => s.push_str(",container=\"\",namespace=\"\",pod=\"\""),
    }
    s
}

/// A field's value as dcgm-exporter prints it: integers for integer fields, `%f` for doubles.
fn dcgm_value(name: &str, r: &Reading, power: f64, energy_mj: f64, nvlink_total: f64) -> String {
    let pct = |x: f64| format!("{}", (x * 100.0).round() as i64);
    let ratio = |x: f64| format!("{x:.6}");
    match name {
        "DCGM_FI_DEV_SM_CLOCK" => if r.util > 0.02 { "1980" } else { "345" }.into(),
        "DCGM_FI_DEV_MEM_CLOCK" => "2619".into(),
        "DCGM_FI_DEV_MEMORY_TEMP" => format!("{}", (35.0 + 40.0 * r.dram).round() as i64),
        "DCGM_FI_DEV_GPU_TEMP" => format!("{}", (31.0 + 45.0 * r.util).round() as i64),
        "DCGM_FI_DEV_POWER_USAGE" => format!("{power:.6}"),
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" => format!("{}", energy_mj.round() as i64),
        "DCGM_FI_DEV_GPU_UTIL" => pct(r.util),
        "DCGM_FI_DEV_MEM_COPY_UTIL" => pct(r.dram * 0.9),
        "DCGM_FI_DEV_FB_FREE" => r.fb_free.to_string(),
        "DCGM_FI_DEV_FB_USED" => r.fb_used.to_string(),
        "DCGM_FI_DEV_FB_RESERVED" => r.fb_reserved.to_string(),
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" => format!("{}", nvlink_total as i64),
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE" => ratio(r.util * 0.98),
        "DCGM_FI_PROF_SM_ACTIVE" => ratio(r.sm),
        "DCGM_FI_PROF_SM_OCCUPANCY" => ratio(r.occ),
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE" => ratio(r.tensor),
        "DCGM_FI_PROF_DRAM_ACTIVE" => ratio(r.dram),
        "DCGM_FI_PROF_PIPE_FP64_ACTIVE" => ratio(r.fp64),
        "DCGM_FI_PROF_PIPE_FP32_ACTIVE" => ratio(r.fp32),
        "DCGM_FI_PROF_PIPE_FP16_ACTIVE" => ratio(r.fp16),
        "DCGM_FI_PROF_PCIE_TX_BYTES" => format!("{}", r.pcie_tx as i64),
        "DCGM_FI_PROF_PCIE_RX_BYTES" => format!("{}", r.pcie_rx as i64),
        "DCGM_FI_PROF_NVLINK_TX_BYTES" => format!("{}", r.nvlink_tx as i64),
        "DCGM_FI_PROF_NVLINK_RX_BYTES" => format!("{}", r.nvlink_rx as i64),
        // Error counters, XID, license and remap status: healthy devices read 0.
        _ => "0".into(),
    }
}

/// `YYYY/MM/DD HH:MM:SS.mmm` of `ms` since the epoch (UTC).
fn smi_timestamp(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}.{milli:03}", sod / 3600, sod % 3600 / 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_deterministic_and_parse() {
        let a = generate_requests(RequestFormat::Azure, &Profile::CONVERSATION, 2000, 7, 1_700_000_000_000_000_000);
        assert_eq!(
            a,
            generate_requests(RequestFormat::Azure, &Profile::CONVERSATION, 2000, 7, 1_700_000_000_000_000_000)
        );
        let text = String::from_utf8(a).unwrap();
        assert_eq!(text.lines().count(), 2001);
        assert!(text.lines().nth(1).unwrap().starts_with("2023-11-14 22:13:"), "{}", text.lines().nth(1).unwrap());
        // The fitted log-normal: the mean of ln(prompt tokens) is near μ = 6.6333.
        let ln_mean: f64 =
            text.lines().skip(1).map(|l| (l.split(',').nth(1).unwrap().parse::<f64>().unwrap()).ln()).sum::<f64>()
                / 2000.0;
        assert!((ln_mean - 6.6333).abs() < 0.06, "{ln_mean}");
        for f in [RequestFormat::BurstGpt, RequestFormat::Mooncake] {
            let b = generate_requests(f, &Profile::CODE, 100, 1, 0);
            let p = crate::parse_all(&b, None, &crate::ParseOptions { time_origin_ns: 0 }, Some("g"), "g").unwrap();
            assert_eq!((p.batch.num_rows(), p.rejects.len()), (100, 0));
        }
    }

    fn text(files: &[(String, Vec<u8>)], name: &str) -> String {
        String::from_utf8(files.iter().find(|(n, _)| n == name).expect("file").1.clone()).unwrap()
    }

    #[test]
    fn dcgm_exporter_scrapes() {
        let spec = TelemetrySpec {
            hosts: 2,
            gpus_per_host: 2,
            interval_ms: 30_000,
            duration_ms: 90_000,
            mig_share: 0.25,
            workloads: vec![("conversation".into(), 2), ("train_2rank".into(), 1)],
            fields: vec!["dcgm_fi_dev_gpu_util".into(), "DCGM_FI_DEV_FB_USED".into()],
            ..TelemetrySpec::default()
        };
        let files = generate_telemetry(&spec, TelemetryFormat::Prometheus).unwrap();
        assert_eq!(files, generate_telemetry(&spec, TelemetryFormat::Prometheus).unwrap(), "deterministic");
        assert_eq!(files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["gpu-node-01.prom", "gpu-node-02.prom"]);
        let one = text(&files, "gpu-node-01.prom");
        // 3 scrapes × 2 fields × (HELP + TYPE + 2 GPUs).
        assert_eq!(one.lines().count(), 3 * 2 * 4);
        assert!(
            one.starts_with("# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n")
        );
        let first = one.lines().nth(2).unwrap();
        let uuid = uuid_of(1, "gpu-node-01/0");
        assert!(
            first.starts_with(&format!(
                "DCGM_FI_DEV_GPU_UTIL{{gpu=\"0\",UUID=\"{uuid}\",pci_bus_id=\"00000000:18:00.0\",device=\"nvidia0\",\
                 modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-node-01\",container=\"vllm\",namespace=\"serving\",\
                 pod=\"conversation-"
            )),
            "{first}"
        );
        assert!(first.contains(",workload=\"conversation\"} ") && first.ends_with(" 1700157600000"), "{first}");
        assert!(one.lines().last().unwrap().ends_with(" 1700157660000"));
        // Host 2: GPU 0 trains, GPU 1 (the last of the fleet) is in MIG mode with no workload:
        // two instances, FB_USED only (no GPU_UTIL per instance).
        let two = text(&files, "gpu-node-02.prom");
        assert!(two.contains("workload=\"train_2rank\""));
        let mig: Vec<&str> = two.lines().filter(|l| l.contains("GPU_I_ID")).collect();
        assert_eq!(mig.len(), 3 * 2);
        assert!(mig.iter().all(|l| l.starts_with("DCGM_FI_DEV_FB_USED{gpu=\"1\"")));
        assert!(mig[0].contains(",GPU_I_PROFILE=\"3g.40gb\",GPU_I_ID=\"1\",Hostname=\"gpu-node-02\",container=\"\",namespace=\"\",pod=\"\"} "));
        assert!(!mig[0].contains("workload"));
        // One scrape: no timestamps, as dcgm-exporter serves it.
        let single = TelemetrySpec { duration_ms: 30_000, ..spec.clone() };
        let files = generate_telemetry(&single, TelemetryFormat::Prometheus).unwrap();
        let samples: Vec<String> =
            text(&files, "gpu-node-01.prom").lines().filter(|l| !l.starts_with('#')).map(String::from).collect();
        assert_eq!(samples.len(), 4);
        assert!(samples.iter().all(|l| l.rsplit_once("} ").is_some_and(|(_, v)| !v.contains(' '))), "{samples:?}");
        let bad = TelemetrySpec { fields: vec!["DCGM_FI_NOPE".into()], ..spec.clone() };
        assert!(matches!(
            generate_telemetry(&bad, TelemetryFormat::Prometheus),
            Err(TelemetrySpecError::UnknownField(..))
        ));
        let bad = TelemetrySpec { workloads: vec![("x".into(), 5)], ..spec };
        assert_eq!(
            generate_telemetry(&bad, TelemetryFormat::Prometheus),
            Err(TelemetrySpecError::TooManyWorkloadGpus(5, 4))
        );
    }

    #[test]
    fn default_fleet_levels() {
        // Serving GPUs are busy (GPU_UTIL well above an idle threshold), idle ones below 5%, and
        // used + free + reserved is the frame buffer.
        let spec = TelemetrySpec {
            gpus_per_host: 3,
            duration_ms: 600_000,
            workloads: vec![("conversation".into(), 1), ("train_2rank".into(), 1)],
            fields: vec!["DCGM_FI_DEV_GPU_UTIL".into(), "DCGM_FI_DEV_FB_USED".into(), "DCGM_FI_DEV_FB_FREE".into()],
            ..TelemetrySpec::default()
        };
        let out = text(&generate_telemetry(&spec, TelemetryFormat::Prometheus).unwrap(), "gpu-node-01.prom");
        let value = |l: &str| l.rsplit_once("} ").unwrap().1.split(' ').next().unwrap().parse::<f64>().unwrap();
        for l in out.lines().filter(|l| l.starts_with("DCGM_FI_DEV_GPU_UTIL")) {
            if l.contains("workload=") {
                assert!(value(l) >= 40.0, "{l}");
            } else {
                assert!(value(l) < 5.0, "{l}");
            }
        }
        let used: Vec<f64> = out.lines().filter(|l| l.starts_with("DCGM_FI_DEV_FB_USED")).map(value).collect();
        let free: Vec<f64> = out.lines().filter(|l| l.starts_with("DCGM_FI_DEV_FB_FREE")).map(value).collect();
        assert_eq!(used.len(), 40 * 3);
        for (u, f) in used.iter().zip(&free) {
            assert_eq!(u + f + reserved_mib(81_559) as f64, 81_559.0);
        }
    }

    #[test]
    fn nvidia_smi_log() {
        let spec = TelemetrySpec {
            gpus_per_host: 2,
            interval_ms: 1000,
            duration_ms: 3000,
            mig_share: 0.5,
            workloads: vec![("inference_1rank".into(), 1)],
            ..TelemetrySpec::default()
        };
        let files = generate_telemetry(&spec, TelemetryFormat::NvidiaSmi).unwrap();
        let log = text(&files, "gpu-node-01.csv");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(
            lines[0],
            "timestamp, index, name, uuid, utilization.gpu [%], utilization.memory [%], memory.used [MiB], \
             memory.total [MiB], power.draw [W]"
        );
        assert_eq!(lines.len(), 1 + 3 * 2);
        let cells: Vec<&str> = lines[1].split(", ").collect();
        assert_eq!(cells.len(), 9);
        assert!(cells[0].starts_with("2023/11/16 18:00:00."), "{}", cells[0]);
        assert_eq!(&cells[1..4], ["0", "NVIDIA H100 80GB HBM3", uuid_of(1, "gpu-node-01/0").as_str()]);
        assert!(cells[4].ends_with(" %") && cells[6].ends_with(" MiB") && cells[8].ends_with(" W"));
        assert_eq!(cells[7], "81559 MiB");
        // The MIG GPU is one row, its utilization not available.
        let mig: Vec<&str> = lines[2].split(", ").collect();
        assert_eq!((mig[1], mig[4], mig[5]), ("1", "[N/A]", "[N/A]"));
        assert!(lines[3].starts_with("2023/11/16 18:00:01."));
        assert_eq!(smi_timestamp(1_700_157_600_512), "2023/11/16 18:00:00.512");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_677), (2023, 11, 16));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
