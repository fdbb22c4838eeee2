//! Numbers rounded for people.
//!
//! Every function here is deterministic (no locale, no clock) and pinned by the unit tests at the
//! bottom of this file, so the report's text and snapshots do not drift.
//!
//! Conventions:
//! - three significant digits by default, trailing zeros dropped: `3.35 TB/s`, `1.4 ms`, `12.3k`;
//! - decimal SI prefixes (k = 10³, M = 10⁶, …), also for bytes: `80 GB`;
//! - peak figures from spec sheets (roofs, the hardware header) keep four digits, so an H100's
//!   `989.5 TFLOP/s` is not shown as `990 TFLOP/s`: see [`flops_peak`];
//! - a value that is not finite prints as `n/a`.

/// Text for a value that is missing or not a finite number.
pub const NA: &str = "n/a";

const BIG: [(f64, &str); 6] = [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];

/// `v` rounded to `sig` significant digits, half away from zero, on its shortest decimal form:
/// `42.25` → `42.3` and `0.145` → `0.15` at 3 and 2 digits, as a person would round them (the
/// binary value of 0.145 is a hair below it).
pub fn round_sig(v: f64, sig: usize) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let sig = sig.max(1);
    let text = format!("{:e}", v.abs());
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    if digits.len() <= sig {
        return v;
    }
    let mut n: u64 = digits[..sig].iter().fold(0, |acc, d| acc * 10 + u64::from(*d));
    if digits[sig] >= 5 {
        n += 1;
    }
    let r: f64 = format!("{n}e{}", exp - (sig as i32 - 1)).parse().unwrap_or(v);
    if v < 0.0 { -r } else { r }
}

/// `v` with `sig` significant digits, trailing zeros (and a trailing point) dropped.
///
/// `sig(1234.0, 3)` is `"1230"`, `sig(0.0014, 2)` is `"0.0014"`, `sig(2.50, 3)` is `"2.5"`.
pub fn sig(v: f64, sig: usize) -> String {
    if !v.is_finite() {
        return NA.to_string();
    }
    let r = round_sig(v, sig);
    if r == 0.0 {
        return "0".to_string();
    }
    let mag = r.abs().log10().floor() as i32;
    let decimals = (sig as i32 - 1 - mag).max(0) as usize;
    trim_zeros(format!("{r:.decimals$}"))
}

/// `v` with `decimals` decimals, rounded half away from zero like [`round_sig`], trailing zeros
/// dropped: `fixed(12.5, 0)` → `"13"`.
pub fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return NA.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let mag = v.abs().log10().floor() as i64;
    let digits = mag + 1 + decimals as i64;
    let unit = 10f64.powi(-(decimals as i32));
    let r = match digits {
        d if d < 0 => 0.0,
        0 if v.abs() >= 0.5 * unit => unit.copysign(v),
        0 => 0.0,
        d => round_sig(v, d as usize),
    };
    trim_zeros(format!("{r:.decimals$}"))
}

