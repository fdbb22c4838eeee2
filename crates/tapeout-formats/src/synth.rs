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

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_677), (2023, 11, 16));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
