//! One trace event, borrowed from the input: the fields tapeout reads, each kept as raw JSON text
//! (`&RawValue`) and interpreted only when needed, so an odd type in an unused arg never rejects
//! an event, and `ts`/`dur` can be converted from their decimal text exactly.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The trace-event fields tapeout reads. Unknown keys are skipped.
#[derive(Debug, Deserialize)]
pub(crate) struct Event<'a> {
    #[serde(borrow)]
    pub ph: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub cat: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub name: Option<&'a RawValue>,
    #[serde(borrow)]
    pub pid: Option<&'a RawValue>,
    #[serde(borrow)]
    pub tid: Option<&'a RawValue>,
    #[serde(borrow)]
    pub ts: Option<&'a RawValue>,
    #[serde(borrow)]
    pub dur: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub args: Option<Args<'a>>,
}

/// The `args` keys tapeout reads (Kineto 2021 and 2023+ spellings).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Args<'a> {
    #[serde(borrow)]
    pub device: Option<&'a RawValue>,
    #[serde(borrow)]
    pub stream: Option<&'a RawValue>,
    #[serde(borrow)]
    pub correlation: Option<&'a RawValue>,
    #[serde(borrow, rename = "External id")]
    pub external_id: Option<&'a RawValue>,
    // The 2021 schema spells it in lower case on GPU and runtime events.
    #[serde(borrow, rename = "external id")]
    pub external_id_2021: Option<&'a RawValue>,
    #[serde(borrow, rename = "registers per thread")]
    pub registers: Option<&'a RawValue>,
    #[serde(borrow, rename = "shared memory")]
    pub shared_memory: Option<&'a RawValue>,
    #[serde(borrow, rename = "est. achieved occupancy %")]
    pub occupancy: Option<&'a RawValue>,
    #[serde(borrow)]
    pub grid: Option<&'a RawValue>,
    #[serde(borrow)]
    pub block: Option<&'a RawValue>,
    #[serde(borrow)]
    pub bytes: Option<&'a RawValue>,
    #[serde(borrow)]
    pub kind: Option<&'a RawValue>,
    #[serde(borrow, rename = "Input Dims")]
    pub input_dims: Option<&'a RawValue>,
    #[serde(borrow, rename = "Input type")]
    pub input_types: Option<&'a RawValue>,
    #[serde(borrow, rename = "Concrete Inputs")]
    pub concrete_inputs: Option<&'a RawValue>,
    #[serde(borrow, rename = "Collective name")]
    pub collective: Option<&'a RawValue>,
    #[serde(borrow, rename = "In msg nelems")]
    pub in_nelems: Option<&'a RawValue>,
    #[serde(borrow, rename = "Out msg nelems")]
    pub out_nelems: Option<&'a RawValue>,
    #[serde(borrow, rename = "Group size")]
    pub group_size: Option<&'a RawValue>,
    #[serde(borrow)]
    pub dtype: Option<&'a RawValue>,
    #[serde(borrow, rename = "Process Group Name")]
    pub pg_name: Option<&'a RawValue>,
    #[serde(borrow, rename = "Process Group Description")]
    pub pg_desc: Option<&'a RawValue>,
}

impl<'a> Args<'a> {
    /// `External id`, or the 2021 `external id`.
    pub fn external_id(&self) -> Option<i64> {
        self.external_id.and_then(raw_i64).or_else(|| self.external_id_2021.and_then(raw_i64))
    }
}

/// A `pid` or `tid`: Kineto writes numbers, numeric strings (`"25738"`, 2021) or labels
/// (`"stream 7"`, `"Spans"`). Numeric strings equal the number so 2021 ops and flows link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Id<'a> {
    Num(i64),
    Text(Cow<'a, str>),
}

