//! Business outcomes exported by other systems (`[sources] outcomes`) —
//! a ticket system's resolved tickets — counted per team and outcome for
//! value-based charging. Rows are checked one by one (such exports hold a
//! row per outcome, not per token); rows of other months are skipped and
//! counted; a `reference` seen twice for one outcome counts once. Nothing
//! here touches the request logs.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use super::{QuarantineKind, QuarantinedRow, first_line, missing_columns, scan, time};
use crate::config::FileFormat;
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::money::Decimal;
use crate::period::Period;
use crate::schema::outcome::*;

/// The most outcomes one row may count: a billion, like the tokens of one
/// request. Sums over any month then stay far inside a `u64`, and their
/// product with a rate inside a `Decimal`.
pub const MAX_OUTCOME_COUNT: u64 = 1_000_000_000;

/// An outcome object, and its container format (from its name when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeSource {
    pub url: String,
    pub file_format: Option<FileFormat>,
}

/// What happened to the outcome rows read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeStats {
    pub rows_read: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub outside_period: u64,
    /// Rows counted in the month.
    pub used: u64,
}

/// The outcomes of the month, by team and outcome, and the rows set aside.
#[derive(Debug, Clone, Default)]
pub struct OutcomeLog {
    /// (team, outcome) → outcomes counted.
    pub counts: BTreeMap<(String, String), u64>,
    /// Rows that failed a check, and repeated references; sorted.
    pub quarantine: Vec<QuarantinedRow>,
    pub stats: OutcomeStats,
}

/// Reads every outcome source of `period`, in the order given (URL order:
/// the first row with a reference is the one kept).
pub fn load_outcomes(
    ctx: &Context,
    sources: &[OutcomeSource],
    period: Period,
) -> Result<OutcomeLog> {
    let mut log = OutcomeLog::default();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for s in sources {
        let rows = crate::error::reading(&s.url, || read_rows(ctx, s))?;
        for row in rows {
            log.add(&s.url, row, period, &mut seen);
        }
    }
    log.quarantine.sort();
    Ok(log)
}

/// A row as read: its fields as text, and the UTC day of a typed timestamp.
struct OutcomeRow {
    row: u64,
    day: Option<i32>,
    fields: [Option<String>; 5],
}

fn read_rows(ctx: &Context, s: &OutcomeSource) -> Result<Vec<OutcomeRow>> {
    let url = s.url.as_str();
    let mut lf = scan(ctx, url, s.file_format)?;
    let fail = |e: PolarsError| {
        Error::input(
            Location::file(url),
            format!("cannot read the outcomes: {}", first_line(&e.to_string())),
        )
    };
    let schema = lf.collect_schema().map_err(fail)?;
    if let Some(e) = missing_columns(url, "an outcome export", &schema, &REQUIRED) {
        return Err(e
        .with_hint(format!(
            "an outcome source needs {} (and may have `{REFERENCE}`); see value-based charging in README.md",
            REQUIRED.map(|c| format!("`{c}`")).join(", ")
        )));
    }
    let as_text = |c: &str| -> Expr {
        match schema.get(c) {
            Some(DataType::String) => col(c),
            Some(DataType::Datetime(_, Some(_))) => col(c)
                .dt()
                .convert_time_zone(TimeZone::UTC)
                .cast(DataType::String),
            Some(_) => col(c).cast(DataType::String),
            None => lit(NULL).cast(DataType::String),
        }
    };
    // A typed timestamp is a day already; text is parsed row by row below.
    let day = match schema.get(TIMESTAMP) {
        Some(DataType::Datetime(_, Some(_))) => col(TIMESTAMP)
            .dt()
            .convert_time_zone(TimeZone::UTC)
            .dt()
            .date()
            .cast(DataType::Int32),
        Some(DataType::Datetime(_, None)) => col(TIMESTAMP).dt().date().cast(DataType::Int32),
        Some(DataType::Date) => col(TIMESTAMP).cast(DataType::Int32),
        _ => lit(NULL).cast(DataType::Int32),
    };
    let typed = matches!(
        schema.get(TIMESTAMP),
        Some(DataType::Datetime(..) | DataType::Date)
    );
    let mut exprs: Vec<Expr> = ALL.iter().map(|c| as_text(c).alias(*c)).collect();
    exprs.push(day.alias("__day"));
    let df = lf
        .with_row_index("__row", Some(1))
        .select(
            std::iter::once(col("__row"))
                .chain(exprs)
                .collect::<Vec<_>>(),
        )
        .collect()
        .map_err(fail)?;
    let rows = df
        .column("__row")
        .map_err(fail)?
        .cast(&DataType::UInt64)
        .map_err(fail)?;
    let rows = rows.u64().map_err(fail)?;
    let days = df.column("__day").map_err(fail)?.i32().map_err(fail)?;
    let texts = ALL
        .iter()
        .map(|c| Ok(df.column(c)?.str()?.clone()))
        .collect::<PolarsResult<Vec<StringChunked>>>()
        .map_err(fail)?;
    let mut parse = time::EpochDays::default();
    Ok((0..df.height())
        .map(|i| {
            let fields: [Option<String>; 5] =
                std::array::from_fn(|k| texts[k].get(i).map(String::from));
            let day = if typed {
                days.get(i)
            } else {
                fields[0].as_deref().and_then(|t| parse.day(t))
            };
            OutcomeRow {
                row: rows.get(i).unwrap_or(0),
                day,
                fields,
            }
        })
        .collect())
}

