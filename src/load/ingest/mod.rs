//! Loading inputs into canonical frames: tagged request logs (§3.1) and
//! provider bills (§3.2). Adapters own their source's quirks; what leaves
//! this module is canonical, typed and free of rows that failed a check.

pub mod anthropic;
mod bill;
mod csv_table;
pub mod detect;
#[cfg(test)]
mod example_format;
pub mod focus;
mod gateway_row;
pub mod litellm;
pub mod openai;
pub mod otel;
pub mod outcomes;
mod pages;
pub(crate) mod provider;
pub mod quarantine;
pub mod requests;
pub mod time;
pub mod usage_report;

pub use pages::PageLink;
pub use quarantine::{QuarantineKind, QuarantinedRow, quarantine_csv};

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use bill::{BillFormat, ReadBill};

use crate::catalog::{Catalog, UsageType};
use crate::config::{BillingFormat, BillingSpec, FileFormat};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::fx::{Converted, FxTable};
use crate::money::Decimal;
use crate::period::Period;

/// Logged usage summed over requests that share every key: the unit the
/// reconciliation matches bills against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCell {
    pub provider: String,
    pub scope: String,
    pub day: NaiveDate,
    /// Canonical catalog name.
    pub model: String,
    pub team: String,
    pub use_case: String,
    /// Tokens per class, indexed like [`UsageType::ALL`].
    pub tokens: [u64; 4],
    pub requests: u64,
    /// Requests with status `error` among `requests`.
    pub errors: u64,
    /// The tokens of those failed requests, per class (part of `tokens`).
    pub error_tokens: [u64; 4],
    /// Of `tokens`, per class, those of requests whose counts were
    /// estimated (`tokens_estimated`), not reported by the provider.
    pub estimated_tokens: [u64; 4],
}

impl UsageCell {
    pub fn tokens_of(&self, t: UsageType) -> u64 {
        self.tokens[t as usize]
    }

    pub fn total_tokens(&self) -> u64 {
        self.tokens.iter().fold(0, |a, t| a.saturating_add(*t))
    }

    /// Estimated tokens of every class.
    pub fn total_estimated(&self) -> u64 {
        self.estimated_tokens
            .iter()
            .fold(0, |a, t| a.saturating_add(*t))
    }
}

/// One request of a conversation (`conversation_id`) that counts as usage
/// of the period: what the context-growth insight reads, in time order.
/// Kept small (a month may hold millions): the model is an index into
/// [`Conversations::models`], the day is the instant's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Turn {
    /// The request's time, in microseconds since the epoch (UTC).
    pub micros: i64,
    pub request_id: Box<str>,
    /// Index of its (provider, model) in [`Conversations::models`].
    pub model: u32,
    /// Tokens per class, indexed like [`UsageType::ALL`] (a request
    /// counts at most a billion of a class).
    pub tokens: [u32; 4],
    /// Status `error`.
    pub error: bool,
}

impl Turn {
    /// Input tokens of every class: uncached, cached and cache writes.
    pub fn input_tokens(&self) -> u64 {
        self.tokens[..3].iter().map(|&t| u64::from(t)).sum()
    }

    /// Tokens per class, as the catalog prices them.
    pub fn tokens(&self) -> [u64; 4] {
        self.tokens.map(u64::from)
    }

    /// The UTC day of the request (the epoch for an instant no date holds,
    /// which no turn of a month has).
    pub fn day(&self) -> NaiveDate {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        chrono::TimeDelta::try_days(self.micros.div_euclid(86_400_000_000))
            .and_then(|d| epoch.checked_add_signed(d))
            .unwrap_or(epoch)
    }
}

/// The conversations of a month: per (team, `conversation_id`) its turns
/// in time order (then by request id), and the models they name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversations {
    /// (provider, canonical catalog model), by [`Turn::model`].
    pub models: Vec<(String, String)>,
    pub turns: BTreeMap<(String, String), Vec<Turn>>,
}

impl Conversations {
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// The (provider, model) of a turn.
    pub fn model_of(&self, t: &Turn) -> (&str, &str) {
        self.models
            .get(t.model as usize)
            .map_or(("", ""), |(p, m)| (p.as_str(), m.as_str()))
    }
}

/// FOCUS `ChargeCategory`, lower-cased (DESIGN §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeCategory {
    Usage,
    Credit,
    Tax,
    Adjustment,
    Purchase,
    Fee,
}

impl ChargeCategory {
    pub fn parse(text: &str) -> Option<ChargeCategory> {
        match text.trim().to_ascii_lowercase().as_str() {
            "usage" => Some(ChargeCategory::Usage),
            "credit" => Some(ChargeCategory::Credit),
            "tax" => Some(ChargeCategory::Tax),
            "adjustment" => Some(ChargeCategory::Adjustment),
            "purchase" => Some(ChargeCategory::Purchase),
            "fee" => Some(ChargeCategory::Fee),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChargeCategory::Usage => "usage",
            ChargeCategory::Credit => "credit",
            ChargeCategory::Tax => "tax",
            ChargeCategory::Adjustment => "adjustment",
            ChargeCategory::Purchase => "purchase",
            ChargeCategory::Fee => "fee",
        }
    }
}