impl<'a> Id<'a> {
    pub fn parse(raw: Option<&'a RawValue>) -> Id<'a> {
        let Some(raw) = raw else { return Id::Num(i64::MIN) };
        if let Some(n) = raw_i64(raw) {
            return Id::Num(n);
        }
        Id::Text(raw_str(raw).unwrap_or(Cow::Borrowed(raw.get())))
    }

    pub fn into_owned(self) -> Id<'static> {
        match self {
            Id::Num(n) => Id::Num(n),
            Id::Text(s) => Id::Text(Cow::Owned(s.into_owned())),
        }
    }

    pub fn to_text(&self) -> String {
        match self {
            Id::Num(i64::MIN) => String::new(),
            Id::Num(n) => n.to_string(),
            Id::Text(s) => s.to_string(),
        }
    }
}

/// A JSON string value, or the text of a number or boolean; `None` for null, arrays, objects.
pub(crate) fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let t = raw.get();
    match t.as_bytes().first()? {
        b'"' => match serde_json::from_str::<&str>(t) {
            Ok(s) => Some(Cow::Borrowed(s)),
            // Escapes cannot be borrowed.
            Err(_) => serde_json::from_str::<String>(t).ok().map(Cow::Owned),
        },
        b'n' | b'[' | b'{' => None,
        _ => Some(Cow::Borrowed(t)),
    }
}

/// An integer: a JSON integer, an integral float, or a string holding one.
pub(crate) fn raw_i64(raw: &RawValue) -> Option<i64> {
    let t = raw.get();
    let t = if t.starts_with('"') { t.strip_prefix('"')?.strip_suffix('"')? } else { t };
    if let Ok(v) = t.parse::<i64>() {
        return Some(v);
    }
    let f: f64 = t.parse().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
}

/// A finite number (or a string holding one).
pub(crate) fn raw_f64(raw: &RawValue) -> Option<f64> {
    let t = raw.get();
    let t = if t.starts_with('"') { t.strip_prefix('"')?.strip_suffix('"')? } else { t };
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A JSON array of integers (`grid`, `block`); `None` if any element is not one.
pub(crate) fn raw_int_list(raw: &RawValue) -> Option<Vec<i64>> {
    let items: Vec<&RawValue> = serde_json::from_str(raw.get()).ok()?;
    items.into_iter().map(raw_i64).collect()
}

/// Why a `ts`/`dur` text is not a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Not a JSON number (a string, null, object, ...).
    NotANumber,
    /// Does not fit in i64 nanoseconds.
    Overflow,
}