/// Trimmed text, `None` when missing or blank.
fn clean(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A count as written: a whole number from 0 to [`MAX_OUTCOME_COUNT`]
/// (`3.0`, as Spark writes counts, is 3).
fn parse_count(text: &str) -> std::result::Result<u64, String> {
    let whole = text
        .parse::<Decimal>()
        .ok()
        .filter(|d| d.fract().is_zero() && !d.is_sign_negative())
        .and_then(|d| u64::try_from(d.trunc()).ok());
    match whole {
        Some(n) if n <= MAX_OUTCOME_COUNT => Ok(n),
        Some(_) => Err(format!(
            "`{COUNT}` is `{text}`, more than {MAX_OUTCOME_COUNT}, the most one row may count"
        )),
        None => Err(format!(
            "`{COUNT}` is not a whole number 0 or more: `{text}`"
        )),
    }
}

impl OutcomeLog {
    fn add(
        &mut self,
        source: &str,
        r: OutcomeRow,
        period: Period,
        seen: &mut HashSet<(String, String)>,
    ) {
        self.stats.rows_read += 1;
        let [ts, team, outcome, count, reference] = &r.fields;
        let check = || -> std::result::Result<(NaiveDate, u64), (&'static str, String)> {
            let day = match (r.day, clean(ts)) {
                (Some(d), _) => d,
                (None, None) => return Err((TIMESTAMP, format!("missing `{TIMESTAMP}`"))),
                (None, Some(t)) => {
                    return Err((
                        TIMESTAMP,
                        format!("`{TIMESTAMP}` is not an RFC 3339 time: `{t}`"),
                    ));
                }
            };
            if clean(team).is_none() {
                return Err((TEAM, format!("missing `{TEAM}`")));
            }
            if clean(outcome).is_none() {
                return Err((OUTCOME, format!("missing `{OUTCOME}`")));
            }
            let n = match clean(count) {
                None => return Err((COUNT, format!("missing `{COUNT}`"))),
                Some(c) => parse_count(c).map_err(|m| (COUNT, m))?,
            };
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
            Ok((epoch + chrono::Duration::days(i64::from(day)), n))
        };
        let set_aside = |column: &str, reason: String, kind: QuarantineKind| QuarantinedRow {
            kind,
            ..QuarantinedRow::invalid(source, r.row, column, reason).with_fields(
                ALL.iter()
                    .zip(&r.fields)
                    .map(|(c, v)| (*c, v.clone().unwrap_or_default()))
                    .collect(),
            )
        };
        let (day, n) = match check() {
            Ok(v) => v,
            Err((column, reason)) => {
                self.stats.quarantined += 1;
                self.quarantine
                    .push(set_aside(column, reason, QuarantineKind::Invalid));
                return;
            }
        };
        if !period.contains(day) {
            self.stats.outside_period += 1;
            return;
        }
        let (team, outcome) = (
            clean(team).expect("checked").to_string(),
            clean(outcome).expect("checked").to_string(),
        );
        if let Some(reference) = clean(reference)
            && !seen.insert((outcome.clone(), reference.to_string()))
        {
            self.stats.duplicates += 1;
            self.quarantine.push(set_aside(
                REFERENCE,
                format!(
                    "duplicate `{REFERENCE}` `{reference}` of outcome `{outcome}`; the first row with it was counted"
                ),
                QuarantineKind::Duplicate,
            ));
            return;
        }
        self.stats.used += 1;
        let c = self.counts.entry((team, outcome)).or_default();
        *c = c.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_and_bounded() {
        assert_eq!(parse_count("3"), Ok(3));
        assert_eq!(parse_count("3.0"), Ok(3));
        assert_eq!(parse_count("0"), Ok(0));
        assert_eq!(
            parse_count("1.5"),
            Err("`count` is not a whole number 0 or more: `1.5`".into())
        );
        assert_eq!(
            parse_count("-1"),
            Err("`count` is not a whole number 0 or more: `-1`".into())
        );
        assert_eq!(
            parse_count("2000000000"),
            Err("`count` is `2000000000`, more than 1000000000, the most one row may count".into())
        );
    }
}