/// One line of a provider bill, in canonical form.
#[derive(Debug, Clone, PartialEq)]
pub struct BilledLine {
    pub provider: String,
    /// Empty when the line covers the whole account.
    pub scope: String,
    pub day: NaiveDate,
    /// Canonical catalog name, when the bill names a model we know.
    pub model: Option<String>,
    /// The model as the bill spells it.
    pub model_raw: Option<String>,
    pub usage_type: Option<UsageType>,
    /// Tokens, when the bill says how many.
    pub quantity: Option<Decimal>,
    /// In the invoice currency: converted from the bill's when it is
    /// another (see `fx`).
    pub cost: Decimal,
    /// The invoice currency.
    pub currency: String,
    /// What the bill stated and the rate, when it billed another currency
    /// (boxed: most lines have none, and a month holds many lines).
    pub fx: Option<Box<Converted>>,
    pub category: ChargeCategory,
    /// FOCUS `ChargeClass = Correction`: a fix to an earlier period.
    pub correction: bool,
    pub description: Option<String>,
    pub source: String,
    pub row: u64,
}

impl BilledLine {
    /// Usage lines are the ones split over teams by logged usage.
    pub fn is_usage(&self) -> bool {
        self.category == ChargeCategory::Usage && !self.correction
    }
}

/// What a bill adapter read from one file.
#[derive(Debug, Clone, Default)]
pub struct Bill {
    pub lines: Vec<BilledLine>,
    pub quarantine: Vec<QuarantinedRow>,
    pub rows_read: u64,
    /// Rows whose charge period is another month.
    pub outside_period: u64,
    /// The first and last day of those rows.
    pub outside_days: Option<(NaiveDate, NaiveDate)>,
    /// Rows of the period for other cloud services (a FOCUS export holds
    /// the whole cloud bill): counted and summed, never billed to a team.
    pub other_services: OtherServices,
    /// The provider's own token counts (usage reports), for [`crate::compute::refine`].
    pub usage: Vec<usage_report::ReportedUsage>,
    /// API pages and how they link to the next (JSON page formats only).
    pub pages: Vec<PageLink>,
}

/// Spend on services that are not LLM services, as found in a bill.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OtherServices {
    pub rows: u64,
    pub cost: Decimal,
}

impl Bill {
    /// Counts a row of another month, keeping the range of their days.
    pub fn note_outside(&mut self, day: NaiveDate) {
        self.outside_period += 1;
        self.outside_days = Some(match self.outside_days {
            None => (day, day),
            Some((a, b)) => (a.min(day), b.max(day)),
        });
    }
}

/// How CSV writers spell a missing value besides an empty cell: SQL
/// engines' `NULL` (DuckDB, Spark, psql), `null`, and Python's `None`
/// (pandas, LiteLLM). One rule for every text input.
pub const NULL_SPELLINGS: [&str; 3] = ["NULL", "null", "None"];

/// Whether a cell as written means "no value".
pub fn is_null_text(cell: &str) -> bool {
    let t = cell.trim();
    t.is_empty() || NULL_SPELLINGS.contains(&t)
}

/// Opens one object as a lazy frame in its format. CSV columns all come in
/// as text, so that every value is checked by our rules, not guessed.
pub(crate) fn scan(ctx: &Context, url: &str, format: Option<FileFormat>) -> Result<LazyFrame> {
    let format = format
        .or_else(|| FileFormat::from_name(url))
        .ok_or_else(|| {
            Error::input(
                Location::file(url),
                "cannot tell the file's format from its name",
            )
            .with_hint("name it .csv, .parquet or .jsonl, or give `format` in the policy")
        })?;
    let sources = ctx.store.scan_sources(url)?;
    if format == FileFormat::Csv {
        check_quotes(url, &sources)?;
    }
    let lf = match format {
        FileFormat::Csv => LazyCsvReader::new_with_sources(sources)
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_missing_is_null(true)
            .with_null_values(Some(NullValues::AllColumns(
                NULL_SPELLINGS.iter().map(|s| (*s).into()).collect(),
            )))
            .finish(),
        // No hive partitions: an object's folder names are not columns, and
        // Polars cannot take them from an in-memory (remote) object.
        FileFormat::Parquet => LazyFrame::scan_parquet_sources(
            sources,
            ScanArgsParquet {
                hive_options: HiveOptions::new_disabled(),
                ..ScanArgsParquet::default()
            },
        ),
        FileFormat::Jsonl => LazyJsonLineReader::new_with_sources(sources)
            .with_infer_schema_length(std::num::NonZeroUsize::new(1000))
            .finish(),
        // A JSON array of records: read whole (exports of this shape are small).
        FileFormat::Json => {
            let bytes = ctx.store.read(url)?;
            JsonReader::new(std::io::Cursor::new(bytes.to_vec()))
                .with_json_format(JsonFormat::Json)
                .finish()
                .map(DataFrame::lazy)
        }
    };
    let not_format = |e: PolarsError| {
        Error::input(
            Location::file(url),
            format!(
                "cannot read the file as {}: {}",
                format.name(),
                first_line(&e.to_string())
            ),
        )
        .with_hint(format!(
            "the file's name says {}; check that it is one, or set `format` in the policy",
            format.name()
        ))
    };
    let mut lf = lf.map_err(not_format)?;
    lf.collect_schema().map_err(not_format)?;
    Ok(lf)
}

