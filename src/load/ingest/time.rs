//! Request timestamps to UTC days, fast and strict.

use chrono::NaiveDate;

/// The UTC day of an RFC 3339 / ISO 8601 timestamp such as
/// `2025-01-31T23:30:00-02:00`, `2025-01-05 10:00:00Z`,
/// `2025-01-05T10:00:00.123456` (no offset: UTC) or a bare `2025-01-05`.
pub fn utc_day(text: &str) -> Option<NaiveDate> {
    let (date, shift) = split(text.trim().as_bytes())?;
    calendar_date(date)?.checked_add_signed(chrono::Duration::days(shift))
}

/// [`utc_day`] as days since 1970-01-01, for a column of timestamps: the
/// calendar date of the previous value is remembered, so that logs in time
/// order (most rows share their date with the row before) are parsed
/// without a calendar computation.
#[derive(Debug, Default)]
pub struct EpochDays {
    last: Option<([u8; 10], i64)>,
}

impl EpochDays {
    pub fn day(&mut self, text: &str) -> Option<i32> {
        let (date, shift) = split(text.trim().as_bytes())?;
        let days = match &self.last {
            Some((bytes, days)) if bytes[..] == *date => *days,
            _ => {
                let days = (calendar_date(date)? - epoch()).num_days();
                self.last = Some((date.try_into().ok()?, days));
                days
            }
        };
        i32::try_from(days + shift).ok()
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
}

/// The `YYYY-MM-DD` of a checked timestamp and the days to add to it for
/// the UTC day (-1, 0 or 1); `None` when it is not one.
fn split(b: &[u8]) -> Option<(&[u8], i64)> {
    let t = fields(b)?;
    let utc = i64::from(t.hour * 60 + t.minute) - t.offset_min;
    Some((t.date, utc.div_euclid(24 * 60)))
}

/// A checked timestamp's parts as written (a bare date is midnight UTC).
struct Fields<'a> {
    date: &'a [u8],
    hour: u32,
    minute: u32,
    second: u32,
    /// The digits of the fraction of the second, as written (none: empty).
    fraction: &'a [u8],
    /// The offset from UTC, in minutes.
    offset_min: i64,
}

/// The grammar of [`utc_day`] and [`utc_micros`]: one parser for both.
fn fields(b: &[u8]) -> Option<Fields<'_>> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = &b[..10];
    if !date
        .iter()
        .enumerate()
        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    {
        return None;
    }
    let midnight = Fields {
        date,
        hour: 0,
        minute: 0,
        second: 0,
        fraction: &[],
        offset_min: 0,
    };
    if b.len() == 10 {
        return Some(midnight);
    }
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, s) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut fraction: &[u8] = &[];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        fraction = &frac[..digits];
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
    Some(Fields {
        hour: h,
        minute: m,
        second: s,
        fraction,
        offset_min,
        ..midnight
    })
}

/// The instant of a timestamp [`utc_day`] reads, in microseconds since
/// 1970-01-01T00:00:00Z (fractions beyond a microsecond cut): what orders
/// the requests of a conversation.
pub fn utc_micros(text: &str) -> Option<i64> {
    let t = fields(text.trim().as_bytes())?;
    let days = (calendar_date(t.date)? - epoch()).num_days();
    let seconds =
        days * 86_400 + i64::from(t.hour * 3600 + t.minute * 60 + t.second) - t.offset_min * 60;
    // Microseconds: the first six digits of the fraction, padded.
    let micros = (0..6).fold(0i64, |a, i| {
        a * 10 + t.fraction.get(i).map_or(0, |d| i64::from(d - b'0'))
    });
    Some(seconds * 1_000_000 + micros)
}

/// A valid calendar date from checked `YYYY-MM-DD` bytes.
fn calendar_date(d: &[u8]) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        i32::try_from(num(&d[0..4])?).ok()?,
        num(&d[5..7])?,
        num(&d[8..10])?,
    )
}

/// The value of a run of ASCII digits.
fn num(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0')))
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
    fn epoch_days_agree_with_utc_day_and_remember_the_date() {
        let mut days = EpochDays::default();
        for text in [
            "2025-01-31T23:30:00-02:00",
            "2025-01-31T10:00:00Z",
            "2025-01-31T00:10:00+0100",
            " 2025-02-01 ",
            "2025-02-30T00:00:00Z",
            "2025-02-01T25:00:00Z",
            "1969-12-31T23:00:00-02:00",
            "yesterday",
            "",
        ] {
            let expected = utc_day(text).map(|d| (d - epoch()).num_days() as i32);
            assert_eq!(days.day(text), expected, "{text}");
        }
    }

    #[test]
    fn instants_are_utc_microseconds() {
        let at = |s: &str| {
            utc_micros(s).map(|us| {
                chrono::DateTime::from_timestamp_micros(us)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            })
        };
        assert_eq!(
            at("2025-01-31T23:30:00-02:00").as_deref(),
            Some("2025-02-01T01:30:00.000000Z")
        );
        assert_eq!(
            at("2025-01-05 10:00:00.1234567Z").as_deref(),
            Some("2025-01-05T10:00:00.123456Z")
        );
        assert_eq!(
            at("2025-01-05T10:00:00.5+0530").as_deref(),
            Some("2025-01-05T04:30:00.500000Z")
        );
        assert_eq!(
            at("2025-01-05").as_deref(),
            Some("2025-01-05T00:00:00.000000Z")
        );
        assert_eq!(utc_micros("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(utc_micros("1969-12-31T23:59:59Z"), Some(-1_000_000));
        for bad in [
            "",
            "yesterday",
            "2025-02-30T00:00:00Z",
            "2025-01-05T10:00:00.",
        ] {
            assert_eq!(utc_micros(bad), None, "{bad}");
        }
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
