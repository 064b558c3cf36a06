//! A test-only bill format, FOCUS-like but not FOCUS (`EffectiveCost`
//! instead of `BilledCost`): the proof that a new format is its adapter and
//! its fixture test. It is told by its own rule among every real format's
//! rules, and read through the shared row loop and currency check.

use super::bill::{
    BillFormat, BillRow, ReadBill, RowError, bill_rows, in_invoice_currency, record_fields,
};
use super::csv_table::CsvTable;
use super::detect::{Over, Rule};
use super::{Bill, BilledLine, ChargeCategory, time};
use crate::catalog::{Catalog, UsageType};
use crate::config::BillingFormat;
use crate::error::Result;
use crate::fx::FxTable;
use crate::money::parse_amount;
use crate::period::Period;

/// Our provider id for this format's bills.
const PROVIDER: &str = "example-ai";

const HEADER: &str = "ChargePeriodStart,SubAccountId,x_Model,x_UsageType,ConsumedQuantity,EffectiveCost,BillingCurrency";
const REQUIRED: [&str; 3] = ["ChargePeriodStart", "EffectiveCost", "BillingCurrency"];

/// Which format a file is: a real one, or this one (which has no
/// [`BillingFormat`] of its own, being test-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Real(BillingFormat),
    Example,
}

/// FOCUS's charge columns without `BilledCost` (a file with it is FOCUS).
pub(super) const FORMAT: BillFormat<Key> = BillFormat {
    format: Key::Example,
    rules: &[Rule {
        over: Over::Names,
        rank: 15,
        test: |s| s.has(&REQUIRED) && !s.has(&["BilledCost"]),
    }],
    read: ReadBill::Text(read),
};

fn read(url: &str, text: &str, catalog: &Catalog, period: Period, fx: &FxTable) -> Result<Bill> {
    let table = CsvTable::read(url, text, "an example cost CSV", HEADER)?;
    if !table.has_all(&REQUIRED) {
        return Err(table.not_this_shape(url, "not an example cost CSV", &REQUIRED, HEADER));
    }
    bill_rows(
        url,
        table.rows(),
        |record| {
            let v = |c: &str| table.get(record, c);
            let start =
                v("ChargePeriodStart").ok_or_else(|| RowError::missing("ChargePeriodStart"))?;
            let day = time::utc_day(start).ok_or_else(|| {
                RowError::new(
                    "ChargePeriodStart",
                    format!("`ChargePeriodStart` is not an ISO 8601 time: `{start}`"),
                )
            })?;
            if !period.contains(day) {
                return Ok(Some(BillRow::Outside(day)));
            }
            let amount = v("EffectiveCost").ok_or_else(|| RowError::missing("EffectiveCost"))?;
            let cost = parse_amount(amount)
                .map_err(|e| RowError::new("EffectiveCost", format!("`EffectiveCost`: {e}")))?;
            let cur = v("BillingCurrency").ok_or_else(|| RowError::missing("BillingCurrency"))?;
            let (cost, converted) = in_invoice_currency(fx, "BillingCurrency", cur, day, cost)?;
            let quantity = match v("ConsumedQuantity") {
                Some(q) => Some(parse_amount(q).map_err(|e| {
                    RowError::new("ConsumedQuantity", format!("`ConsumedQuantity`: {e}"))
                })?),
                None => None,
            };
            let model_raw = v("x_Model").map(str::to_string);
            Ok(Some(BillRow::Line(BilledLine {
                provider: PROVIDER.to_string(),
                scope: v("SubAccountId").unwrap_or("").to_string(),
                day,
                model: model_raw
                    .as_deref()
                    .and_then(|m| catalog.resolve(PROVIDER, m))
                    .map(|e| e.model.clone()),
                model_raw,
                usage_type: v("x_UsageType").and_then(UsageType::parse),
                quantity,
                cost,
                currency: fx.currency().to_string(),
                fx: converted.map(Box::new),
                category: ChargeCategory::Usage,
                correction: false,
                description: None,
                source: String::new(),
                row: 0,
            })))
        },
        |record| record_fields(table.get(record, "EffectiveCost"), &table.record(record)),
    )
}

#[cfg(test)]
mod tests;
