//! The month being closed: its bounds, and `{period}` in URLs.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Months, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    /// The first day of the month.
    pub fn start(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid period")
    }

    /// The first day of the next month (exclusive end).
    pub fn end(self) -> NaiveDate {
        self.start() + Months::new(1)
    }

    /// The month `day` falls in.
    pub fn of(day: NaiveDate) -> Period {
        Period {
            year: day.year(),
            month: day.month(),
        }
    }

    /// The month before.
    pub fn previous(self) -> Period {
        if self.month == 1 {
            Period {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Period {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn last_day(self) -> NaiveDate {
        self.end().pred_opt().expect("a month has a last day")
    }

    pub fn days(self) -> u32 {
        self.last_day().day()
    }

    pub fn contains(self, day: NaiveDate) -> bool {
        day >= self.start() && day < self.end()
    }

    /// Replaces `{period}`, `{year}` and `{month}` in a URL.
    pub fn expand(self, url: &str) -> String {
        url.replace("{period}", &self.to_string())
            .replace("{year}", &format!("{:04}", self.year))
            .replace("{month}", &format!("{:02}", self.month))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Period, String> {
        let bad = || format!("`{s}` is not a period, expected YYYY-MM such as `2025-01`");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
            return Err(bad());
        }
        Ok(Period { year, month })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_templates() {
        let p: Period = "2024-02".parse().unwrap();
        assert_eq!(p.days(), 29);
        assert_eq!(p.end().to_string(), "2024-03-01");
        assert_eq!(
            p.expand("s3://b/{year}/{month}/focus-{period}.csv"),
            "s3://b/2024/02/focus-2024-02.csv"
        );
        assert_eq!(
            "2024-13".parse::<Period>().unwrap_err(),
            "`2024-13` is not a period, expected YYYY-MM such as `2025-01`"
        );
        assert!("24-01".parse::<Period>().is_err());
        let jan = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(Period::of(jan).to_string(), "2026-01");
        assert_eq!(Period::of(jan).previous().to_string(), "2025-12");
    }
}