/// Drops trailing zeros after a decimal point, then a bare trailing point; `-0` becomes `0`.
pub fn trim_zeros(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

/// Mantissa and decimal SI prefix (`""`, `k`, `M`, `G`, `T`, `P`, `E`) of `v` rounded to `digits`
/// significant digits. Values below 1000 get no prefix.
pub fn si_parts(v: f64, digits: usize) -> (String, &'static str) {
    if !v.is_finite() {
        return (NA.to_string(), "");
    }
    let r = round_sig(v, digits);
    for (scale, prefix) in BIG {
        if r.abs() >= scale {
            return (sig(r / scale, digits), prefix);
        }
    }
    (sig(r, digits), "")
}

/// `v` with a decimal SI prefix and `unit`, e.g. `si(3.35e12, "B/s", 3)` → `"3.35 TB/s"`.
pub fn si(v: f64, unit: &str, digits: usize) -> String {
    if !v.is_finite() {
        return NA.to_string();
    }
    let (m, p) = si_parts(v, digits);
    format!("{m} {p}{unit}")
}

/// Achieved or modelled FLOP/s, three digits: `4.1e14` → `"410 TFLOP/s"`.
pub fn flops(v: f64) -> String {
    si(v, "FLOP/s", 3)
}

/// A peak FLOP/s figure, four digits: `9.895e14` → `"989.5 TFLOP/s"`.
pub fn flops_peak(v: f64) -> String {
    si(v, "FLOP/s", 4)
}

/// Bandwidth in bytes/s: `3.35e12` → `"3.35 TB/s"`.
pub fn bandwidth(v: f64) -> String {
    si(v, "B/s", 3)
}

/// A size in bytes (decimal prefixes): `8e10` → `"80 GB"`.
pub fn bytes(v: f64) -> String {
    si(v, "B", 3)
}

/// Arithmetic intensity: `295.4` → `"295 FLOP/B"`.
pub fn intensity(v: f64) -> String {
    if !v.is_finite() {
        return NA.to_string();
    }
    if v.abs() >= 1e4 { si(v, "FLOP/B", 3) } else { format!("{} FLOP/B", sig(v, 3)) }
}

/// A duration in seconds, in the largest unit that keeps the number ≥ 1:
/// `0.0014` → `"1.4 ms"`, `90.0` → `"1.5 min"`, `5400.0` → `"1.5 h"`, `3e-7` → `"300 ns"`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() {
        return NA.to_string();
    }
    if secs == 0.0 {
        return "0 s".to_string();
    }
    let r = round_sig(secs, 3);
    let (scale, unit) = duration_unit(r.abs());
    format!("{} {unit}", sig(r / scale, 3))
}

/// The unit a duration of `secs` (or an axis whose largest value is `secs`) is best shown in:
/// (seconds per unit, unit symbol).
pub fn duration_unit(secs: f64) -> (f64, &'static str) {
    let s = secs.abs();
    if s >= 2.0 * 86_400.0 {
        (86_400.0, "d")
    } else if s >= 3_600.0 {
        (3_600.0, "h")
    } else if s >= 60.0 {
        (60.0, "min")
    } else if s >= 1.0 || s == 0.0 {
        (1.0, "s")
    } else if s >= 1e-3 {
        (1e-3, "ms")
    } else if s >= 1e-6 {
        (1e-6, "µs")
    } else {
        (1e-9, "ns")
    }
}

/// A fraction 0–1 as a percentage: `0.31` → `"31%"`, `0.035` → `"3.5%"`, `0.004` → `"0.4%"`,
/// `0.0004` → `"<0.1%"`, `0.0` → `"0%"`.
pub fn pct(fraction: f64) -> String {
    if !fraction.is_finite() {
        return NA.to_string();
    }
    let p = fraction * 100.0;
    let a = p.abs();
    let sign = if p < 0.0 { "-" } else { "" };
    if a == 0.0 {
        "0%".to_string()
    } else if a < 0.05 {
        format!("{sign}<0.1%")
    } else if a < 1.0 {
        format!("{}%", fixed(p, 1))
    } else if round_sig(a, 2) < 10.0 {
        format!("{}%", sig(p, 2))
    } else {
        format!("{}%", fixed(p, 0))
    }
}

/// A count with `k`, `M`, `B` suffixes: `999` → `"999"`, `12_345` → `"12.3k"`,
/// `1_234_567` → `"1.23M"`, `3.4e9` → `"3.4B"`.
pub fn count(n: f64) -> String {
    if !n.is_finite() {
        return NA.to_string();
    }
    let r = round_sig(n, 3);
    let a = r.abs();
    if a >= 1e9 {
        format!("{}B", sig(r / 1e9, 3))
    } else if a >= 1e6 {
        format!("{}M", sig(r / 1e6, 3))
    } else if a >= 1e3 {
        format!("{}k", sig(r / 1e3, 3))
    } else if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        sig(n, 3)
    }
}

