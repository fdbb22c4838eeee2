//! Timestamp parsing without allocation: `YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}][Z|±HH:MM]` → ns since epoch.

/// Nanoseconds in one day.
pub const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC day (days since epoch) holding `ns`.
pub fn day_of(ns: i64) -> i32 {
    ns.div_euclid(NS_PER_DAY) as i32
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses an ISO-8601-like date-time (as the Azure traces write them) to ns since the epoch, UTC.
///
/// Accepts a space or `T` between date and time, 0 to 9 fraction digits, and an optional `Z` or
/// `±HH:MM` / `±HHMM` offset (no offset means UTC). Returns `None` for anything else.
pub fn parse_datetime_ns(s: &[u8]) -> Option<i64> {
    if s.len() < 19
        || s[4] != b'-'
        || s[7] != b'-'
        || !(s[10] == b' ' || s[10] == b'T')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let y = digits(&s[0..4])? as i64;
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    let h = digits(&s[11..13])?;
    let mi = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_ns: i64 = 0;
    if let Some(b'.') = rest.first() {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        frac_ns = digits(&rest[1..1 + n])? as i64 * 10i64.pow(9 - n as u32);
        rest = &rest[1 + n..];
    }
    let offset_s: i64 = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), hh @ ..] => {
            let (oh, om) = match hh {
                [a, b, b':', c, d] | [a, b, c, d] => (digits(&[*a, *b])?, digits(&[*c, *d])?),
                [a, b] => (digits(&[*a, *b])?, 0),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 3600 + om * 60) as i64;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + sec) as i64 - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// Formats a day number as `YYYY-MM-DD` (inverse of [`days_from_civil`]), for partition names.
pub fn format_day(days: i32) -> String {
    let z = days as i64 + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_2023_seven_digit_fraction() {
        // 2023-11-16T18:17:03Z = 1700158623 s.
        assert_eq!(parse_datetime_ns(b"2023-11-16 18:17:03.9799600"), Some(1_700_158_623_979_960_000));
    }

    #[test]
    fn azure_2024_offset_and_optional_fraction() {
        assert_eq!(parse_datetime_ns(b"2024-05-10 00:00:00.009930+00:00"), Some(1_715_299_200_009_930_000));
        assert_eq!(parse_datetime_ns(b"2024-05-10 00:00:00+00:00"), Some(1_715_299_200_000_000_000));
        assert_eq!(parse_datetime_ns(b"2024-05-10T02:00:00+02:00"), Some(1_715_299_200_000_000_000));
        assert_eq!(parse_datetime_ns(b"2024-05-10T00:00:00Z"), Some(1_715_299_200_000_000_000));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"2023-13-01 00:00:00"[..],
            b"2023-02-29 00:00:00",
            b"2023-11-16 18:17",
            b"2023-11-16 18:17:03.",
            b"2023-11-16 18:17:03.1234567890",
            b"2023-11-16 18:17:03+0",
            b"2023-11-16 18:17:03 extra",
            b"abcd-11-16 18:17:03",
        ] {
            assert_eq!(parse_datetime_ns(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_datetime_ns(b"2024-02-29 00:00:00").is_some());
    }

    #[test]
    fn day_round_trip() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(day_of(1_700_158_623_979_960_000)), "2023-11-16");
        assert_eq!(format_day(day_of(-1)), "1969-12-31");
        for d in [-800_000, -1, 0, 1, 19_000, 20_000, 2_000_000] {
            let s = format_day(d);
            let b = s.as_bytes();
            let y: i64 = s[..s.len() - 6].parse().unwrap();
            let m: u32 = s[s.len() - 5..s.len() - 3].parse().unwrap();
            let dd: u32 = s[s.len() - 2..].parse().unwrap();
            assert_eq!(days_from_civil(y, m, dd), d as i64, "{}", String::from_utf8_lossy(b));
        }
    }
}

/// Parses a fixed UTC offset: `UTC` or `Z`, or `±HH:MM`, `±HHMM`, `±HH` (at most ±14:59);
/// seconds east of UTC. The error says what is expected.
pub fn parse_utc_offset(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(0);
    }
    let bad = || "expected UTC or a fixed offset such as +02:00 or -0700".to_string();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return Err(bad());
    }
    let h: i32 = digits[..2].parse().map_err(|_| bad())?;
    let m: i32 = if digits.len() == 4 { digits[2..].parse().map_err(|_| bad())? } else { 0 };
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod utc_offset_tests {
    use super::parse_utc_offset;

    #[test]
    fn offsets() {
        assert_eq!(parse_utc_offset("UTC"), Ok(0));
        assert_eq!(parse_utc_offset("z"), Err("expected UTC or a fixed offset such as +02:00 or -0700".into()));
        assert_eq!(parse_utc_offset("+02:00"), Ok(7200));
        assert_eq!(parse_utc_offset("-0730"), Ok(-27000));
        assert_eq!(parse_utc_offset("+05"), Ok(18000));
        assert!(parse_utc_offset("+15:00").is_err() && parse_utc_offset("Europe/Paris").is_err());
    }
}
