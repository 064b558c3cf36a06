//! What every bill adapter shares. A format is a [`BillFormat`]: its
//! detection rules and its reader, declared next to each other in the
//! adapter. Its reader feeds the one row loop, [`bill_rows`]: count each
//! row, stamp where a line came from, set a row that cannot be read aside
//! with what it keeps of itself. Adapters say only what one row is
//! ([`BillRow`]) or why it cannot be read ([`RowError`]); the currency
//! check is here too, so that exchange rates are added in one place.

use chrono::NaiveDate;
use serde::Serialize;

use super::detect::Rule;
use super::usage_report::ReportedUsage;
use super::{Bill, BilledLine, QuarantinedRow};
use crate::catalog::Catalog;
use crate::config::{BillingFormat, BillingSpec};
use crate::context::Context;
use crate::error::Result;
use crate::money::Decimal;
use crate::period::Period;
use crate::schema::quarantine;

/// A bill format: how a file is told to be one, and how it is read.
pub(crate) struct BillFormat<K = BillingFormat> {
    pub format: K,
    pub rules: &'static [Rule],
    pub read: ReadBill,
}

/// How a format's file is read.
#[derive(Clone, Copy)]
pub(crate) enum ReadBill {
    /// From the object, as a table Polars scans (CSV or Parquet).
    Object(fn(&Context, &str, &BillingSpec, &Catalog, Period, &str) -> Result<Bill>),
    /// From the file's text, fetched once (API pages, small CSV exports):
    /// URL, text, catalog, period, invoice currency.
    Text(fn(&str, &str, &Catalog, Period, &str) -> Result<Bill>),
}

/// Why one bill row cannot be read: the column at fault and what is wrong
/// with it. It becomes the row's quarantine entry, not a run error: one bad
/// row must not stop the month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowError {
    pub column: &'static str,
    pub reason: String,
}

impl RowError {
    pub(crate) fn new(column: &'static str, reason: impl Into<String>) -> RowError {
        RowError {
            column,
            reason: reason.into(),
        }
    }

    /// The column has no value.
    pub(crate) fn missing(column: &'static str) -> RowError {
        RowError::new(column, format!("missing `{column}`"))
    }
}

/// What one bill row is, once read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BillRow {
    /// A line of the period (its source and row are stamped by the loop).
    Line(BilledLine),
    /// A row of another month, by its day: counted, not read further. The
    /// adapter says so where its format knows the day, which is before
    /// some checks in one format and after them in another.
    Outside(NaiveDate),
    /// Spend of the period on a service that is not an LLM service.
    OtherService(Decimal),
    /// The provider's own token counts (usage reports).
    Usage(Vec<ReportedUsage>),
}

/// A row's currency against the invoices' currency. No exchange rate is
/// configured yet, so any other currency sets the row aside.
pub(crate) fn check_currency(
    column: &'static str,
    billed: &str,
    invoiced: &str,
) -> std::result::Result<(), RowError> {
    if billed.eq_ignore_ascii_case(invoiced) {
        return Ok(());
    }
    Err(RowError::new(
        column,
        format!(
            "billed in `{billed}`, but invoices are in `{invoiced}`; no exchange rate is configured"
        ),
    ))
}