/// A token count: `12_300.0` → `"12.3k tokens"`, `1.0` → `"1 token"`.
pub fn tokens(n: f64) -> String {
    if n == 1.0 { "1 token".to_string() } else { format!("{} tokens", count(n)) }
}

/// A speedup factor, two decimals: `1.45` → `"1.45×"`.
pub fn speedup(x: f64) -> String {
    if !x.is_finite() {
        return NA.to_string();
    }
    format!("{x:.2}×")
}

/// A plain ratio or score, three significant digits: `0.8234` → `"0.823"`.
pub fn ratio(x: f64) -> String {
    sig(x, 3)
}

/// An axis tick value (already in the axis unit), precise enough for `step`:
/// `tick(0.30000000000000004, 0.1)` → `"0.3"`, `tick(2.5, 2.5)` → `"2.5"`.
pub fn tick(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let mut decimals = 0usize;
    let mut s = step.abs();
    while decimals < 9 && (s - s.round()).abs() > 1e-9 * s.max(1.0) {
        s *= 10.0;
        decimals += 1;
    }
    trim_zeros(format!("{v:.decimals$}"))
}

/// A "nice" tick step (1, 2, 2.5 or 5 × 10ⁿ) giving about `target` intervals up to `max`.
pub fn nice_step(max: f64, target: usize) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Compact label of a decade on a log axis: `1e13` → `"10 T"`, `1e3` → `"1 k"`, `0.1` → `"0.1"`.
pub fn decade(v: f64) -> String {
    let (m, p) = si_parts(v, 3);
    if p.is_empty() { m } else { format!("{m} {p}") }
}

