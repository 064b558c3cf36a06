//! What every bill adapter shares. A format is a [`BillFormat`]: its
//! detection rules and its reader, declared next to each other in the
//! adapter. Its reader feeds the one row loop, [`bill_rows`]: count each
//! row, stamp where a line came from, set a row that cannot be read aside
//! with what it keeps of itself. Adapters say only what one row is
//! ([`BillRow`]) or why it cannot be read ([`RowError`]). Every amount is
//! brought into the invoice currency here too ([`in_invoice_currency`]),
//! so that exchange rates are applied in one place, and a currency with no
//! rate stops the run here, every such row of the file named at once.

use chrono::NaiveDate;
use serde::Serialize;

use super::detect::Rule;
use super::usage_report::ReportedUsage;
use super::{Bill, BilledLine, QuarantinedRow};
use crate::catalog::Catalog;
use crate::config::{BillingFormat, BillingSpec};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::fx::{Converted, FxTable, NoConversion};
use crate::money::{Decimal, MAX_AMOUNT};
use crate::period::Period;
use crate::schema::quarantine;

/// A bill format: how a file is told to be one, and how it is read.
pub(crate) struct BillFormat<K = BillingFormat> {
    pub format: K,
    pub rules: &'static [Rule],
    pub read: ReadBill,
}

/// How a format's file is read; the last argument is the invoice currency
/// and the rates into it.
#[derive(Clone, Copy)]
pub(crate) enum ReadBill {
    /// From the object, as a table Polars scans (CSV or Parquet).
    Object(fn(&Context, &str, &BillingSpec, &Catalog, Period, &FxTable) -> Result<Bill>),
    /// From the file's text, fetched once (API pages, small CSV exports):
    /// URL, text, catalog, period, invoice currency and rates.
    Text(fn(&str, &str, &Catalog, Period, &FxTable) -> Result<Bill>),
}

/// Why one bill row cannot be read: the column at fault and what is wrong
/// with it. It becomes the row's quarantine entry, not a run error: one bad
/// row must not stop the month.
/// One kind of row stops the run instead: a currency with no exchange
/// rate on the row's day (`no_rate`), since setting money aside for want
/// of a policy entry would make every such month not tie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowError {
    pub column: &'static str,
    pub reason: String,
    /// The currency and day that have no rate, and the invoice currency.
    pub no_rate: Option<NoRate>,
}

impl RowError {
    pub(crate) fn new(column: &'static str, reason: impl Into<String>) -> RowError {
        RowError {
            column,
            reason: reason.into(),
            no_rate: None,
        }
    }

    /// The column has no value.
    pub(crate) fn missing(column: &'static str) -> RowError {
        RowError::new(column, format!("missing `{column}`"))
    }
}

/// What one bill row is, once read. Unboxed although a line is far larger
/// than the other variants: it is the common one, returned once per row
/// and moved straight into the bill, so a box would only add an
/// allocation per row.
#[derive(Debug, Clone, PartialEq)]
#[expect(clippy::large_enum_variant)]
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

/// A bill currency with no rate into the invoice currency on a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoRate {
    pub from: String,
    pub to: String,
    pub day: NaiveDate,
}

/// A row's amount in the invoice currency: `cost`, billed in `billed` (the
/// value of `column`) on `day`, as it is when that is the invoice currency,
/// else converted at the `[[fx]]` rate in force that day (rounded once, see
/// [`FxTable::convert`]), with what was converted. A currency that is no
/// ISO 4217 code, or a converted amount beyond the bounds, sets the row
/// aside; a currency with no rate that day stops the run.
pub(crate) fn in_invoice_currency(
    fx: &FxTable,
    column: &'static str,
    billed: &str,
    day: NaiveDate,
    cost: Decimal,
) -> std::result::Result<(Decimal, Option<Converted>), RowError> {
    let code = billed.trim();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(RowError::new(
            column,
            format!(
                "`{column}` is `{billed}`, expected a three-letter ISO 4217 code such as `USD`"
            ),
        ));
    }
    let code = code.to_ascii_uppercase();
    let invoiced = fx.currency();
    fx.convert(&code, day, cost).map_err(|e| match e {
        NoConversion::NoRate { first } => RowError {
            column,
            reason: format!(
                "billed in `{code}` on {day}, but no `[[fx]]` rate from `{code}` to `{invoiced}` is in force that day{}",
                first
                    .map(|f| format!(" (the first is in force from {f})"))
                    .unwrap_or_default()
            ),
            no_rate: Some(NoRate {
                from: code.clone(),
                to: invoiced.to_string(),
                day,
            }),
        },
        NoConversion::TooLarge => RowError::new(
            column,
            format!(
                "`{cost}` `{code}` in `{invoiced}` is beyond ±{MAX_AMOUNT}, the largest amount chargeback adds up"
            ),
        ),
    })
}