/// The bill of one file's `rows`, each with its row number as the
/// quarantine reports it. Every row is counted; `read` says what a row is
/// (`None`: nothing to bill, such as an empty bucket) or why it cannot be
/// read, and `kept` what a row set aside keeps of itself.
pub(crate) fn bill_rows<R>(
    url: &str,
    rows: impl IntoIterator<Item = (u64, R)>,
    mut read: impl FnMut(&R) -> std::result::Result<Option<BillRow>, RowError>,
    kept: impl Fn(&R) -> Vec<(&'static str, String)>,
) -> Bill {
    let mut bill = Bill::default();
    for (row, record) in rows {
        bill.rows_read += 1;
        match read(&record) {
            Ok(None) => {}
            Ok(Some(BillRow::Line(mut line))) => {
                line.source = url.to_string();
                line.row = row;
                bill.lines.push(line);
            }
            Ok(Some(BillRow::Outside(day))) => bill.note_outside(day),
            Ok(Some(BillRow::OtherService(cost))) => {
                bill.other_services.rows += 1;
                bill.other_services.cost += cost;
            }
            Ok(Some(BillRow::Usage(usage))) => bill.usage.extend(usage),
            Err(e) => bill.quarantine.push(
                QuarantinedRow::invalid(url, row, e.column, e.reason).with_fields(kept(&record)),
            ),
        }
    }
    bill
}

/// What a quarantined API result or CSV row keeps: its amount as written
/// and the record whole, as parsed (or the CSV row's cells by column).
pub(crate) fn record_fields(
    cost: Option<&str>,
    record: &impl Serialize,
) -> Vec<(&'static str, String)> {
    let record = serde_json::to_string(record).unwrap_or_default();
    vec![
        (quarantine::COST, cost.unwrap_or_default().to_string()),
        (quarantine::RECORD, record),
    ]
}

/// What a quarantined bill row of a table keeps: its amount as written and
/// its fields as one JSON object (absent fields left out).
pub(crate) fn bill_fields<'a>(
    cost: Option<&str>,
    record: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<(&'static str, String)> {
    let map: serde_json::Map<String, serde_json::Value> = record
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), serde_json::Value::from(v))))
        .collect();
    vec![
        (quarantine::COST, cost.unwrap_or_default().to_string()),
        (
            quarantine::RECORD,
            serde_json::Value::Object(map).to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::ingest::ChargeCategory;

    fn line(day: NaiveDate, cost: &str) -> BilledLine {
        BilledLine {
            provider: "openai".into(),
            scope: String::new(),
            day,
            model: None,
            model_raw: None,
            usage_type: None,
            quantity: None,
            cost: cost.parse().unwrap(),
            currency: "USD".into(),
            category: ChargeCategory::Usage,
            correction: false,
            description: None,
            source: String::new(),
            row: 0,
        }
    }

    #[test]
    fn every_row_is_counted_and_each_kind_lands_in_its_place() {
        let day = |d| NaiveDate::from_ymd_opt(2025, 3, d).unwrap();
        let rows = [
            (1, "line"),
            (2, "blank"),
            (3, "outside"),
            (4, "other"),
            (5, "bad"),
            (7, "line"),
        ];
        let bill = bill_rows(
            "memory://bill.csv",
            rows,
            |&kind| match kind {
                "line" => Ok(Some(BillRow::Line(line(day(2), "1.5")))),
                "blank" => Ok(None),
                "outside" => Ok(Some(BillRow::Outside(day(31)))),
                "other" => Ok(Some(BillRow::OtherService("0.25".parse().unwrap()))),
                _ => Err(RowError::missing("cost")),
            },
            |&kind| bill_fields(None, [("kind", Some(kind))]),
        );
        assert_eq!(bill.rows_read, 6);
        let stamped: Vec<(&str, u64)> = bill
            .lines
            .iter()
            .map(|l| (l.source.as_str(), l.row))
            .collect();
        assert_eq!(
            stamped,
            [("memory://bill.csv", 1), ("memory://bill.csv", 7)]
        );
        assert_eq!(bill.outside_period, 1);
        assert_eq!(bill.outside_days, Some((day(31), day(31))));
        assert_eq!(bill.other_services.rows, 1);
        let q = &bill.quarantine[..];
        assert_eq!(q.len(), 1);
        assert_eq!(
            (q[0].row, q[0].column.as_str(), q[0].reason.as_str()),
            (5, "cost", "missing `cost`")
        );
        assert_eq!(q[0].field(quarantine::RECORD), r#"{"kind":"bad"}"#);
    }

    #[test]
    fn another_currency_is_set_aside_until_rates_are_configured() {
        assert_eq!(check_currency("currency", "usd", "USD"), Ok(()));
        assert_eq!(
            check_currency("currency", "EUR", "USD"),
            Err(RowError::new(
                "currency",
                "billed in `EUR`, but invoices are in `USD`; no exchange rate is configured"
            ))
        );
    }
}