/// Converts a JSON number of microseconds to integer nanoseconds EXACTLY, from its decimal text.
///
/// Kineto writes `ts` as µs with up to three fraction digits (`4458676522690.655`); 16+
/// significant digits do not survive a trip through f64, so the digits are shifted instead.
/// Digits below 1 ns are rounded half away from zero. Exponents (`1.5e3`) are honoured.
pub fn micros_text_to_ns(text: &str) -> Result<i64, TimeError> {
    let b = text.trim().as_bytes();
    let (neg, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let (int, rest) = b.split_at(int_len);
    let (frac, rest) = match rest.first() {
        Some(b'.') => {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            (&rest[1..1 + n], &rest[1 + n..])
        }
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(TimeError::NotANumber);
    }
    let exp: i64 = match rest {
        [] => 0,
        [b'e' | b'E', e @ ..] => {
            let s = std::str::from_utf8(e).map_err(|_| TimeError::NotANumber)?;
            let s = s.strip_prefix('+').unwrap_or(s);
            s.parse::<i64>().map_err(|_| TimeError::NotANumber)?.clamp(-1000, 1000)
        }
        _ => return Err(TimeError::NotANumber),
    };
    // Digits past the 12th fraction digit cannot change a ns value except in exact-half ties
    // at femtosecond scale; dropping them keeps the mantissa inside i128.
    let frac = &frac[..frac.len().min(12)];
    let int = {
        let lead = int.iter().take_while(|&&c| c == b'0').count();
        &int[lead.min(int.len().saturating_sub(1))..]
    };
    if int.len() > 24 {
        return Err(TimeError::Overflow);
    }
    let mut mantissa: i128 = 0;
    for &c in int.iter().chain(frac) {
        mantissa = mantissa * 10 + (c - b'0') as i128;
    }
    // value = mantissa * 10^(exp - frac.len()) µs = mantissa * 10^(exp - frac.len() + 3) ns.
    let shift = exp - frac.len() as i64 + 3;
    let ns: i128 = if shift >= 0 {
        if shift > 30 {
            return if mantissa == 0 { Ok(0) } else { Err(TimeError::Overflow) };
        }
        mantissa.checked_mul(10i128.pow(shift as u32)).ok_or(TimeError::Overflow)?
    } else if -shift > 38 {
        0
    } else {
        let d = 10i128.pow((-shift) as u32);
        let (q, r) = (mantissa / d, mantissa % d);
        if r * 2 >= d { q + 1 } else { q }
    };
    let ns = if neg { -ns } else { ns };
    i64::try_from(ns).map_err(|_| TimeError::Overflow)
}

/// [`micros_text_to_ns`] for a raw JSON value; strings are not numbers.
pub(crate) fn raw_time_ns(raw: &RawValue) -> Result<i64, TimeError> {
    match raw.get().as_bytes().first() {
        Some(b'-' | b'0'..=b'9') => micros_text_to_ns(raw.get()),
        _ => Err(TimeError::NotANumber),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_ns_from_decimal_text() {
        assert_eq!(micros_text_to_ns("4458676522690.655"), Ok(4_458_676_522_690_655));
        // 16 significant digits: f64 would give ...690654.9 or ...655.1 depending on rounding.
        assert_eq!(micros_text_to_ns("1694128201429795"), Ok(1_694_128_201_429_795_000));
        assert_eq!(micros_text_to_ns("1682725898094377.0"), Ok(1_682_725_898_094_377_000));
        assert_eq!(micros_text_to_ns("156.777"), Ok(156_777));
        assert_eq!(micros_text_to_ns("0.76"), Ok(760));
        assert_eq!(micros_text_to_ns("1.0005"), Ok(1_001));
        assert_eq!(micros_text_to_ns("1.0004999"), Ok(1_000));
        assert_eq!(micros_text_to_ns("-2.5"), Ok(-2_500));
        assert_eq!(micros_text_to_ns("1.5e3"), Ok(1_500_000));
        assert_eq!(micros_text_to_ns("25E-1"), Ok(2_500));
        assert_eq!(micros_text_to_ns("0"), Ok(0));
        assert_eq!(micros_text_to_ns("9999999999999999999"), Err(TimeError::Overflow));
        assert_eq!(micros_text_to_ns("1e400"), Err(TimeError::Overflow));
        assert_eq!(micros_text_to_ns("abc"), Err(TimeError::NotANumber));
        assert_eq!(micros_text_to_ns(""), Err(TimeError::NotANumber));
        let raw: &RawValue = serde_json::from_str("\"12\"").unwrap();
        assert_eq!(raw_time_ns(raw), Err(TimeError::NotANumber));
    }

    #[test]
    fn lenient_scalars() {
        let r = |s: &'static str| -> &'static RawValue { serde_json::from_str(s).unwrap() };
        assert_eq!(raw_i64(r("42")), Some(42));
        assert_eq!(raw_i64(r("\"42\"")), Some(42));
        assert_eq!(raw_i64(r("4.0")), Some(4));
        assert_eq!(raw_i64(r("4.5")), None);
        assert_eq!(raw_str(r("\"a\\\"b\"")).as_deref(), Some("a\"b"));
        assert_eq!(raw_str(r("7")).as_deref(), Some("7"));
        assert_eq!(raw_str(r("null")), None);
        assert_eq!(raw_int_list(r("[8, 1, 1]")), Some(vec![8, 1, 1]));
        assert_eq!(raw_int_list(r("[8, \"x\"]")), None);
        assert_eq!(Id::parse(Some(r("\"25738\""))), Id::Num(25738));
        assert_eq!(Id::parse(Some(r("\"stream 7\""))), Id::Text(Cow::Borrowed("stream 7")));
    }
}
