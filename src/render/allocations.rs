//! `allocations.parquet`: the month's lineage as one table, a row per part
//! of an invoice usage line or of the unattributed bucket, money as decimal
//! strings (exact shares in full). Written with every writer option fixed,
//! so that the same month gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::catalog::UsageType;
use crate::compute::Month;
use crate::compute::lineage::{Allocation, Lineage};
use crate::compute::reconcile::as_billed_cells;
use crate::money::{Decimal, format_amount};
use crate::schema::ledger::{ALLOCATIONS, allocation as col};

/// Rows per row group, and per frame built: a month of 1,000 teams has
/// hundreds of thousands of parts, and building them as one frame would
/// hold every text cell of the table in memory at once.
const ROW_GROUP: usize = 1 << 16;

/// The bytes of `allocations.parquet`.
pub fn allocations_parquet(month: &Month<'_>) -> Vec<u8> {
    let lineage = &month.lineage;
    let frame = |parts: &[Allocation]| {
        allocations_frame(
            lineage,
            parts,
            &month.view.period,
            &month.view.currency,
            month.scale,
        )
    };
    let parts = &lineage.allocations;
    let first = frame(&parts[..parts.len().min(ROW_GROUP)]);
    let mut bytes = Vec::new();
    let mut writer = ParquetWriter::new(&mut bytes)
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
        .batched(first.schema())
        .expect("the allocations schema is one Parquet can hold");
    let fail = "a frame of strings, integers and dates writes to memory";
    // An empty month is a file of no row groups.
    if !parts.is_empty() {
        writer.write_batch(&first).expect(fail);
    }
    drop(first);
    for chunk in parts.get(ROW_GROUP..).unwrap_or_default().chunks(ROW_GROUP) {
        writer.write_batch(&frame(chunk)).expect(fail);
    }
    writer.finish().expect(fail);
    drop(writer);
    bytes
}

fn days_since_epoch(day: NaiveDate) -> i32 {
    let days = (day - NaiveDate::default()).num_days();
    i32::try_from(days).expect("chrono dates are within ±262,000 years")
}

/// Text columns are built in place, a decimal formatted into one reused
/// buffer: a month of 1,000 teams has hundreds of thousands of parts, and
/// a `String` per cell would be most of the memory a run needs.
struct Texts {
    builders: Vec<StringChunkedBuilder>,
    buf: String,
}

impl Texts {
    fn new(names: &[&str], capacity: usize) -> Texts {
        Texts {
            builders: names
                .iter()
                .map(|n| StringChunkedBuilder::new((*n).into(), capacity))
                .collect(),
            buf: String::new(),
        }
    }

    fn text(&mut self, k: usize, v: Option<&str>) {
        self.builders[k].append_option(v);
    }

    fn decimal(&mut self, k: usize, v: Option<Decimal>) {
        match v {
            Some(d) => {
                self.buf.clear();
                let _ = write!(self.buf, "{d}");
                self.builders[k].append_value(self.buf.as_str());
            }
            None => self.builders[k].append_null(),
        }
    }

    fn finish(self) -> BTreeMap<String, Column> {
        self.builders
            .into_iter()
            .map(|b| {
                let c = b.finish().into_column();
                (c.name().to_string(), c)
            })
            .collect()
    }
}

/// The rows of `parts` (of `lineage`), columns in [`ALLOCATIONS`] order.
pub fn allocations_frame(
    lineage: &Lineage,
    parts: &[Allocation],
    period: &str,
    currency: &str,
    scale: u32,
) -> DataFrame {
    let n = parts.len();
    let names = [
        col::TEAM,
        col::PROVIDER,
        col::MODEL,
        col::USE_CASE,
        col::KIND,
        col::SOURCE,
        col::USAGE_TYPE,
        col::BILLED_COST,
        col::COVERED_COST,
        col::QUANTITY,
        col::WEIGHT_BASIS,
        col::WEIGHT,
        col::TOTAL_WEIGHT,
        col::PRICE_PER_MTOK,
        col::EXACT_SHARE,
        col::AMOUNT,
        col::ADJUSTMENT,
        col::BILL_CURRENCY,
        col::BILL_COST,
        col::FX_RATE,
        col::FX_RATE_DATE,
    ];
    let mut texts = Texts::new(&names, n);
    let mut invoice_line: Vec<Option<u32>> = Vec::with_capacity(n);
    let mut bill_rows: Vec<Option<u32>> = Vec::with_capacity(n);
    let mut day: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut prices_from: Vec<Option<i32>> = Vec::with_capacity(n);
    for a in parts {
        let p = lineage.part(a);
        invoice_line.push(p.invoice_line);
        bill_rows.push(p.bill_rows);
        day.push(p.day.map(days_since_epoch));
        prices_from.push(p.prices_from.map(days_since_epoch));
        // In the order of `names`.
        texts.text(0, p.team);
        texts.text(1, Some(p.provider));
        texts.text(2, p.model);
        texts.text(3, p.use_case);
        texts.text(4, Some(p.kind));
        texts.text(5, Some(&p.source));
        texts.text(6, p.usage_type.map(UsageType::as_str));
        texts.decimal(7, p.billed_cost);
        texts.decimal(8, p.covered_cost);
        texts.decimal(9, p.quantity);
        texts.text(10, p.weight_basis);
        texts.decimal(11, p.weight);
        texts.decimal(12, p.total_weight);
        texts.decimal(13, p.price_per_mtok);
        texts.decimal(14, Some(p.exact_share));
        texts.text(15, Some(&format_amount(p.amount, scale)));
        texts.decimal(16, Some(p.adjustment));
        if let Some(billed) = p.billed_cost.filter(|_| !p.converted.is_empty()) {
            let cells = as_billed_cells(p.converted, billed, currency);
            for (k, cell) in cells.iter().enumerate() {
                texts.text(17 + k, Some(cell));
            }
        } else {
            for k in 17..21 {
                texts.text(k, None);
            }
        }
    }
    let mut columns = texts.finish();
    let date = |name: &str, v: Vec<Option<i32>>| {
        Column::new(name.into(), v)
            .cast(&DataType::Date)
            .expect("days since 1970 are dates")
    };
    for c in [
        Column::new(col::PERIOD.into(), vec![period; n]),
        Column::new(col::INVOICE_LINE.into(), invoice_line),
        Column::new(col::BILL_ROWS.into(), bill_rows),
        date(col::DAY, day),
        date(col::PRICES_FROM, prices_from),
        Column::new(col::CURRENCY.into(), vec![currency; n]),
    ] {
        columns.insert(c.name().to_string(), c);
    }
    let columns: Vec<Column> = ALLOCATIONS
        .iter()
        .map(|name| columns.remove(*name).expect("every column is built"))
        .collect();
    DataFrame::new(n, columns).expect("columns of one length and distinct names")
}
