//! Request timestamps to UTC days, fast and strict.

use chrono::NaiveDate;

/// The UTC day of an RFC 3339 / ISO 8601 timestamp such as
/// `2025-01-31T23:30:00-02:00`, `2025-01-05 10:00:00Z`,
/// `2025-01-05T10:00:00.123456` (no offset: UTC) or a bare `2025-01-05`.
pub fn utc_day(text: &str) -> Option<NaiveDate> {
    let b = text.trim().as_bytes();
    let num = |s: &[u8]| -> Option<u32> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(s.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(&b[0..4])? as i32, num(&b[5..7])?, num(&b[8..10])?)?;
    if b.len() == 10 {
        return Some(date);
    }
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, s) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset_min: i64 = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (oh, om) = match tail {
                [a, b2] => (num(&[*a, *b2])?, 0),
                [a, b2, b':', c, d] | [a, b2, c, d] => (num(&[*a, *b2])?, num(&[*c, *d])?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let v = i64::from(oh * 60 + om);
            if *sign == b'+' { v } else { -v }
        }
        _ => return None,
    };
    let local = i64::from(h * 60 + m);
    let utc = local - offset_min;
    let shift = utc.div_euclid(24 * 60);
    date.checked_add_signed(chrono::Duration::days(shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Option<String> {
        utc_day(s).map(|d| d.to_string())
    }

    #[test]
    fn converts_offsets_to_the_utc_day() {
        assert_eq!(
            day("2025-01-31T23:30:00-02:00").as_deref(),
            Some("2025-02-01")
        );
        assert_eq!(
            day("2025-02-01T01:00:00+05:30").as_deref(),
            Some("2025-01-31")
        );
        assert_eq!(day("2025-01-05 10:00:00Z").as_deref(), Some("2025-01-05"));
        assert_eq!(
            day("2025-01-05T10:00:00.123456").as_deref(),
            Some("2025-01-05")
        );
        assert_eq!(
            day("2025-01-05T00:10:00+0100").as_deref(),
            Some("2025-01-04")
        );
        assert_eq!(day("2025-01-05").as_deref(), Some("2025-01-05"));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2025-02-30T00:00:00Z",
            "2025-01-05T25:00:00Z",
            "2025-01-05T10:00:00+",
            "2025/01/05",
            "2025-01-05T10:00:00.Z",
            "1736071200",
        ] {
            assert_eq!(utc_day(bad), None, "{bad}");
        }
    }
}