/// The run error for the rows of `url` whose currency has no rate on their
/// day: the first row's cell and reason, how many more there are, and in
/// the hint the `[[fx]]` entry each currency needs from its first such day.
fn no_rate_error(url: &str, rows: &[(u64, RowError)]) -> Error {
    let (row, first) = &rows[0];
    let mut message = first.reason.clone();
    if let Some(rest) = rows.get(1..).filter(|r| !r.is_empty()) {
        let listed: Vec<String> = rest.iter().take(10).map(|(r, _)| r.to_string()).collect();
        let more = if rest.len() > listed.len() {
            ", …"
        } else {
            ""
        };
        message.push_str(&format!(
            "; {} more {} of the file {} no rate on {} day either ({} {}{more})",
            rest.len(),
            if rest.len() == 1 { "row" } else { "rows" },
            if rest.len() == 1 { "has" } else { "have" },
            if rest.len() == 1 { "its" } else { "their" },
            if rest.len() == 1 { "row" } else { "rows" },
            listed.join(", "),
        ));
    }
    let mut needed: std::collections::BTreeMap<(&str, &str), NaiveDate> = Default::default();
    for n in rows.iter().filter_map(|(_, e)| e.no_rate.as_ref()) {
        let d = needed.entry((&n.from, &n.to)).or_insert(n.day);
        *d = (*d).min(n.day);
    }
    let entries: Vec<String> = needed
        .iter()
        .map(|((from, to), day)| {
            format!(
                "  [[fx]]\n  from = \"{from}\"\n  to = \"{to}\"\n  rate = \"…\"\n  effective_from = \"{day}\""
            )
        })
        .collect();
    Error::input(Location::cell(url, *row, first.column), message).with_hint(format!(
        "add the rate in force from that day to the policy, such as\n{}",
        entries.join("\n")
    ))
}

/// The bill of one file's `rows`, each with its row number as the
/// quarantine reports it. Every row is counted; `read` says what a row is
/// (`None`: nothing to bill, such as an empty bucket) or why it cannot be
/// read, and `kept` what a row set aside keeps of itself. Rows whose
/// currency has no rate on their day (read with [`in_invoice_currency`])
/// fail the file, all named at once.
pub(crate) fn bill_rows<R>(
    url: &str,
    rows: impl IntoIterator<Item = (u64, R)>,
    mut read: impl FnMut(&R) -> std::result::Result<Option<BillRow>, RowError>,
    kept: impl Fn(&R) -> Vec<(&'static str, String)>,
) -> Result<Bill> {
    let mut bill = Bill::default();
    let mut no_rate: Vec<(u64, RowError)> = Vec::new();
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
            Err(e) if e.no_rate.is_some() => no_rate.push((row, e)),
            Err(e) => bill.quarantine.push(
                QuarantinedRow::invalid(url, row, e.column, e.reason).with_fields(kept(&record)),
            ),
        }
    }
    if !no_rate.is_empty() {
        return Err(no_rate_error(url, &no_rate));
    }
    Ok(bill)
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
            fx: None,
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
        )
        .unwrap();
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

    fn rates() -> FxTable {
        FxTable::new(
            "USD",
            [crate::fx::Rate {
                from: "EUR".into(),
                rate: "1.0842".parse().unwrap(),
                effective_from: NaiveDate::from_ymd_opt(2025, 3, 10).unwrap(),
            }],
        )
    }

    #[test]
    fn another_currency_is_converted_at_the_rate_of_its_day() {
        let day = |d| NaiveDate::from_ymd_opt(2025, 3, d).unwrap();
        let fx = rates();
        let one = Decimal::ONE;
        assert_eq!(
            in_invoice_currency(&fx, "currency", "usd", day(2), one),
            Ok((one, None))
        );
        let (usd, how) = in_invoice_currency(&fx, "currency", " eur", day(10), one).unwrap();
        assert_eq!(usd.to_string(), "1.08");
        assert_eq!(how.unwrap().rate.from, "EUR");
        assert_eq!(
            in_invoice_currency(&fx, "currency", "€", day(10), one),
            Err(RowError::new(
                "currency",
                "`currency` is `€`, expected a three-letter ISO 4217 code such as `USD`"
            ))
        );
        // Beyond the bounds once converted: set aside, not a run error.
        let big = in_invoice_currency(&fx, "currency", "EUR", day(10), MAX_AMOUNT).unwrap_err();
        assert_eq!(
            (big.reason.as_str(), big.no_rate),
            (
                "`1000000000000000` `EUR` in `USD` is beyond ±1000000000000000, the largest amount chargeback adds up",
                None
            )
        );
        let early = in_invoice_currency(&fx, "currency", "EUR", day(9), one).unwrap_err();
        assert_eq!(
            early.reason,
            "billed in `EUR` on 2025-03-09, but no `[[fx]]` rate from `EUR` to `USD` is in force that day (the first is in force from 2025-03-10)"
        );
        assert_eq!(
            early.no_rate,
            Some(NoRate {
                from: "EUR".into(),
                to: "USD".into(),
                day: day(9)
            })
        );
    }

    #[test]
    fn rows_without_a_rate_stop_the_file_all_named_at_once() {
        let day = |d| NaiveDate::from_ymd_opt(2025, 3, d).unwrap();
        let fx = rates();
        let rows = [
            (1, ("EUR", 12)),
            (2, ("GBP", 4)),
            (3, ("EUR", 5)),
            (4, ("EUR", 3)),
            (5, ("GBP", 2)),
        ];
        let err = bill_rows(
            "memory://bill.csv",
            rows,
            |&(cur, d)| {
                let (cost, fx) =
                    in_invoice_currency(&fx, "BillingCurrency", cur, day(d), Decimal::ONE)?;
                Ok(Some(BillRow::Line(BilledLine {
                    cost,
                    fx: fx.map(Box::new),
                    ..line(day(d), "0")
                })))
            },
            |_| Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert_eq!(
            err.report(),
            "error: memory://bill.csv:2:BillingCurrency: billed in `GBP` on 2025-03-04, but no `[[fx]]` rate from `GBP` to `USD` is in force that day; \
             3 more rows of the file have no rate on their day either (rows 3, 4, 5)\n\
             hint: add the rate in force from that day to the policy, such as\n  \
             [[fx]]\n  from = \"EUR\"\n  to = \"USD\"\n  rate = \"…\"\n  effective_from = \"2025-03-03\"\n  \
             [[fx]]\n  from = \"GBP\"\n  to = \"USD\"\n  rate = \"…\"\n  effective_from = \"2025-03-02\"\n"
        );
    }
}