/// Compact bucket bound for histogram axes: `16.0` → `"16"`, `1024.0` → `"1k"`,
/// `16384.0` → `"16k"`, `1_500_000.0` → `"1.5M"`.
pub fn bucket(v: f64) -> String {
    if !v.is_finite() {
        return "∞".to_string();
    }
    // Powers of two at and above 1024 are read as binary thousands (1024 → 1k), as token
    // buckets usually are.
    let a = v.abs();
    if (1024.0..1_048_576.0).contains(&a) && (a / 1024.0).fract() == 0.0 {
        return format!("{}k", sig(v / 1024.0, 3));
    }
    if a >= 1_048_576.0 && (a / 1_048_576.0).fract() == 0.0 {
        return format!("{}M", sig(v / 1_048_576.0, 3));
    }
    if a < 1000.0 {
        return sig(v, 3);
    }
    let (m, p) = si_parts(v, 3);
    format!("{m}{p}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(sig(1234.0, 3), "1230");
        assert_eq!(sig(0.0014, 2), "0.0014");
        assert_eq!(sig(2.50, 3), "2.5");
        assert_eq!(sig(0.0, 3), "0");
        assert_eq!(sig(-0.0001, 1), "-0.0001");
        assert_eq!(sig(f64::NAN, 3), "n/a");
        assert_eq!(sig(99.96, 3), "100");
        assert_eq!(sig(42.25, 3), "42.3");
        assert_eq!(sig(0.145, 2), "0.15");
        assert_eq!(sig(-2.5, 1), "-3");
        assert_eq!(round_sig(9.895e14, 3), 9.9e14);
    }

    #[test]
    fn flops_and_bandwidth() {
        // Peak figures keep four digits; achieved figures three.
        assert_eq!(flops_peak(9.895e14), "989.5 TFLOP/s");
        assert_eq!(flops(9.895e14), "990 TFLOP/s");
        assert_eq!(flops_peak(1.979e15), "1.979 PFLOP/s");
        assert_eq!(flops_peak(6.7e13), "67 TFLOP/s");
        assert_eq!(flops(4.1e14), "410 TFLOP/s");
        assert_eq!(flops(5.9e12), "5.9 TFLOP/s");
        assert_eq!(flops(999.7e12), "1 PFLOP/s");
        assert_eq!(flops(12.0), "12 FLOP/s");
        assert_eq!(bandwidth(3.35e12), "3.35 TB/s");
        assert_eq!(bandwidth(4.5e11), "450 GB/s");
        assert_eq!(bytes(8e10), "80 GB");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(intensity(295.373), "295 FLOP/B");
        assert_eq!(intensity(0.25), "0.25 FLOP/B");
        assert_eq!(intensity(12_345.0), "12.3 kFLOP/B");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.0014), "1.4 ms");
        assert_eq!(duration(0.000_012_34), "12.3 µs");
        assert_eq!(duration(3e-7), "300 ns");
        assert_eq!(duration(1.0), "1 s");
        assert_eq!(duration(42.25), "42.3 s");
        assert_eq!(duration(90.0), "1.5 min");
        assert_eq!(duration(5400.0), "1.5 h");
        assert_eq!(duration(3.0 * 86_400.0), "3 d");
        assert_eq!(duration(0.0), "0 s");
        // Rounding happens before the unit is chosen: 999.96 ms is 1 s, not "1000 ms".
        assert_eq!(duration(0.999_96), "1 s");
        assert_eq!(duration_unit(0.5), (1e-3, "ms"));
    }

    #[test]
    fn percentages() {
        assert_eq!(pct(0.31), "31%");
        assert_eq!(pct(0.314), "31%");
        assert_eq!(pct(0.035), "3.5%");
        assert_eq!(pct(0.03), "3%");
        assert_eq!(pct(0.0996), "10%");
        assert_eq!(pct(0.004), "0.4%");
        assert_eq!(pct(0.0004), "<0.1%");
        assert_eq!(pct(0.0), "0%");
        assert_eq!(pct(1.0), "100%");
        assert_eq!(pct(-0.05), "-5%");
        assert_eq!(pct(0.125), "13%");
        assert_eq!(pct(0.0025), "0.3%");
        assert_eq!(fixed(12.5, 0), "13");
        assert_eq!(fixed(0.04, 0), "0");
        assert_eq!(fixed(0.6, 0), "1");
        assert_eq!(fixed(0.05, 1), "0.1");
    }

    #[test]
    fn counts_and_tokens() {
        assert_eq!(count(999.0), "999");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(count(1_234_567.0), "1.23M");
        assert_eq!(count(3.4e9), "3.4B");
        assert_eq!(count(999_999.0), "1M");
        assert_eq!(tokens(12_300.0), "12.3k tokens");
        assert_eq!(tokens(1.0), "1 token");
        assert_eq!(tokens(129.0), "129 tokens");
    }

    #[test]
    fn speedups_and_ratios() {
        assert_eq!(speedup(1.45), "1.45×");
        assert_eq!(speedup(1.0), "1.00×");
        assert_eq!(ratio(0.8234), "0.823");
    }

    #[test]
    fn axis_helpers() {
        assert_eq!(nice_step(10.0, 5), 2.0);
        assert_eq!(nice_step(1.0, 4), 0.25 * 1.0);
        assert_eq!(nice_step(37.0, 5), 10.0);
        assert_eq!(nice_step(0.31, 5), 0.1);
        assert_eq!(tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick(2.5, 2.5), "2.5");
        assert_eq!(tick(40.0, 10.0), "40");
        assert_eq!(decade(1e13), "10 T");
        assert_eq!(decade(1e15), "1 P");
        assert_eq!(decade(1e3), "1 k");
        assert_eq!(decade(0.1), "0.1");
        assert_eq!(decade(100.0), "100");
        assert_eq!(bucket(16.0), "16");
        assert_eq!(bucket(1024.0), "1k");
        assert_eq!(bucket(16_384.0), "16k");
        assert_eq!(bucket(1_500_000.0), "1.5M");
        assert_eq!(bucket(2000.0), "2k");
        assert_eq!(bucket(128.0), "128");
        assert_eq!(bucket(512.0), "512");
        assert_eq!(bucket(0.5), "0.5");
    }
}
