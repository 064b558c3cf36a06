//! `allocations.parquet`: the month's lineage as one table, a row per part
//! of an invoice usage line or of the unattributed bucket, money as decimal
//! strings (exact shares in full). Written with every writer option fixed,
//! so that the same month gives the same bytes.

use std::borrow::Cow;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::compute::Month;
use crate::compute::lineage::Lineage;
use crate::money::{Decimal, format_amount};
use crate::schema::ledger::{ALLOCATIONS, allocation as col};

/// Rows per row group: small months are one group; a large one is read
/// back in pieces.
const ROW_GROUP: usize = 1 << 17;

/// The bytes of `allocations.parquet`.
pub fn allocations_parquet(month: &Month<'_>) -> Vec<u8> {
    let mut df = allocations_frame(
        &month.lineage,
        &month.view.period,
        &month.view.currency,
        month.scale,
    );
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        // zstd at its default level (3), one call per page: the same
        // bytes for the same pages. Polars does not re-export the level type.
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions {
            min_value: true,
            max_value: true,
            distinct_count: false,
            null_count: true,
            binary_statistics_truncate_length: None,
        })
        .with_row_group_size(Some(ROW_GROUP))
        .with_data_page_size(None)
        .with_key_value_metadata(None)
        .finish(&mut df)
        .expect("a frame of strings, integers and dates writes to memory");
    bytes
}

fn days_since_epoch(day: NaiveDate) -> i32 {
    let days = (day - NaiveDate::default()).num_days();
    i32::try_from(days).expect("chrono dates are within ±262,000 years")
}

/// The table of [`allocations_parquet`], columns in [`ALLOCATIONS`] order.
pub fn allocations_frame(lineage: &Lineage, period: &str, currency: &str, scale: u32) -> DataFrame {
    let n = lineage.allocations.len();
    let text = |d: Decimal| d.to_string();
    let mut team: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut invoice_line: Vec<Option<u32>> = Vec::with_capacity(n);
    let mut provider: Vec<&str> = Vec::with_capacity(n);
    let mut model: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut use_case: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut kind: Vec<&str> = Vec::with_capacity(n);
    let mut source: Vec<Cow<'_, str>> = Vec::with_capacity(n);
    let mut bill_rows: Vec<Option<u32>> = Vec::with_capacity(n);
    let mut day: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut usage_type: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut billed_cost: Vec<Option<String>> = Vec::with_capacity(n);
    let mut covered_cost: Vec<Option<String>> = Vec::with_capacity(n);
    let mut quantity: Vec<Option<String>> = Vec::with_capacity(n);
    let mut weight_basis: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut weight: Vec<Option<String>> = Vec::with_capacity(n);
    let mut total_weight: Vec<Option<String>> = Vec::with_capacity(n);
    let mut price: Vec<Option<String>> = Vec::with_capacity(n);
    let mut prices_from: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut exact: Vec<String> = Vec::with_capacity(n);
    let mut amount: Vec<String> = Vec::with_capacity(n);
    let mut adjustment: Vec<String> = Vec::with_capacity(n);
    for a in &lineage.allocations {
        let p = lineage.part(a);
        team.push(p.team);
        invoice_line.push(p.invoice_line);
        provider.push(p.provider);
        model.push(p.model);
        use_case.push(p.use_case);
        kind.push(p.kind);
        source.push(p.source);
        bill_rows.push(p.bill_rows);
        day.push(p.day.map(days_since_epoch));
        usage_type.push(p.usage_type.map(|t| t.as_str()));
        billed_cost.push(p.billed_cost.map(text));
        covered_cost.push(p.covered_cost.map(text));
        quantity.push(p.quantity.map(text));
        weight_basis.push(p.weight_basis);
        weight.push(p.weight.map(text));
        total_weight.push(p.total_weight.map(text));
        price.push(p.price_per_mtok.map(text));
        prices_from.push(p.prices_from.map(days_since_epoch));
        exact.push(text(p.exact_share));
        amount.push(format_amount(p.amount, scale));
        adjustment.push(text(p.adjustment));
    }
    let source: Vec<&str> = source.iter().map(AsRef::as_ref).collect();
    let date = |name: &str, v: Vec<Option<i32>>| {
        Column::new(name.into(), v)
            .cast(&DataType::Date)
            .expect("days since 1970 are dates")
    };
    let columns = vec![
        Column::new(col::PERIOD.into(), vec![period; n]),
        Column::new(col::TEAM.into(), team),
        Column::new(col::INVOICE_LINE.into(), invoice_line),
        Column::new(col::PROVIDER.into(), provider),
        Column::new(col::MODEL.into(), model),
        Column::new(col::USE_CASE.into(), use_case),
        Column::new(col::KIND.into(), kind),
        Column::new(col::SOURCE.into(), source),
        Column::new(col::BILL_ROWS.into(), bill_rows),
        date(col::DAY, day),
        Column::new(col::USAGE_TYPE.into(), usage_type),
        Column::new(col::BILLED_COST.into(), billed_cost),
        Column::new(col::COVERED_COST.into(), covered_cost),
        Column::new(col::QUANTITY.into(), quantity),
        Column::new(col::WEIGHT_BASIS.into(), weight_basis),
        Column::new(col::WEIGHT.into(), weight),
        Column::new(col::TOTAL_WEIGHT.into(), total_weight),
        Column::new(col::PRICE_PER_MTOK.into(), price),
        date(col::PRICES_FROM, prices_from),
        Column::new(col::EXACT_SHARE.into(), exact),
        Column::new(col::AMOUNT.into(), amount),
        Column::new(col::ADJUSTMENT.into(), adjustment),
        Column::new(col::CURRENCY.into(), vec![currency; n]),
    ];
    debug_assert!(
        columns
            .iter()
            .map(|c| c.name().as_str())
            .eq(ALLOCATIONS.iter().copied())
    );
    DataFrame::new(n, columns).expect("columns of one length and distinct names")
}