/// A CSV whose quotes do not pair up ends inside a quoted field: a
/// truncated export or an unclosed quote. Said so before Polars reads it
/// (its CSV reader reads past the end of such a file instead of failing).
/// Every well-formed quoted field holds an even number of `"`, so an odd
/// count is always damage.
fn check_quotes(url: &str, sources: &ScanSources) -> Result<()> {
    for source in sources.iter() {
        let bytes = source.to_memslice().map_err(|e| {
            Error::input(Location::file(url), first_line(&e.to_string()).to_string())
        })?;
        let quotes = bytes.iter().filter(|&&b| b == b'"').count();
        if quotes % 2 == 1 {
            return Err(Error::input(
                Location::file(url),
                "the CSV ends inside a quoted field: its `\"` do not pair up",
            )
            .with_hint(
                "the file is truncated or a quote is not closed; export it again (a `\"` inside a quoted field is written `\"\"`)",
            ));
        }
    }
    Ok(())
}

pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// Column names of a frame, for error messages.
pub(crate) fn column_list(schema: &Schema) -> String {
    schema
        .iter_names()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `not a <what>: missing `a`, `b`; found …` for a file whose columns lack
/// some of `required`; its hint is the caller's.
pub(crate) fn missing_columns(
    url: &str,
    what: &str,
    schema: &Schema,
    required: &[&str],
) -> Option<Error> {
    let missing: Vec<String> = required
        .iter()
        .filter(|c| !schema.contains(c))
        .map(|c| format!("`{c}`"))
        .collect();
    (!missing.is_empty()).then(|| {
        Error::input(
            Location::file(url),
            format!(
                "not {what}: missing {}; found {}",
                missing.join(", "),
                column_list(schema)
            ),
        )
    })
}

/// One bill file, read through the adapter of its format (detected from
/// the file unless the policy says it). API pages and CSV exports are
/// parsed from their text, which is fetched once, detection included.
pub fn load_bill(
    ctx: &Context,
    url: &str,
    spec: &BillingSpec,
    catalog: &Catalog,
    period: Period,
    fx: &FxTable,
) -> Result<(BillingFormat, Bill)> {
    crate::error::reading(url, || read_bill(ctx, url, spec, catalog, period, fx))
}

/// Every bill format, each declared in its adapter. Detection tries their
/// rules by rank ([`detect::Rule`]); ties go by this order.
const BILL_FORMATS: [&BillFormat; 7] = [
    &focus::FORMAT,
    &openai::COST_CSV,
    &anthropic::COST_CSV,
    &openai::COSTS,
    &anthropic::COST_REPORT,
    &usage_report::OPENAI,
    &usage_report::ANTHROPIC,
];

fn read_bill(
    ctx: &Context,
    url: &str,
    spec: &BillingSpec,
    catalog: &Catalog,
    period: Period,
    fx: &FxTable,
) -> Result<(BillingFormat, Bill)> {
    let container = spec.file_format.or_else(|| FileFormat::from_name(url));
    let mut text = match container {
        Some(FileFormat::Json | FileFormat::Jsonl) => Some(ctx.store.read_text(url)?),
        _ => None,
    };
    let format = match spec.format {
        Some(f) => f,
        None => detect::billing_format(ctx, url, spec.file_format, text.as_deref())?,
    };
    let read = BILL_FORMATS
        .iter()
        .find(|f| f.format == format)
        .map(|f| f.read)
        .expect("every billing format is in BILL_FORMATS");
    let read = match read {
        ReadBill::Object(read) => {
            return Ok((format, read(ctx, url, spec, catalog, period, fx)?));
        }
        ReadBill::Text(read) => read,
    };
    let text = match text.take() {
        Some(t) => t,
        None => ctx.store.read_text(url)?,
    };
    let mut bill = read(url, &text, catalog, period, fx)?;
    if format.is_api_pages() {
        bill.pages = pages::page_links(&text);
    }
    Ok((format, bill))
}

/// API pages that say more follow (`has_more`) while no page among `pages`
/// (every file of one format, with its URL) starts where they end: money
/// the inputs do not hold. Each as (URL, page).
pub fn truncated_pages<'a>(pages: &[(&'a str, &'a PageLink)]) -> Vec<(&'a str, &'a PageLink)> {
    pages
        .iter()
        .filter(|(_, p)| p.has_more)
        .filter(|(_, p)| {
            p.last_end.as_ref().is_none_or(|end| {
                !pages
                    .iter()
                    .any(|(_, q)| q.first_start.as_ref() == Some(end))
            })
        })
        .copied()
        .collect()
}
