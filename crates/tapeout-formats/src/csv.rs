//! The small CSV dialect the request traces use: one record per line, `,` separated, optional
//! `"` quoting (with `""` escapes) but no newlines inside fields, `\r\n` or `\n` line ends.

/// Iterates the lines of `chunk` with their 1-based numbers, starting at `first_line`.
/// A trailing `\r` is removed; the last line need not end with `\n`.
pub fn lines(chunk: &[u8], first_line: u64) -> impl Iterator<Item = (u64, &[u8])> {
    let mut rest = chunk;
    let mut n = first_line;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let out = (n, line);
        n += 1;
        Some(out)
    })
}

/// Splits one record into fields (unquoting `"…"` fields) into `out`. Returns false for an
/// unterminated quote.
pub fn split_fields<'a>(line: &'a [u8], out: &mut Vec<std::borrow::Cow<'a, [u8]>>) -> bool {
    out.clear();
    if memchr::memchr(b'"', line).is_none() {
        out.extend(line.split(|&c| c == b',').map(std::borrow::Cow::Borrowed));
        return true;
    }
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            let mut field = Vec::new();
            i += 1;
            loop {
                match line.get(i) {
                    None => return false,
                    Some(b'"') if line.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            out.push(std::borrow::Cow::Owned(field));
            match line.get(i) {
                None => return true,
                Some(b',') => i += 1,
                Some(_) => return false,
            }
        } else {
            let end = memchr::memchr(b',', &line[i..]).map_or(line.len(), |j| i + j);
            out.push(std::borrow::Cow::Borrowed(&line[i..end]));
            if end == line.len() {
                return true;
            }
            i = end + 1;
        }
    }
}

/// Why a numeric field did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    Empty,
    Negative,
    Overflow,
    NotANumber,
}

impl NumError {
    /// Human wording, used in quarantine reasons.
    pub fn describe(self) -> &'static str {
        match self {
            NumError::Empty => "empty value",
            NumError::Negative => "negative value",
            NumError::Overflow => "number out of range",
            NumError::NotANumber => "not a number",
        }
    }
}

/// Parses a non-negative decimal integer (surrounding spaces allowed).
pub fn parse_count(b: &[u8]) -> Result<i64, NumError> {
    let b = b.trim_ascii();
    if b.is_empty() {
        return Err(NumError::Empty);
    }
    if b[0] == b'-' {
        return if b[1..].iter().all(u8::is_ascii_digit) && b.len() > 1 {
            if b[1..].iter().all(|&c| c == b'0') { Ok(0) } else { Err(NumError::Negative) }
        } else {
            Err(NumError::NotANumber)
        };
    }
    let digits = b.strip_prefix(b"+").unwrap_or(b);
    if digits.is_empty() {
        return Err(NumError::NotANumber);
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(NumError::NotANumber);
        }
        v = v.checked_mul(10).and_then(|v| v.checked_add((c - b'0') as i64)).ok_or(NumError::Overflow)?;
    }
    Ok(v)
}

/// Parses a finite, non-negative decimal number (surrounding spaces allowed).
pub fn parse_nonneg_f64(b: &[u8]) -> Result<f64, NumError> {
    let b = b.trim_ascii();
    if b.is_empty() {
        return Err(NumError::Empty);
    }
    let s = std::str::from_utf8(b).map_err(|_| NumError::NotANumber)?;
    let v: f64 = s.parse().map_err(|_| NumError::NotANumber)?;
    if !v.is_finite() {
        return Err(NumError::Overflow);
    }
    if v < 0.0 {
        return Err(NumError::Negative);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_number_and_strip_cr() {
        let v: Vec<_> = lines(b"a\r\nb\n\nc", 7).collect();
        assert_eq!(v, vec![(7, &b"a"[..]), (8, b"b"), (9, b""), (10, b"c")]);
    }

    #[test]
    fn quoted_fields() {
        let mut out = Vec::new();
        assert!(split_fields(b"1,\"a,b\",\"say \"\"hi\"\"\",", &mut out));
        let v: Vec<&[u8]> = out.iter().map(|c| c.as_ref()).collect();
        assert_eq!(v, vec![&b"1"[..], b"a,b", b"say \"hi\"", b""]);
        assert!(!split_fields(b"1,\"open", &mut out));
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count(b" 42 "), Ok(42));
        assert_eq!(parse_count(b"-3"), Err(NumError::Negative));
        assert_eq!(parse_count(b"-0"), Ok(0));
        assert_eq!(parse_count(b"99999999999999999999"), Err(NumError::Overflow));
        assert_eq!(parse_count(b"4.5"), Err(NumError::NotANumber));
        assert_eq!(parse_count(b""), Err(NumError::Empty));
        assert_eq!(parse_nonneg_f64(b"1.5"), Ok(1.5));
        assert_eq!(parse_nonneg_f64(b"-1.5"), Err(NumError::Negative));
        assert_eq!(parse_nonneg_f64(b"inf"), Err(NumError::Overflow));
    }
}
