//! Tagged request logs in the canonical schema (DESIGN §3.1), as CSV,
//! Parquet or JSON lines: checked row by row, de-duplicated exactly by
//! `request_id`, resolved through the catalog and summed into usage cells.
//!
//! A month of 100M rows streams through in two scans (three when some rows
//! must be named in the quarantine), never holding the rows in memory:
//!
//! 1. **ids** ([`plain_ids`]): only `request_id` is read. Each id is hashed
//!    to 44 bits; the keys are filed by their top 12 bits into 4096
//!    buckets (4 bytes a row) and by row position (8 bytes a row). A key
//!    seen twice makes its ids *candidate* duplicates: every true duplicate,
//!    and the odd collision. What is kept is one bit per row: "id present,
//!    no candidate".
//! 2. **usage** ([`scan_usage`]): every column is read once, and each
//!    morsel is folded in the scan's own threads: rows that pass the row
//!    checks and have that bit are summed by their raw key values; every
//!    other row (failed checks, candidates) is kept whole. The candidates
//!    are then de-duplicated exactly ([`MonthUsage::add_details`]), by the
//!    full id text in file order, so a hash collision costs a string
//!    compare and never a request.
//! 3. **listing** ([`list_bad_rows`]), only when a group's key values fail
//!    a check (a model the catalog does not know, an unknown status): those
//!    rows are read again to name each one in the quarantine.
//!
//! Text is normalised (trimmed, lower-cased, defaulted) and resolved
//! through the catalog once per distinct group, not per row. The result is
//! the same, to the byte, as checking, de-duplicating and resolving every
//! row in file order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use super::gateway_row::SOURCE_LINE;
use super::{
    Conversations, QuarantineKind, QuarantinedRow, Turn, UsageCell, first_line, is_null_text,
    litellm, missing_columns, otel, scan, time,
};
use crate::catalog::Catalog;
use crate::config::{
    Engine as EngineSettings, EngineKind, FailedRequests, FileFormat, RequestFormat, Sources,
};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::period::Period;
use crate::progress::Counter;
use crate::schema::request::*;
use crate::schema::work;

#[cfg(feature = "spark")]
mod spark;

/// What happened to the rows read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    pub rows_read: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub outside_period: u64,
    pub failed_excluded: u64,
    /// Rows that count as usage of the period.
    pub used: u64,
    /// Of those, requests with status `error`.
    pub errors: u64,
    /// OpenTelemetry spans that are not model calls (agent, tool and
    /// workflow spans): not requests, so not in `rows_read`.
    #[serde(skip_serializing_if = "is_zero")]
    pub spans_skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    pub cells: Vec<UsageCell>,
    pub quarantine: Vec<QuarantinedRow>,
    pub stats: RequestStats,
    /// Rows read from each source, in the order of the sources.
    pub rows_by_source: Vec<u64>,
    /// The `outcome`s of the requests that count as usage of the period:
    /// (team, outcome) → Σ `outcome_count`.
    pub outcomes: BTreeMap<(String, String), u64>,
    /// Per team, the distinct `user`s of the requests that count as usage
    /// of the period (teams without any left out).
    pub users: BTreeMap<String, u64>,
    /// Per (team, `conversation_id`), the conversation's requests that
    /// count as usage of the period, in time order (then by request id).
    /// Empty when the logs carry no conversation ids.
    pub conversations: Conversations,
    /// The cluster that ran the heavy stage (`None`: this process).
    pub engine: Option<EngineRecord>,
}

/// What the manifest says of a cluster that ran the heavy stage: the
/// engine, its version, and every setting that shapes the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EngineRecord {
    pub kind: String,
    pub version: String,
    pub settings: BTreeMap<String, String>,
    /// Duplicate and quarantined rows counted but not named (beyond
    /// `[engine] list_limit`).
    pub unlisted_rows: u64,
}

/// A request-log object: what it is, and its container format (from its
/// name when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSource {
    pub url: String,
    pub format: RequestFormat,
    pub file_format: Option<FileFormat>,
}

/// The most tokens of one class a request may count: a billion, 500 times
/// the largest context window there is. With it, a cell's sums stay far
/// inside a `u64` (and its catalog cost inside a `Decimal`) for any month
/// of fewer than 10¹⁰ requests; beyond that they saturate, never wrap.
pub const MAX_TOKENS: i64 = 1_000_000_000;

/// The most outcomes one request may count: as many as the tokens of one
/// class, for the same reason.
pub const MAX_OUTCOME_COUNT: i64 = MAX_TOKENS;

/// How `tokens_estimated` may be written as text, compared trimmed and
/// lower-cased: yes, no, and no value (not estimated). A boolean column
/// is read as it is; anything else is quarantined.
const FLAG_TRUE: [&str; 3] = ["true", "1", "yes"];
const FLAG_FALSE: [&str; 3] = ["false", "0", "no"];
const FLAG_NONE: [&str; 2] = ["null", "none"];

/// A `tokens_estimated` text: `Ok(Some(_))` yes or no, `Ok(None)` no
/// value, `Err(())` not a flag.
fn flag_of(text: Option<&str>) -> std::result::Result<Option<bool>, ()> {
    let Some(t) = clean(text).map(str::to_lowercase) else {
        return Ok(None);
    };
    if FLAG_TRUE.contains(&t.as_str()) {
        Ok(Some(true))
    } else if FLAG_FALSE.contains(&t.as_str()) {
        Ok(Some(false))
    } else if FLAG_NONE.contains(&t.as_str()) {
        Ok(None)
    } else {
        Err(())
    }
}

// Working columns of this module only (never written to an output).
/// A row's place in its source's frame: the order duplicates are judged in.
const SEQ: &str = "__seq";
/// The raw timestamp as text, for messages.
const TIMESTAMP_TEXT: &str = "__timestamp_text";
/// A typed timestamp as microseconds since the epoch (UTC), so that a
/// quarantined row keeps its time as read (text columns: null).
const TIMESTAMP_MICROS: &str = "__timestamp_us";
/// True when the row passed the row checks and its id is no candidate.
const PLAIN: &str = "__plain";
/// A row's place in its file, from 0, when another engine read it: the
/// row's `__seq`, and one less than its `__row`.
#[cfg(feature = "spark")]
const POSITION: &str = "__position";

fn raw_token(c: &str) -> String {
    format!("__raw_{c}")
}

pub fn load_requests(
    ctx: &Context,
    sources: &[RequestSource],
    options: &Sources,
    catalog: &Catalog,
    period: Period,
    failed: FailedRequests,
    engine: &EngineSettings,
) -> Result<RequestLog> {
    let urls: Vec<&str> = sources.iter().map(|s| s.url.as_str()).collect();
    crate::error::reading(&urls.join(", "), || match engine.kind {
        EngineKind::Local => read_requests(ctx, sources, options, catalog, period, failed),
        EngineKind::SparkConnect => {
            spark_requests(ctx, sources, options, catalog, period, failed, engine)
        }
    })
}

#[cfg(not(feature = "spark"))]
fn spark_requests(
    _: &Context,
    _: &[RequestSource],
    _: &Sources,
    _: &Catalog,
    _: Period,
    _: FailedRequests,
    _: &EngineSettings,
) -> Result<RequestLog> {
    Err(Error::policy(
        Location::file("[engine]"),
        "this build of chargeback has no Spark engine",
    )
    .with_hint("build it with `cargo build --release --features spark`, or set `[engine] kind = \"local\"`"))
}

/// The heavy stage on a Spark cluster ([`spark`]): the same groups, users,
/// conversations and single rows as the two local scans, then the same
/// de-duplication, resolution and listing in this process.
#[cfg(feature = "spark")]
fn spark_requests(
    ctx: &Context,
    sources: &[RequestSource],
    options: &Sources,
    catalog: &Catalog,
    period: Period,
    failed: FailedRequests,
    engine: &EngineSettings,
) -> Result<RequestLog> {
    if sources.is_empty() {
        // Nothing for a cluster to read.
        return read_requests(ctx, sources, options, catalog, period, failed);
    }
    let stage = ctx
        .progress
        .stage("requests: check, de-duplicate and sum on Spark");
    let cluster = spark::Cluster::connect(engine)?;
    let job = cluster.month(sources, period)?;
    let usage = job.usage()?;
    stage.done();

    let stage = ctx.progress.stage("requests: de-duplicate and resolve");
    let mut month = MonthUsage::new(catalog, period, failed);
    let any_bad = month.add_groups(usage.groups);
    month.add_users(usage.users, &usage.user_names);
    month.add_turns(usage.turns);
    month.add_details(usage.details, sources);
    month.add_duplicates(&usage.duplicates, usage.duplicates_total, sources);
    stage.done();

    let mut unlisted = usage.duplicates_total - usage.duplicates.len() as u64;
    if any_bad {
        let stage = ctx.progress.stage("requests: list quarantined rows");
        let bad: Vec<RawVerdictKey<'_>> = month
            .verdicts
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Bad { .. }))
            .map(|(k, _)| (k[0].as_deref(), k[1].as_deref(), k[2].as_deref()))
            .collect();
        let (rows, total) = job.bad_rows(&bad)?;
        unlisted += total - rows.height() as u64;
        month.stats.quarantined += total - rows.height() as u64;
        month
            .add_bad_rows(&rows, sources)
            .map_err(|e| job.error(e))?;
        stage.done();
    }
    let mut log = month.finish();
    log.rows_by_source = usage.rows_by_source;
    log.engine = Some(EngineRecord {
        unlisted_rows: unlisted,
        ..job.record()
    });
    Ok(log)
}

fn read_requests(
    ctx: &Context,
    sources: &[RequestSource],
    options: &Sources,
    catalog: &Catalog,
    period: Period,
    failed: FailedRequests,
) -> Result<RequestLog> {
    let mut opened = Vec::with_capacity(sources.len());
    let mut spans_skipped = 0;
    for s in sources {
        let (frame, schema, skipped) = crate::error::reading(&s.url, || open(ctx, s, options))?;
        opened.push((frame, schema));
        spans_skipped += skipped;
    }
    // The insight columns are read when some source has them; a month
    // without them reads and carries nothing more.
    let insight = InsightColumns {
        conversation: opened.iter().any(|(_, s)| s.contains(CONVERSATION_ID)),
        estimated: opened.iter().any(|(_, s)| s.contains(TOKENS_ESTIMATED)),
    };
    let mut frames = Vec::with_capacity(sources.len());
    for (i, ((lf, schema), s)) in opened.into_iter().zip(sources).enumerate() {
        let frame =
            crate::error::reading(&s.url, || normalize(i as u32, lf, &schema, &s.url, insight))?;
        frames.push(frame);
    }
    let polars_err = |e: PolarsError| {
        let urls: Vec<&str> = sources.iter().map(|s| s.url.as_str()).collect();
        Error::input(
            Location::file(urls.join(", ")),
            format!(
                "cannot read the request logs: {}",
                first_line(&e.to_string())
            ),
        )
        .with_hint("a value may not match its column's type; check the files named")
    };
    let all = concat(frames, UnionArgs::default()).map_err(polars_err)?;

    let stage = ctx.progress.stage("requests: find duplicate ids");
    let (plain, rows, rows_by_source) =
        plain_ids(all.clone(), sources.len(), stage.counter()).map_err(polars_err)?;
    let plain = Arc::new(plain);
    stage.done();

    let stage = ctx.progress.stage("requests: check and sum rows");
    stage.set_total(rows);
    let usage =
        scan_usage(all.clone(), plain.clone(), period, stage.counter()).map_err(polars_err)?;
    stage.done();

    let stage = ctx.progress.stage("requests: de-duplicate and resolve");
    let mut month = MonthUsage::new(catalog, period, failed);
    let any_bad = month.add_groups(usage.groups);
    month.add_users(usage.users, &usage.user_names);
    month.add_turns(usage.turns);
    month.add_details(usage.details, sources);
    stage.done();

    if any_bad {
        let stage = ctx.progress.stage("requests: list quarantined rows");
        let rows = list_bad_rows(all, plain, Arc::new(catalog.clone())).map_err(polars_err)?;
        month.add_bad_rows(&rows, sources).map_err(polars_err)?;
        stage.done();
    }
    let mut log = month.finish();
    log.stats.spans_skipped = spans_skipped;
    log.rows_by_source = rows_by_source;
    Ok(log)
}

// ---------------------------------------------------------------------------
// Reading: one lazy frame per source, raw text kept
// ---------------------------------------------------------------------------

/// Which optional insight columns some source of the month has: the
/// frames carry them only then.
#[derive(Debug, Clone, Copy)]
struct InsightColumns {
    conversation: bool,
    estimated: bool,
}

/// One source as a lazy frame of its format's columns, with their schema
/// and the spans it skipped (OpenTelemetry).
fn open(
    ctx: &Context,
    source: &RequestSource,
    options: &Sources,
) -> Result<(LazyFrame, Schema, u64)> {
    let url = source.url.as_str();
    let (mut lf, skipped) = match source.format {
        RequestFormat::Canonical => (scan(ctx, url, source.file_format)?, 0),
        RequestFormat::Litellm => (
            litellm::load(ctx, url, source.file_format, &options.litellm)?,
            0,
        ),
        RequestFormat::Otel => {
            let spans = otel::load_spans(ctx, url, source.file_format, &options.otel)?;
            (spans.frame.lazy(), spans.skipped)
        }
    };
    let schema = lf
        .collect_schema()
        .map_err(|e| Error::input(Location::file(url), first_line(&e.to_string()).to_string()))?;
    Ok((lf, schema.as_ref().clone(), skipped))
}

/// One file's rows under canonical names, typed only as far as is cheap:
/// key columns stay raw text (normalised later, once per group), tokens
/// become integers, the timestamp a UTC day, and `__plain` says whether the
/// row may be summed without looking at it again (the id flag is added by
/// the scans, which know the candidates).
fn normalize(
    index: u32,
    lf: LazyFrame,
    schema: &Schema,
    url: &str,
    insight: InsightColumns,
) -> Result<LazyFrame> {
    if let Some(e) = missing_columns(url, "a canonical request log", schema, &REQUIRED) {
        return Err(e.with_hint(format!(
            "a request log needs {}; see the request log schema in README.md",
            REQUIRED.map(|c| format!("`{c}`")).join(", ")
        )));
    }
    // A column as text, untouched; null when the file has no such column.
    let raw = |c: &str| -> Expr {
        match schema.get(c) {
            Some(DataType::String) => col(c),
            Some(_) => col(c).cast(DataType::String),
            None => lit(NULL).cast(DataType::String),
        }
    };
    let day = match schema.get(TIMESTAMP) {
        Some(DataType::String) => per_row(col(TIMESTAMP), work::DAY, DataType::Date, |c| {
            let ca = c.str()?;
            let mut parse = time::EpochDays::default();
            let days: Int32Chunked = ca.iter().map(|v| v.and_then(|t| parse.day(t))).collect();
            Ok(days.with_name(work::DAY.into()).into_date().into_column())
        }),
        Some(DataType::Datetime(_, Some(_))) => col(TIMESTAMP)
            .dt()
            .convert_time_zone(TimeZone::UTC)
            .dt()
            .date(),
        Some(DataType::Datetime(_, None)) => col(TIMESTAMP).dt().date(),
        Some(DataType::Date) => col(TIMESTAMP),
        Some(other) => {
            return Err(Error::input(
                Location::file(url),
                format!("`{TIMESTAMP}` holds {other}, expected RFC 3339 text or a datetime"),
            ));
        }
        None => unreachable!("checked above"),
    };
    let mut exprs = vec![
        lit(index).alias(work::SOURCE),
        col(work::ROW),
        col(SEQ),
        raw(REQUEST_ID).alias(REQUEST_ID),
        // Text, for messages about rows whose timestamp is no time (a
        // datetime column only ever lacks one).
        match schema.get(TIMESTAMP) {
            Some(DataType::String) => col(TIMESTAMP),
            _ => lit(NULL).cast(DataType::String),
        }
        .alias(TIMESTAMP_TEXT),
        match schema.get(TIMESTAMP) {
            Some(DataType::Datetime(_, Some(_))) => col(TIMESTAMP)
                .dt()
                .convert_time_zone(TimeZone::UTC)
                .dt()
                .timestamp(TimeUnit::Microseconds),
            Some(DataType::Datetime(_, None)) => {
                col(TIMESTAMP).dt().timestamp(TimeUnit::Microseconds)
            }
            Some(DataType::Date) => col(TIMESTAMP).cast(DataType::Int64) * lit(86_400_000_000i64),
            _ => lit(NULL).cast(DataType::Int64),
        }
        .alias(TIMESTAMP_MICROS),
        day.clone().alias(work::DAY),
        raw(PROVIDER).alias(PROVIDER),
        raw(MODEL).alias(MODEL),
        raw(BILLING_SCOPE).alias(BILLING_SCOPE),
        raw(TEAM).alias(TEAM),
        raw(USE_CASE).alias(USE_CASE),
        raw(STATUS).alias(STATUS),
        raw(OUTCOME).alias(OUTCOME),
        raw(USER).alias(USER),
    ];
    if insight.conversation {
        exprs.push(raw(CONVERSATION_ID).alias(CONVERSATION_ID));
    }
    // Row checks that need no text work: a timestamp that is no time, a
    // token count that is missing, no whole number or negative. (Missing
    // ids are found with the candidates; key values are checked per group.)
    let mut ok = day.is_not_null();
    for c in TOKEN_COLUMNS {
        let required = c == INPUT_TOKENS || c == OUTPUT_TOKENS;
        let (value, bad) = count_column(c, schema.get(c), raw(c), required);
        // Beyond the bound: no request has that many, and sums of such
        // counts could leave a u64.
        let bad = bad.or(value.clone().gt(lit(MAX_TOKENS)));
        // (A comparison with a missing count is null: not bad by itself.)
        ok = ok.and(bad.fill_null(lit(false)).not());
        exprs.push(value.alias(c));
        // The count as written, for messages: integers other than u64
        // always fit, so their text is the value's (no per-row cast).
        exprs.push(
            match schema.get(c) {
                Some(dt) if dt.is_integer() && !matches!(dt, DataType::UInt64) => {
                    lit(NULL).cast(DataType::String)
                }
                _ => raw(c),
            }
            .alias(raw_token(c)),
        );
    }
    // An outcome count is checked like a token count (optional, whole,
    // bounded), and means nothing without the outcome it counts.
    let (count, bad_count) = count_column(
        OUTCOME_COUNT,
        schema.get(OUTCOME_COUNT),
        raw(OUTCOME_COUNT),
        false,
    );
    let bad_count = bad_count.or(count.clone().gt(lit(MAX_OUTCOME_COUNT)));
    let orphan = text(raw(OUTCOME))
        .is_null()
        .and(count.clone().is_not_null());
    ok = ok.and(bad_count.or(orphan).fill_null(lit(false)).not());
    exprs.push(count.alias(OUTCOME_COUNT));
    exprs.push(
        match schema.get(OUTCOME_COUNT) {
            Some(dt) if dt.is_integer() && !matches!(dt, DataType::UInt64) => {
                lit(NULL).cast(DataType::String)
            }
            _ => raw(OUTCOME_COUNT),
        }
        .alias(raw_token(OUTCOME_COUNT)),
    );
    // `tokens_estimated`: a boolean, or a flag written as text.
    if insight.estimated {
        let (estimated, bad_flag) = flag_column(TOKENS_ESTIMATED, schema.get(TOKENS_ESTIMATED));
        ok = ok.and(bad_flag.fill_null(lit(false)).not());
        exprs.push(estimated.alias(TOKENS_ESTIMATED));
        exprs.push(
            match schema.get(TOKENS_ESTIMATED) {
                None | Some(DataType::Boolean) => lit(NULL).cast(DataType::String),
                Some(_) => raw(TOKENS_ESTIMATED),
            }
            .alias(raw_token(TOKENS_ESTIMATED)),
        );
    }
    // Whatever is not surely fine is looked at row by row.
    exprs.push(ok.fill_null(lit(false)).alias(PLAIN));
    // Adapters that do not keep one row per line say which line a row
    // came from; the rest are numbered in file order.
    #[cfg(feature = "spark")]
    if schema.contains(POSITION) {
        let lf = lf.with_columns([
            col(POSITION).cast(IDX_DTYPE).alias(SEQ),
            (col(POSITION).cast(IDX_DTYPE) + lit(1).cast(IDX_DTYPE)).alias(work::ROW),
        ]);
        return Ok(lf.select(exprs));
    }
    let lf = if schema.contains(SOURCE_LINE) {
        lf.with_row_index(SEQ, None)
            .with_column(col(SOURCE_LINE).cast(IDX_DTYPE).alias(work::ROW))
    } else {
        lf.with_row_index(work::ROW, Some(1))
            .with_column(col(work::ROW).alias(SEQ))
    };
    Ok(lf.select(exprs))
}

/// A count column as an integer, and whether a row's value is no count:
/// missing when `required`, negative, not whole, or beyond an `i64`.
/// Integers are cast, not parsed; text is parsed only when the file
/// wrote text.
fn count_column(c: &str, dtype: Option<&DataType>, raw: Expr, required: bool) -> (Expr, Expr) {
    match dtype {
        None => (lit(NULL).cast(DataType::Int64), lit(false)),
        Some(dt) if dt.is_integer() => {
            let value = col(c).cast(DataType::Int64);
            let mut bad = value.clone().lt(lit(0i64));
            if required {
                bad = bad.or(col(c).is_null());
            }
            if matches!(dt, DataType::UInt64) {
                // Beyond i64: not a count we can hold.
                bad = bad.or(col(c).is_not_null().and(value.clone().is_null()));
            }
            (value, bad)
        }
        // Spark and pandas write counts as doubles: a whole value is a
        // count, anything else is not.
        Some(dt) if dt.is_float() => {
            let value = col(c).cast(DataType::Int64);
            let whole = col(c).eq(value.clone().cast(dt.clone()));
            let mut bad = value.clone().lt(lit(0i64)).or(col(c)
                .is_not_null()
                .and(whole.not().or(value.clone().is_null())));
            if required {
                bad = bad.or(col(c).is_null());
            }
            (value, bad)
        }
        Some(_) => {
            let text = text(raw);
            let value = text.clone().cast(DataType::Int64);
            let mut bad = value
                .clone()
                .lt(lit(0i64))
                .or(text.clone().is_not_null().and(value.clone().is_null()));
            if required {
                bad = bad.or(text.is_null());
            }
            (value, bad)
        }
    }
}

/// `tokens_estimated` as a boolean (null: not said, so not estimated), and
/// whether a row's value is no flag ([`flag_of`], as an expression).
/// Nothing is computed when the file has no such column.
fn flag_column(c: &str, dtype: Option<&DataType>) -> (Expr, Expr) {
    match dtype {
        None => (lit(NULL).cast(DataType::Boolean), lit(false)),
        Some(DataType::Boolean) => (col(c), lit(false)),
        Some(dt) => {
            let raw = if matches!(dt, DataType::String) {
                col(c)
            } else {
                col(c).cast(DataType::String)
            };
            let t = text(raw).str().to_lowercase();
            let any = |words: &[&str]| {
                words
                    .iter()
                    .map(|w| t.clone().eq(lit(*w)))
                    .reduce(Expr::or)
                    .expect("words")
            };
            let (yes, no, none) = (any(&FLAG_TRUE), any(&FLAG_FALSE), any(&FLAG_NONE));
            let value = when(yes.clone())
                .then(lit(true))
                .when(no.clone())
                .then(lit(false))
                .otherwise(lit(NULL).cast(DataType::Boolean));
            let bad = t.clone().is_not_null().and(yes.or(no).or(none).not());
            (value, bad)
        }
    }
}

/// Trimmed text, null when empty.
fn text(e: Expr) -> Expr {
    let e = e.str().strip_chars(lit(NULL));
    when(e.clone().eq(lit("")))
        .then(lit(NULL).cast(DataType::String))
        .otherwise(e)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
}

// ---------------------------------------------------------------------------
// Pass 1: candidate duplicate ids
// ---------------------------------------------------------------------------

/// Bits of an id's hash that pick its bucket.
const BUCKET_BITS: u32 = 12;

/// The 44 bits of an id's hash that decide whether it is a candidate: the
/// top 12 pick the bucket, the next 32 are stored.
fn id_key(id: &str) -> u64 {
    id_hash(id.as_bytes()) >> 20
}

/// A fast 64-bit hash of a byte string (multiply-fold over 8-byte words,
/// SplitMix64 finish). Collisions only ever cost a string compare.
fn id_hash(bytes: &[u8]) -> u64 {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    const K2: u64 = 0xD6E8_FEB8_6659_FD93;
    let fold = |a: u64, b: u64| {
        let p = u128::from(a).wrapping_mul(u128::from(b));
        (p as u64) ^ ((p >> 64) as u64)
    };
    let mut h = (bytes.len() as u64).wrapping_mul(K1);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = fold(h ^ v, K2);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = fold(h ^ u64::from_le_bytes(last), K1);
    }
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The trimmed id, or `None` when it is missing or blank.
fn trimmed_id(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// A row position never filled, and a row without an id.
const UNSET: u64 = u64::MAX;
const NO_ID: u64 = u64::MAX - 1;

/// Pass 1: reads only `request_id` (and row positions). Every id is hashed
/// to a 44-bit key ([`id_key`]); keys seen twice make their ids candidate
/// duplicates (every true duplicate, and the odd collision). The result
/// says, by source and row position, which rows have an id that is present
/// and no candidate. Holds 12 bytes a row while it works (each row's key by
/// position, and the key again in its bucket), one bit a row after. Also
/// returns the rows read, in all and per source.
fn plain_ids(
    all: LazyFrame,
    n_sources: usize,
    progress: Counter,
) -> PolarsResult<(PlainIds, u64, Vec<u64>)> {
    #[derive(Default)]
    struct Seen {
        /// Per source, each row's key by position (`__seq`).
        keys: Vec<Vec<u64>>,
        /// Keys by their top 12 bits, the next 32 kept.
        buckets: Vec<Vec<u32>>,
        rows: u64,
        /// Per source, the rows read (positions may start at 1, so the
        /// length of `keys` is not the count).
        counts: Vec<u64>,
    }
    let seen = Arc::new(Mutex::new(Seen {
        keys: vec![Vec::new(); n_sources],
        buckets: vec![Vec::new(); 1 << BUCKET_BITS],
        rows: 0,
        counts: vec![0; n_sources],
    }));
    let sink = seen.clone();
    // Each morsel is hashed and split by bucket in the scan's threads; the
    // shared part only copies runs.
    let file = move |df: DataFrame| -> PolarsResult<DataFrame> {
        let n = df.height();
        // An empty source gives empty morsels (and Polars' `get` panics
        // out of bounds).
        if n == 0 {
            return Ok(folded());
        }
        let src = df.column(work::SOURCE)?.cast(&DataType::UInt32)?;
        let seq = df.column(SEQ)?.cast(&DataType::UInt64)?;
        let (src, seq) = (src.u32()?, seq.u64()?);
        let ids = df.column(REQUEST_ID)?.str()?;
        let keys: Vec<u64> = ids
            .iter()
            .map(|v| trimmed_id(v).map_or(NO_ID, id_key))
            .collect();
        // Counting sort of the present keys by bucket.
        let mut starts = vec![0usize; (1 << BUCKET_BITS) + 1];
        for &k in keys.iter().filter(|&&k| k != NO_ID) {
            starts[(k >> 32) as usize + 1] += 1;
        }
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        let mut filed = vec![0u32; starts[1 << BUCKET_BITS]];
        let mut next = starts.clone();
        for &k in keys.iter().filter(|&&k| k != NO_ID) {
            let b = (k >> 32) as usize;
            filed[next[b]] = k as u32;
            next[b] += 1;
        }
        // A morsel is a run of rows of one source, in order.
        let (first_src, first_seq) = (src.get(0).unwrap_or(0), seq.get(0).unwrap_or(0));
        let run = src
            .iter()
            .zip(seq.iter())
            .zip(first_seq..)
            .all(|((s, q), want)| s == Some(first_src) && q == Some(want));
        progress.inc(n as u64);
        let mut seen = sink
            .lock()
            .map_err(|_| polars_err!(ComputeError: "a scan thread panicked"))?;
        let seen = &mut *seen;
        for (b, bucket) in seen.buckets.iter_mut().enumerate() {
            bucket.extend_from_slice(&filed[starts[b]..starts[b + 1]]);
        }
        if run {
            seen.counts[first_src as usize] += n as u64;
            let slots = &mut seen.keys[first_src as usize];
            let (lo, hi) = (first_seq as usize, first_seq as usize + n);
            if slots.len() < hi {
                slots.resize(hi, UNSET);
            }
            slots[lo..hi].copy_from_slice(&keys);
        } else {
            for (i, &k) in keys.iter().enumerate() {
                let (s, q) = (
                    src.get(i).unwrap_or(0) as usize,
                    seq.get(i).unwrap_or(0) as usize,
                );
                seen.counts[s] += 1;
                let slots = &mut seen.keys[s];
                if slots.len() <= q {
                    slots.resize(q + 1, UNSET);
                }
                slots[q] = k;
            }
        }
        seen.rows += n as u64;
        Ok(folded())
    };
    fold_morsels(
        all.select([col(work::SOURCE), col(SEQ), col(REQUEST_ID)]),
        file,
        "file id keys",
    )?;
    let mut seen = std::mem::take(&mut *seen.lock().expect("the scan is over"));
    let twice: Vec<u64> = seen
        .buckets
        .par_iter_mut()
        .enumerate()
        .flat_map_iter(|(b, values)| {
            values.sort_unstable();
            let mut twice = Vec::new();
            for w in values.windows(2) {
                if w[0] == w[1] && twice.last() != Some(&w[0]) {
                    twice.push(w[0]);
                }
            }
            std::mem::take(values);
            twice
                .into_iter()
                .map(move |v| ((b as u64) << 32) | u64::from(v))
        })
        .collect();
    let candidates = Candidates::new(twice);
    // Every row of a source files its key at its position.
    let rows_by_source = std::mem::take(&mut seen.counts);
    let sources = seen
        .keys
        .par_iter_mut()
        .map(|keys| {
            let mut bits = vec![0u64; keys.len().div_ceil(64)];
            for (i, &k) in keys.iter().enumerate() {
                if k != UNSET && k != NO_ID && !candidates.contains_key(k) {
                    bits[i / 64] |= 1 << (i % 64);
                }
            }
            std::mem::take(keys);
            bits
        })
        .collect();
    Ok((PlainIds { sources }, seen.rows, rows_by_source))
}

/// Per source, one bit per row position (`__seq`): the row's id is present
/// and no candidate duplicate, so the row needs no second look.
struct PlainIds {
    sources: Vec<Vec<u64>>,
}

impl PlainIds {
    fn get(&self, source: usize, seq: usize) -> bool {
        self.sources
            .get(source)
            .and_then(|bits| bits.get(seq / 64))
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }
}

/// Runs `fold` on every morsel of `lf` in the streaming engine's threads,
/// in parallel and in no particular order; what it folds into is its own.
fn fold_morsels<F>(lf: LazyFrame, fold: F, name: &'static str) -> PolarsResult<()>
where
    F: Fn(DataFrame) -> PolarsResult<DataFrame> + Send + Sync + 'static,
{
    let schema: Arc<dyn UdfSchema> = Arc::new(|_: &Schema| Ok(folded().schema().clone()));
    lf.map(fold, OptFlags::STREAMING, Some(schema), Some(name))
        .collect_with_engine(Engine::Streaming)?;
    Ok(())
}

/// What a fold leaves of a morsel: nothing.
fn folded() -> DataFrame {
    DataFrame::empty_with_schema(&Schema::from_iter([Field::new(
        "__folded".into(),
        DataType::Boolean,
    )]))
}

/// A set of id keys with a small bitmap in front, so that the usual
/// answer (no) costs one cached bit.
struct Candidates {
    bits: Vec<u64>,
    mask: u64,
    keys: HashSet<u64, BuildHasherDefault<KeyHasher>>,
}

impl Candidates {
    fn new(keys: Vec<u64>) -> Candidates {
        // About 16 bits per key: a false "maybe" one time in 16.
        let n_bits = (keys.len() * 16).next_power_of_two().max(64);
        let mut bits = vec![0u64; n_bits / 64];
        let mask = n_bits as u64 - 1;
        for &k in &keys {
            let i = spread(k) & mask;
            bits[(i / 64) as usize] |= 1 << (i % 64);
        }
        Candidates {
            bits,
            mask,
            keys: keys.into_iter().collect(),
        }
    }

    fn contains_key(&self, k: u64) -> bool {
        let i = spread(k) & self.mask;
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0 && self.keys.contains(&k)
    }
}

fn spread(k: u64) -> u64 {
    k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17
}

/// A fast hasher for keys made of hash bits and views (not for text an
/// adversary picks: a collision only costs a comparison).
#[derive(Default)]
struct KeyHasher(u64);

const KEY_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let z = self.0;
        let z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        z ^ (z >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.write_u64(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        for &b in words.remainder() {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, k: u64) {
        self.0 = (self.0 ^ k).wrapping_mul(KEY_MUL).rotate_left(29);
    }
}

/// An elementwise function of one column, run in the scan's own threads.
/// (`Expr::map` marks its function as one that may re-enter the engine,
/// which the streaming engine then runs on a blocking thread per morsel.)
fn per_row<F>(input: Expr, name: &'static str, dtype: DataType, f: F) -> Expr
where
    F: Fn(&Column) -> PolarsResult<Column> + Send + Sync + 'static,
{
    input.map_many(
        move |cols| f(&cols[0]),
        &[],
        move |_, _| Ok(Field::new(name.into(), dtype.clone())),
    )
}

// ---------------------------------------------------------------------------
// Pass 2: sums of the plain rows, and every other row whole
// ---------------------------------------------------------------------------

/// A morsel folded: its plain rows' sums by raw key, its other rows, its
/// users, and its plain rows of a conversation.
type MorselUsage = (
    Vec<(RawKey, Sums)>,
    Vec<Detail>,
    Option<MorselUsers>,
    Vec<TurnGroup>,
);

/// Raw provider, model and status: all a group-level verdict depends on.
type RawVerdictKey<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// The raw text key columns rows are summed by (with the day).
const KEY_TEXT: [&str; 7] = [
    PROVIDER,
    MODEL,
    BILLING_SCOPE,
    TEAM,
    USE_CASE,
    STATUS,
    OUTCOME,
];

/// Where [`KEY_TEXT`] holds the columns a row's fate depends on besides
/// its day: provider, model and status (the verdict), and team.
const FATE_TEXT: [usize; 4] = [0, 1, 5, 3];

/// A group of rows: the day and the key columns as read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RawKey {
    day: i32,
    text: [Option<String>; 7],
}

/// What decides whether a plain row's `user` counts — the row is in the
/// period, its provider, model and status are usable (and not excluded)
/// — and whose user it is: the day reduced to one bit, so that the users
/// of a month are kept per team and verdict, not per group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FateKey {
    in_period: bool,
    /// Raw provider, model, status and team.
    text: [Option<String>; 4],
}

/// Requests of one conversation whose fate is one, before it is known:
/// the raw provider, model, status and team it depends on (as
/// [`FateKey`]), the conversation as read, and per request its instant,
/// id and tokens (at most [`MAX_TOKENS`] a class, so a `u32` each).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TurnGroup {
    fate: [Option<String>; 4],
    conversation: String,
    turns: Vec<(i64, Box<str>, [u32; 4])>,
}

/// What pass 2 gathers: sums per group of plain rows, every other row,
/// the distinct users of plain rows by their fate, and the plain rows of
/// a conversation.
#[derive(Default)]
struct Usage {
    groups: HashMap<RawKey, Sums>,
    details: Vec<Detail>,
    turns: Vec<TurnGroup>,
    /// Users by fate, as ids of `user_names`: each text is held once
    /// however many fates and morsels it is seen in.
    users: HashMap<FateKey, HashSet<u32>>,
    user_names: UserNames,
}

/// Distinct texts, each held once, by a small id.
#[derive(Default)]
struct UserNames {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl UserNames {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }
}

/// A morsel's users: its distinct user texts (ids local to the morsel)
/// by fate, and the column they are read from.
struct MorselUsers {
    column: StringChunked,
    ids: KeyIds,
    fates: Vec<(FateKey, Vec<u32>)>,
}

/// Pass 2, one scan: plain rows (row checks passed, id present and no
/// candidate) are summed by their raw key values, per morsel in the scan's
/// threads; every other row is kept whole for [`MonthUsage::add_details`].
fn scan_usage(
    all: LazyFrame,
    plain: Arc<PlainIds>,
    period: Period,
    progress: Counter,
) -> PolarsResult<Usage> {
    let usage = Arc::new(Mutex::new(Usage::default()));
    let sink = usage.clone();
    let days = period_days(period);
    let fold = move |df: DataFrame| -> PolarsResult<DataFrame> {
        if df.height() == 0 {
            return Ok(folded());
        }
        let (groups, details, users, turns) = fold_usage(&df, &plain, days)?;
        progress.inc(df.height() as u64);
        let mut usage = sink
            .lock()
            .map_err(|_| polars_err!(ComputeError: "a scan thread panicked"))?;
        for (key, sums) in groups {
            usage.groups.entry(key).or_default().add(&sums);
        }
        usage.details.extend(details);
        usage.turns.extend(turns);
        if let Some(m) = users {
            // Texts are looked up borrowed and copied only when new.
            let names: Vec<Option<u32>> = (0..m.ids.rows.len() as u32)
                .map(|u| m.ids.text_ref(&m.column, u).map(|t| usage.user_names.id(t)))
                .collect();
            for (fate, locals) in m.fates {
                let set = usage.users.entry(fate).or_default();
                set.extend(locals.iter().filter_map(|&u| names[u as usize]));
            }
        }
        Ok(folded())
    };
    fold_morsels(all, fold, "sum usage")?;
    let usage = std::mem::take(&mut *usage.lock().expect("the scan is over"));
    Ok(usage)
}

/// A morsel's key column as small ids, one per distinct view (length and
/// inline bytes, or length, prefix and place in a buffer): equal views are
/// equal strings, and equal strings with unequal views merely get two ids
/// (they meet again by their text). Null and empty text share id 0: they
/// mean the same to every key.
struct KeyIds {
    ids: Vec<u32>,
    /// A row holding each id's text.
    rows: Vec<usize>,
}

impl KeyIds {
    fn new(ca: &StringChunked) -> KeyIds {
        let ca = ca.rechunk();
        let mut table: HashMap<u128, u32, BuildHasherDefault<KeyHasher>> = HashMap::default();
        let mut rows = vec![usize::MAX];
        let mut ids = Vec::with_capacity(ca.len());
        // Neighbouring rows often share a value: the last one is checked
        // before the table.
        let (mut last_view, mut last_id) = (0u128, 0u32);
        let mut i = 0usize;
        for (arr, chunk) in ca.downcast_iter().zip(ca.chunks()) {
            let validity = chunk.validity();
            for (j, view) in arr.views().iter().enumerate() {
                let view = view.as_u128();
                let id = if view == 0 || validity.is_some_and(|v| !v.get_bit(j)) {
                    0
                } else if view == last_view {
                    last_id
                } else {
                    let id = *table.entry(view).or_insert_with(|| {
                        rows.push(i);
                        rows.len() as u32 - 1
                    });
                    (last_view, last_id) = (view, id);
                    id
                };
                ids.push(id);
                i += 1;
            }
        }
        KeyIds { ids, rows }
    }

    /// Bits that hold every id.
    fn width(&self) -> u32 {
        u32::BITS - (self.rows.len() as u32).leading_zeros()
    }

    /// The text of `id`, borrowed from the column.
    fn text_ref<'c>(&self, ca: &'c StringChunked, id: u32) -> Option<&'c str> {
        let row = self.rows[id as usize];
        if row == usize::MAX { None } else { ca.get(row) }
    }

    fn text(&self, ca: &StringChunked, id: u32) -> Option<String> {
        let row = self.rows[id as usize];
        (row != usize::MAX)
            .then(|| ca.get(row).map(String::from))
            .flatten()
    }
}

/// The period's first and last day, as days since the epoch.
fn period_days(period: Period) -> (i32, i32) {
    let days = |d: NaiveDate| (d - epoch()).num_days() as i32;
    (days(period.start()), days(period.last_day()))
}

/// A column of token counts as they are summed: plain rows hold no
/// negative count, and a missing one is 0.
fn counts(ca: &Int64Chunked) -> Vec<u64> {
    let mut out = Vec::with_capacity(ca.len());
    for (arr, chunk) in ca.downcast_iter().zip(ca.chunks()) {
        let values = arr.values().iter().map(|&v| u64::try_from(v).unwrap_or(0));
        match chunk.validity() {
            None => out.extend(values),
            Some(valid) => out.extend(
                values
                    .enumerate()
                    .map(|(j, v)| if valid.get_bit(j) { v } else { 0 }),
            ),
        }
    }
    out
}

/// Pass 2 on one morsel: its plain rows summed by (day, key ids), and its
/// other rows whole.
fn fold_usage(df: &DataFrame, plain: &PlainIds, period: (i32, i32)) -> PolarsResult<MorselUsage> {
    let n = df.height();
    let src = df.column(work::SOURCE)?.cast(&DataType::UInt32)?;
    let seq = df.column(SEQ)?.cast(&DataType::UInt64)?;
    let (src, seq) = (src.u32()?, seq.u64()?);
    let checked = df.column(PLAIN)?.bool()?;
    let day = df.column(work::DAY)?.cast(&DataType::Int32)?;
    let day = day.i32()?;
    let is_plain: Vec<bool> = checked
        .iter()
        .zip(day.iter())
        .zip(src.iter().zip(seq.iter()))
        .map(|((ok, day), (s, q))| {
            ok == Some(true)
                && day.is_some()
                && matches!((s, q), (Some(s), Some(q)) if plain.get(s as usize, q as usize))
        })
        .collect();
    let days: Vec<i32> = day.iter().map(|d| d.unwrap_or(0)).collect();
    let texts = KEY_TEXT
        .map(|c| -> PolarsResult<StringChunked> { Ok(df.column(c)?.str()?.clone()) })
        .into_iter()
        .collect::<PolarsResult<Vec<_>>>()?;
    let keys: Vec<KeyIds> = texts.iter().map(KeyIds::new).collect();
    let tokens = TOKEN_COLUMNS
        .map(|c| -> PolarsResult<Vec<u64>> { Ok(counts(df.column(c)?.i64()?)) })
        .into_iter()
        .collect::<PolarsResult<Vec<_>>>()?;
    // Outcomes per row: the count, 1 for an outcome given alone; nothing
    // (an empty vector) in a morsel without outcomes.
    let outcome_ids = &keys[6].ids;
    let outcomes: Vec<u64> = if outcome_ids.iter().all(|&id| id == 0) {
        Vec::new()
    } else {
        outcome_ids
            .iter()
            .zip(df.column(OUTCOME_COUNT)?.i64()?.iter())
            .map(|(&id, n)| match (id, n) {
                (0, _) => 0,
                (_, None) => 1,
                (_, Some(n)) => u64::try_from(n).unwrap_or(0),
            })
            .collect()
    };
    let users = morsel_users(df, &is_plain, &days, period, &texts, &keys)?;
    // Per row, whether its counts were estimated; nothing (an empty
    // vector) in a morsel without the flag.
    let estimated: Vec<bool> = match df.column(TOKENS_ESTIMATED).ok() {
        Some(flag) if flag.null_count() < flag.len() => {
            flag.bool()?.iter().map(|v| v == Some(true)).collect()
        }
        _ => Vec::new(),
    };
    let turns = morsel_turns(df, &is_plain, &days, &texts, &keys, &tokens)?;

    // The key ids packed in one word, beside the day.
    let widths: Vec<u32> = keys.iter().map(KeyIds::width).collect();
    let packed = widths.iter().sum::<u32>() <= u64::BITS;
    let pack = |i: usize| -> (i32, u64) {
        let mut word = 0u64;
        for (k, &w) in keys.iter().zip(&widths) {
            word = word.checked_shl(w).unwrap_or(0) | u64::from(k.ids[i]);
        }
        (days[i], word)
    };
    let mut index: HashMap<(i32, u64), usize, BuildHasherDefault<KeyHasher>> = HashMap::default();
    let mut index_wide: HashMap<(i32, [u32; 7]), usize, BuildHasherDefault<KeyHasher>> =
        HashMap::default();
    let mut sums: Vec<(Sums, usize)> = Vec::new();
    let mut others: Vec<IdxSize> = Vec::new();
    for i in 0..n {
        if !is_plain[i] {
            others.push(i as IdxSize);
            continue;
        }
        let slot = if packed {
            *index.entry(pack(i)).or_insert_with(|| {
                sums.push((Sums::default(), i));
                sums.len() - 1
            })
        } else {
            let wide = (days[i], std::array::from_fn(|k| keys[k].ids[i]));
            *index_wide.entry(wide).or_insert_with(|| {
                sums.push((Sums::default(), i));
                sums.len() - 1
            })
        };
        let s = &mut sums[slot].0;
        for (t, column) in tokens.iter().enumerate() {
            s.tokens[t] = s.tokens[t].saturating_add(column[i]);
        }
        s.requests += 1;
        if let Some(n) = outcomes.get(i) {
            s.outcomes = s.outcomes.saturating_add(*n);
        }
        if estimated.get(i) == Some(&true) {
            for (t, column) in tokens.iter().enumerate() {
                s.estimated[t] = s.estimated[t].saturating_add(column[i]);
            }
        }
    }
    let groups = sums
        .into_iter()
        .map(|(sums, i)| {
            let key = RawKey {
                day: days[i],
                text: std::array::from_fn(|k| keys[k].text(&texts[k], keys[k].ids[i])),
            };
            (key, sums)
        })
        .collect();
    let details = if others.is_empty() {
        Vec::new()
    } else {
        let idx = IdxCa::from_vec("".into(), others);
        Detail::from_frame(&df.take(&idx)?)?
    };
    Ok((groups, details, users, turns))
}

/// The plain rows of a morsel that name a conversation, by fate and
/// conversation (each text held once a group). A morsel without
/// conversation ids costs one null count.
fn morsel_turns(
    df: &DataFrame,
    is_plain: &[bool],
    days: &[i32],
    texts: &[StringChunked],
    keys: &[KeyIds],
    tokens: &[Vec<u64>],
) -> PolarsResult<Vec<TurnGroup>> {
    let Ok(conversation) = df.column(CONVERSATION_ID) else {
        return Ok(Vec::new());
    };
    if conversation.null_count() == conversation.len() {
        return Ok(Vec::new());
    }
    let conversation = conversation.str()?.rechunk().into_owned();
    let conversations = KeyIds::new(&conversation);
    let ids = df.column(REQUEST_ID)?.str()?;
    let text = df.column(TIMESTAMP_TEXT)?.str()?;
    let micros = df.column(TIMESTAMP_MICROS)?.i64()?;
    let mut index: HashMap<([u32; 4], u32), usize, BuildHasherDefault<KeyHasher>> =
        HashMap::default();
    let mut out: Vec<TurnGroup> = Vec::new();
    for (i, &c) in conversations.ids.iter().enumerate() {
        if c == 0 || !is_plain[i] {
            continue;
        }
        let fate = FATE_TEXT.map(|k| keys[k].ids[i]);
        let slot = *index.entry((fate, c)).or_insert_with(|| {
            out.push(TurnGroup {
                fate: std::array::from_fn(|j| {
                    let k = FATE_TEXT[j];
                    keys[k].text(&texts[k], fate[j])
                }),
                conversation: conversations.text(&conversation, c).unwrap_or_default(),
                turns: Vec::new(),
            });
            out.len() - 1
        });
        out[slot].turns.push((
            instant(micros.get(i), text.get(i), days[i]),
            trimmed_id(ids.get(i)).unwrap_or("").into(),
            std::array::from_fn(|t| u32::try_from(tokens[t][i]).unwrap_or(u32::MAX)),
        ));
    }
    out.retain(|g| !is_null_text(&g.conversation));
    Ok(out)
}

/// A row's time in microseconds since the epoch: the typed timestamp, else
/// the text's, else (never for a row whose day was read) its day's start.
fn instant(micros: Option<i64>, text: Option<&str>, day: i32) -> i64 {
    micros
        .or_else(|| text.and_then(time::utc_micros))
        .unwrap_or(i64::from(day) * 86_400_000_000)
}

/// The distinct `user`s of a morsel's plain rows, by fate (in the period
/// or not, raw provider, model, status and team). A morsel without users
/// costs one null count.
fn morsel_users(
    df: &DataFrame,
    is_plain: &[bool],
    days: &[i32],
    (first, last): (i32, i32),
    texts: &[StringChunked],
    keys: &[KeyIds],
) -> PolarsResult<Option<MorselUsers>> {
    let user = df.column(USER)?.str()?;
    if user.null_count() == user.len() {
        return Ok(None);
    }
    let column = user.rechunk().into_owned();
    let ids = KeyIds::new(&column);
    let mut fates: HashMap<(bool, [u32; 4]), HashSet<u32>, BuildHasherDefault<KeyHasher>> =
        HashMap::default();
    for (i, &u) in ids.ids.iter().enumerate() {
        if u == 0 || !is_plain[i] {
            continue;
        }
        let fate = (
            (first..=last).contains(&days[i]),
            FATE_TEXT.map(|k| keys[k].ids[i]),
        );
        fates.entry(fate).or_default().insert(u);
    }
    let fates = fates
        .into_iter()
        .map(|((in_period, fate_ids), users)| {
            let text = std::array::from_fn(|j| {
                let k = FATE_TEXT[j];
                keys[k].text(&texts[k], fate_ids[j])
            });
            (FateKey { in_period, text }, users.into_iter().collect())
        })
        .collect();
    Ok(Some(MorselUsers { column, ids, fates }))
}

// ---------------------------------------------------------------------------
// Pass 3: the rows of bad groups, by name
// ---------------------------------------------------------------------------

/// The plain rows whose provider, model or status fails a check (the
/// group-level row checks, then the catalog).
fn list_bad_rows(
    all: LazyFrame,
    plain: Arc<PlainIds>,
    catalog: Arc<Catalog>,
) -> PolarsResult<DataFrame> {
    let plain_id = col(work::SOURCE).map_many(
        move |cols| {
            let src = cols[0].cast(&DataType::UInt32)?;
            let seq = cols[1].cast(&DataType::UInt64)?;
            let (src, seq) = (src.u32()?, seq.u64()?);
            Ok(BooleanChunked::from_iter_values(
                PLAIN.into(),
                src.iter().zip(seq.iter()).map(|(s, q)| {
                    matches!((s, q), (Some(s), Some(q)) if plain.get(s as usize, q as usize))
                }),
            )
            .into_column())
        },
        &[col(SEQ)],
        |_, _| Ok(Field::new(PLAIN.into(), DataType::Boolean)),
    );
    let bad = col(PROVIDER).map_many(
        move |cols| {
            let (p, m, s) = (cols[0].str()?, cols[1].str()?, cols[2].str()?);
            let mut memo: HashMap<RawVerdictKey<'_>, bool> = HashMap::new();
            let out = BooleanChunked::from_iter_values(
                "__bad".into(),
                p.iter().zip(m.iter()).zip(s.iter()).map(|((p, m), s)| {
                    *memo
                        .entry((p, m, s))
                        .or_insert_with(|| matches!(judge(&catalog, p, m, s), Verdict::Bad { .. }))
                }),
            );
            Ok(out.into_column())
        },
        &[col(MODEL), col(STATUS)],
        |_, _| Ok(Field::new("__bad".into(), DataType::Boolean)),
    );
    // Rows with a candidate id were judged one by one already.
    let result = all
        .filter(
            col(PLAIN)
                .and(col(work::DAY).is_not_null())
                .and(plain_id)
                .and(bad),
        )
        .collect_with_engine(Engine::Streaming)?;
    Ok(result.unwrap_single())
}

// ---------------------------------------------------------------------------
// The month's usage, built from groups and single rows
// ---------------------------------------------------------------------------

/// Key values normalised: what a cell is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CellKey {
    provider: String,
    scope: String,
    day: NaiveDate,
    model: String,
    team: String,
    use_case: String,
}

#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    tokens: [u64; 4],
    requests: u64,
    errors: u64,
    error_tokens: [u64; 4],
    /// Σ outcome counts of the rows (their `outcome` is in the key).
    outcomes: u64,
    /// Tokens per class of the rows whose counts were estimated.
    estimated: [u64; 4],
}

impl Sums {
    fn add(&mut self, other: &Sums) {
        for t in 0..4 {
            self.tokens[t] = self.tokens[t].saturating_add(other.tokens[t]);
        }
        self.requests += other.requests;
        self.errors += other.errors;
        self.outcomes = self.outcomes.saturating_add(other.outcomes);
        for t in 0..4 {
            self.estimated[t] = self.estimated[t].saturating_add(other.estimated[t]);
        }
    }
}

/// A row's or group's provider, model and status, normalised, or why they
/// cannot be used (checked in the order of the row checks).
#[derive(Debug, Clone)]
enum Verdict {
    Usable {
        provider: String,
        model: String,
        error: bool,
    },
    Bad {
        column: &'static str,
        reason: String,
    },
}

/// Trimmed text, `None` when missing or blank (like [`text`]).
fn duplicate_reason(id: &str) -> String {
    format!("duplicate `request_id` `{id}`; the first row with it was kept")
}

fn clean(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// `ok`, `error`, or the unknown status as written (lower-cased).
fn status_of(v: Option<&str>) -> std::result::Result<bool, String> {
    match clean(v).map(str::to_lowercase).as_deref() {
        None | Some("ok" | "success") => Ok(false),
        Some("error" | "failure" | "failed") => Ok(true),
        Some(other) => Err(other.to_string()),
    }
}

/// The verdict on a provider, model and status: the group-level row
/// checks (`provider` and `model` present, a known status), then the
/// catalog.
fn judge(catalog: &Catalog, p: Option<&str>, m: Option<&str>, s: Option<&str>) -> Verdict {
    let Some(provider) = clean(p).map(str::to_lowercase) else {
        return Verdict::Bad {
            column: PROVIDER,
            reason: format!("missing `{PROVIDER}`"),
        };
    };
    let Some(model) = clean(m) else {
        return Verdict::Bad {
            column: MODEL,
            reason: format!("missing `{MODEL}`"),
        };
    };
    let error = match status_of(s) {
        Ok(e) => e,
        Err(status) => {
            return Verdict::Bad {
                column: STATUS,
                reason: format!("`status` must be `ok` or `error`, not `{status}`"),
            };
        }
    };
    match catalog.resolve(&provider, model) {
        Some(entry) => Verdict::Usable {
            provider,
            model: entry.model.clone(),
            error,
        },
        None => Verdict::Bad {
            column: MODEL,
            reason: format!("model `{model}` of provider `{provider}` is not in the catalog"),
        },
    }
}

struct MonthUsage<'a> {
    catalog: &'a Catalog,
    period: Period,
    failed: FailedRequests,
    /// Verdicts by raw (provider, model, status).
    verdicts: HashMap<[Option<String>; 3], Verdict>,
    cells: BTreeMap<CellKey, Sums>,
    quarantine: Vec<QuarantinedRow>,
    stats: RequestStats,
    /// (team, outcome) → outcomes of used requests.
    outcomes: BTreeMap<(String, String), u64>,
    /// Team → the distinct users of its used requests, as ids of
    /// `user_names` (trimmed texts).
    users: BTreeMap<String, HashSet<u32>>,
    user_names: UserNames,
    /// (team, conversation) → the turns of used requests.
    conversations: Conversations,
    /// (provider, model) → its index in `conversations.models`.
    turn_models: HashMap<(String, String), u32>,
}

impl<'a> MonthUsage<'a> {
    fn new(catalog: &'a Catalog, period: Period, failed: FailedRequests) -> MonthUsage<'a> {
        MonthUsage {
            catalog,
            period,
            failed,
            verdicts: HashMap::new(),
            cells: BTreeMap::new(),
            quarantine: Vec::new(),
            stats: RequestStats::default(),
            outcomes: BTreeMap::new(),
            users: BTreeMap::new(),
            user_names: UserNames::default(),
            conversations: Conversations::default(),
            turn_models: HashMap::new(),
        }
    }

    /// [`judge`], remembering the catalog's answers.
    fn verdict(&mut self, p: Option<&str>, m: Option<&str>, s: Option<&str>) -> Verdict {
        let key = [p, m, s].map(|v| v.map(String::from));
        if let Some(v) = self.verdicts.get(&key) {
            return v.clone();
        }
        let v = judge(self.catalog, p, m, s);
        self.verdicts.insert(key, v.clone());
        v
    }

    /// Counts `n` usable requests of one key.
    #[allow(clippy::too_many_arguments)]
    fn add_usage(
        &mut self,
        provider: String,
        model: String,
        error: bool,
        day: Option<i32>,
        scope: Option<&str>,
        team: Option<&str>,
        use_case: Option<&str>,
        tokens: [u64; 4],
        n: u64,
        (outcome, outcomes): (Option<&str>, u64),
        estimated: [u64; 4],
    ) {
        let day = epoch() + chrono::Duration::days(i64::from(day.unwrap_or(0)));
        if !self.period.contains(day) {
            self.stats.outside_period += n;
            return;
        }
        if error && self.failed == FailedRequests::Exclude {
            self.stats.failed_excluded += n;
            return;
        }
        self.stats.used += n;
        if error {
            self.stats.errors += n;
        }
        let team = clean(team).unwrap_or(UNTAGGED_TEAM).to_string();
        if let Some(outcome) = clean(outcome) {
            let c = self
                .outcomes
                .entry((team.clone(), outcome.to_string()))
                .or_default();
            *c = c.saturating_add(outcomes);
        }
        let key = CellKey {
            provider,
            scope: clean(scope).unwrap_or("").to_string(),
            day,
            model,
            team,
            use_case: clean(use_case).unwrap_or(NO_USE_CASE).to_string(),
        };
        let cell = self.cells.entry(key).or_default();
        for (t, n) in tokens.into_iter().enumerate() {
            cell.tokens[t] = cell.tokens[t].saturating_add(n);
        }
        cell.requests += n;
        for (t, n) in estimated.into_iter().enumerate() {
            cell.estimated[t] = cell.estimated[t].saturating_add(n);
        }
        if error {
            cell.errors += n;
            for (t, n) in tokens.into_iter().enumerate() {
                cell.error_tokens[t] = cell.error_tokens[t].saturating_add(n);
            }
        }
    }

    fn quarantine(
        &mut self,
        source: &str,
        detail: &Detail,
        column: &str,
        reason: String,
        kind: QuarantineKind,
    ) {
        match kind {
            QuarantineKind::Duplicate => self.stats.duplicates += 1,
            QuarantineKind::Invalid => self.stats.quarantined += 1,
        }
        self.quarantine.push(QuarantinedRow {
            kind,
            ..QuarantinedRow::invalid(source, detail.row, column, reason)
                .with_fields(detail.fields())
        });
    }

    /// The sums of plain rows per group of raw key values; whether some
    /// group's key values fail a check (its rows are then named by pass 3).
    fn add_groups(&mut self, groups: HashMap<RawKey, Sums>) -> bool {
        let mut any_bad = false;
        for (key, sums) in groups {
            let [p, m, scope, team, use_case, st, outcome] = &key.text;
            match self.verdict(p.as_deref(), m.as_deref(), st.as_deref()) {
                Verdict::Usable {
                    provider,
                    model,
                    error,
                } => self.add_usage(
                    provider,
                    model,
                    error,
                    Some(key.day),
                    scope.as_deref(),
                    team.as_deref(),
                    use_case.as_deref(),
                    sums.tokens,
                    sums.requests,
                    (outcome.as_deref(), sums.outcomes),
                    sums.estimated,
                ),
                Verdict::Bad { .. } => any_bad = true,
            }
        }
        any_bad
    }

    /// The users of rows whose fate is known without the rows: those of
    /// usable, used requests count for their team (the rows of a bad
    /// verdict are quarantined by pass 3 and count nothing).
    fn add_users(&mut self, users: HashMap<FateKey, HashSet<u32>>, names: &UserNames) {
        // Raw texts to trimmed ones, each once.
        let trimmed: Vec<Option<u32>> = names
            .names
            .iter()
            .map(|n| clean(Some(n)).map(|t| self.user_names.id(t)))
            .collect();
        for (fate, ids) in users {
            let [p, m, st, team] = &fate.text;
            let Verdict::Usable { error, .. } =
                self.verdict(p.as_deref(), m.as_deref(), st.as_deref())
            else {
                continue;
            };
            if !fate.in_period || (error && self.failed == FailedRequests::Exclude) {
                continue;
            }
            let team = clean(team.as_deref()).unwrap_or(UNTAGGED_TEAM).to_string();
            let set = self.users.entry(team).or_default();
            set.extend(ids.iter().filter_map(|&u| trimmed[u as usize]));
        }
    }

    /// The requests of conversations, by their fate: those of usable, used
    /// requests (in the period, not excluded as failed) become turns of
    /// their team's conversation; the rest count nothing, as their tokens
    /// do not.
    fn add_turns(&mut self, groups: Vec<TurnGroup>) {
        let (first, last) = period_days(self.period);
        let in_period = |micros: i64| {
            let day = micros.div_euclid(86_400_000_000);
            (i64::from(first)..=i64::from(last)).contains(&day)
        };
        for g in groups {
            let [p, m, st, team] = &g.fate;
            let Verdict::Usable {
                provider,
                model,
                error,
            } = self.verdict(p.as_deref(), m.as_deref(), st.as_deref())
            else {
                continue;
            };
            if error && self.failed == FailedRequests::Exclude {
                continue;
            }
            let next = self.conversations.models.len() as u32;
            let model = *self
                .turn_models
                .entry((provider.clone(), model.clone()))
                .or_insert_with(|| {
                    self.conversations.models.push((provider, model));
                    next
                });
            let team = clean(team.as_deref()).unwrap_or(UNTAGGED_TEAM).to_string();
            let conversation = g.conversation.trim().to_string();
            let list = self
                .conversations
                .turns
                .entry((team, conversation))
                .or_default();
            list.extend(g.turns.into_iter().filter(|t| in_period(t.0)).map(
                |(micros, request_id, tokens)| Turn {
                    micros,
                    request_id,
                    model,
                    tokens,
                    error,
                },
            ));
        }
    }

    /// Rows that are not plain, one by one in file order: the row checks,
    /// then exact de-duplication by the full id among rows that pass them,
    /// then the catalog.
    fn add_details(&mut self, mut rows: Vec<Detail>, sources: &[RequestSource]) {
        rows.sort_by_key(|r| (r.source, r.seq));
        let mut seen: HashSet<&str> = HashSet::with_capacity(rows.len());
        // Usable rows summed by their raw keys before they become cells.
        type Key<'r> = (
            Option<&'r str>,
            Option<&'r str>,
            Option<&'r str>,
            Option<i32>,
            Option<&'r str>,
            Option<&'r str>,
            Option<&'r str>,
            Option<&'r str>,
        );
        // Tokens, requests, outcomes and estimated tokens.
        let mut usable: HashMap<Key<'_>, ([u64; 4], u64, u64, [u64; 4])> = HashMap::new();
        let mut turns = Vec::new();
        let (first, last) = period_days(self.period);
        let mut users: HashMap<FateKey, HashSet<u32>> = HashMap::new();
        let mut names = UserNames::default();
        let mut verdicts: HashMap<RawVerdictKey<'_>, Verdict> = HashMap::new();
        for r in &rows {
            let source = sources[r.source as usize].url.as_str();
            if let Some((column, reason)) = r.failed_check() {
                self.quarantine(source, r, column, reason, QuarantineKind::Invalid);
                continue;
            }
            let id = trimmed_id(r.id.as_deref()).expect("checked");
            if !seen.insert(id) {
                self.quarantine(
                    source,
                    r,
                    REQUEST_ID,
                    duplicate_reason(id),
                    QuarantineKind::Duplicate,
                );
                continue;
            }
            let (p, m, st) = (
                r.provider.as_deref(),
                r.model.as_deref(),
                r.status.as_deref(),
            );
            let catalog = self.catalog;
            let verdict = verdicts
                .entry((p, m, st))
                .or_insert_with(|| judge(catalog, p, m, st));
            if let Verdict::Bad { column, reason } = verdict {
                let (column, reason) = (*column, reason.clone());
                self.quarantine(source, r, column, reason, QuarantineKind::Invalid);
                continue;
            }
            let key = (
                p,
                m,
                st,
                r.day,
                r.scope.as_deref(),
                r.team.as_deref(),
                r.use_case.as_deref(),
                r.outcome.as_deref(),
            );
            let sums = usable.entry(key).or_default();
            let tokens = r.tokens();
            for (t, v) in tokens.iter().enumerate() {
                sums.0[t] = sums.0[t].saturating_add(*v);
            }
            sums.1 += 1;
            if r.estimated == Some(true) {
                for (t, v) in tokens.iter().enumerate() {
                    sums.3[t] = sums.3[t].saturating_add(*v);
                }
            }
            if let Some(c) = r.conversation.as_deref().filter(|c| !is_null_text(c)) {
                let day = r.day.unwrap_or(0);
                turns.push(TurnGroup {
                    conversation: c.to_string(),
                    fate: [&r.provider, &r.model, &r.status, &r.team].map(Clone::clone),
                    turns: vec![(
                        instant(r.micros, r.timestamp.as_deref(), day),
                        id.into(),
                        tokens.map(|t| u32::try_from(t).unwrap_or(u32::MAX)),
                    )],
                });
            }
            if clean(r.outcome.as_deref()).is_some() {
                let n = r.outcome_count.map_or(1, |n| u64::try_from(n).unwrap_or(0));
                sums.2 = sums.2.saturating_add(n);
            }
            if let Some(user) = clean(r.user.as_deref()) {
                let fate = FateKey {
                    in_period: r.day.is_some_and(|d| (first..=last).contains(&d)),
                    text: [&r.provider, &r.model, &r.status, &r.team].map(Clone::clone),
                };
                users.entry(fate).or_default().insert(names.id(user));
            }
        }
        self.add_users(users, &names);
        self.add_turns(turns);
        let mut usable: Vec<_> = usable.into_iter().collect();
        usable.sort_unstable();
        for ((p, m, st, day, scope, team, use_case, outcome), (tokens, n, outcomes, estimated)) in
            usable
        {
            if let Some(Verdict::Usable {
                provider,
                model,
                error,
            }) = verdicts.get(&(p, m, st)).cloned()
            {
                self.add_usage(
                    provider,
                    model,
                    error,
                    day,
                    scope,
                    team,
                    use_case,
                    tokens,
                    n,
                    (outcome, outcomes),
                    estimated,
                );
            }
        }
    }

    /// The plain rows of bad groups, named.
    /// Duplicates judged elsewhere (by the cluster, among rows of an id
    /// that all pass the row checks, the first kept): the rows named, up
    /// to the list limit, and `total` counted.
    #[cfg(feature = "spark")]
    fn add_duplicates(&mut self, rows: &[Detail], total: u64, sources: &[RequestSource]) {
        for r in rows {
            let id = trimmed_id(r.id.as_deref()).unwrap_or("");
            let source = sources[r.source as usize].url.as_str();
            self.quarantine(
                source,
                r,
                REQUEST_ID,
                duplicate_reason(id),
                QuarantineKind::Duplicate,
            );
        }
        self.stats.duplicates += total - rows.len() as u64;
    }

    fn add_bad_rows(&mut self, df: &DataFrame, sources: &[RequestSource]) -> PolarsResult<()> {
        for r in Detail::from_frame(df)? {
            let source = sources[r.source as usize].url.as_str();
            if let Verdict::Bad { column, reason } = self.verdict(
                r.provider.as_deref(),
                r.model.as_deref(),
                r.status.as_deref(),
            ) {
                self.quarantine(source, &r, column, reason, QuarantineKind::Invalid);
            }
        }
        Ok(())
    }

    fn finish(mut self) -> RequestLog {
        self.quarantine.sort();
        let cells = self
            .cells
            .into_iter()
            .map(|(k, s)| UsageCell {
                provider: k.provider,
                scope: k.scope,
                day: k.day,
                model: k.model,
                team: k.team,
                use_case: k.use_case,
                tokens: s.tokens,
                requests: s.requests,
                errors: s.errors,
                error_tokens: s.error_tokens,
                estimated_tokens: s.estimated,
            })
            .collect();
        let mut stats = self.stats;
        stats.rows_read = stats.quarantined
            + stats.duplicates
            + stats.outside_period
            + stats.failed_excluded
            + stats.used;
        RequestLog {
            cells,
            quarantine: self.quarantine,
            stats,
            rows_by_source: Vec::new(),
            outcomes: self.outcomes,
            users: self
                .users
                .into_iter()
                .filter(|(_, u)| !u.is_empty())
                .map(|(t, u)| (t, u.len() as u64))
                .collect(),
            conversations: Conversations {
                models: self.conversations.models,
                turns: self
                    .conversations
                    .turns
                    .into_iter()
                    .filter(|(_, turns)| !turns.is_empty())
                    .map(|(k, mut turns)| {
                        turns.sort_unstable();
                        (k, turns)
                    })
                    .collect(),
            },
            engine: None,
        }
    }
}

/// A row that is not plain, as read (text trimmed only where messages
/// quote it), owned: a filtered string column would keep its whole
/// source buffers alive.
#[derive(Debug, Clone)]
struct Detail {
    source: u32,
    row: u64,
    seq: u64,
    id: Option<String>,
    timestamp: Option<String>,
    /// A typed timestamp, in microseconds since the epoch (UTC).
    micros: Option<i64>,
    day: Option<i32>,
    provider: Option<String>,
    model: Option<String>,
    scope: Option<String>,
    team: Option<String>,
    use_case: Option<String>,
    status: Option<String>,
    values: [Option<i64>; 4],
    texts: [Option<String>; 4],
    outcome: Option<String>,
    outcome_count: Option<i64>,
    /// `outcome_count` as written, for messages.
    outcome_count_text: Option<String>,
    user: Option<String>,
    /// `tokens_estimated` as read (a boolean column, or text that is a flag).
    estimated: Option<bool>,
    /// `tokens_estimated` as written, when the file wrote text.
    estimated_text: Option<String>,
    conversation: Option<String>,
}

impl Detail {
    /// The token counts of a row that passed the checks (a missing one is 0).
    fn tokens(&self) -> [u64; 4] {
        self.values
            .map(|v| v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    /// The rows of a (small) frame of normalised columns.
    fn from_frame(df: &DataFrame) -> PolarsResult<Vec<Detail>> {
        let text = |c: &str| -> PolarsResult<StringChunked> {
            Ok(df.column(c)?.cast(&DataType::String)?.str()?.clone())
        };
        let owned = |ca: &StringChunked, i: usize| ca.get(i).map(String::from);
        // Token counts as the file wrote them, trimmed, for messages.
        let trimmed = |ca: &StringChunked, i: usize| clean(ca.get(i)).map(String::from);
        let src = df.column(work::SOURCE)?.cast(&DataType::UInt32)?;
        let row = df.column(work::ROW)?.cast(&DataType::UInt64)?;
        let seq = df.column(SEQ)?.cast(&DataType::UInt64)?;
        let day = df.column(work::DAY)?.cast(&DataType::Int32)?;
        let (src, row, seq, day) = (src.u32()?, row.u64()?, seq.u64()?, day.i32()?);
        let (id, ts) = (text(REQUEST_ID)?, text(TIMESTAMP_TEXT)?);
        let micros = df.column(TIMESTAMP_MICROS)?.cast(&DataType::Int64)?;
        let micros = micros.i64()?;
        let keys = KEY_TEXT
            .map(text)
            .into_iter()
            .collect::<PolarsResult<Vec<_>>>()?;
        let values = TOKEN_COLUMNS
            .map(|c| -> PolarsResult<Int64Chunked> { Ok(df.column(c)?.i64()?.clone()) })
            .into_iter()
            .collect::<PolarsResult<Vec<_>>>()?;
        let texts = TOKEN_COLUMNS
            .map(|c| text(&raw_token(c)))
            .into_iter()
            .collect::<PolarsResult<Vec<_>>>()?;
        let (outcome, user) = (text(OUTCOME)?, text(USER)?);
        let count = df.column(OUTCOME_COUNT)?.i64()?.clone();
        let count_text = text(&raw_token(OUTCOME_COUNT))?;
        // The insight columns, when the month has them.
        let optional = |c: &str| -> PolarsResult<Option<StringChunked>> {
            df.column(c).is_ok().then(|| text(c)).transpose()
        };
        let flag = match df.column(TOKENS_ESTIMATED) {
            Ok(c) => Some(c.bool()?.clone()),
            Err(_) => None,
        };
        let flag_text = optional(&raw_token(TOKENS_ESTIMATED))?;
        let conversation = optional(CONVERSATION_ID)?;
        Ok((0..df.height())
            .map(|i| Detail {
                source: src.get(i).unwrap_or(0),
                row: row.get(i).unwrap_or(0),
                seq: seq.get(i).unwrap_or(0),
                id: owned(&id, i),
                timestamp: owned(&ts, i),
                micros: micros.get(i),
                day: day.get(i),
                provider: owned(&keys[0], i),
                model: owned(&keys[1], i),
                scope: owned(&keys[2], i),
                team: owned(&keys[3], i),
                use_case: owned(&keys[4], i),
                status: owned(&keys[5], i),
                values: std::array::from_fn(|t| values[t].get(i)),
                texts: std::array::from_fn(|t| {
                    trimmed(&texts[t], i).or_else(|| values[t].get(i).map(|v| v.to_string()))
                }),
                outcome: owned(&outcome, i),
                outcome_count: count.get(i),
                outcome_count_text: trimmed(&count_text, i)
                    .or_else(|| count.get(i).map(|v| v.to_string())),
                user: owned(&user, i),
                estimated: flag.as_ref().and_then(|f| f.get(i)),
                estimated_text: flag_text.as_ref().and_then(|f| trimmed(f, i)),
                conversation: conversation.as_ref().and_then(|c| owned(c, i)),
            })
            .collect())
    }

    /// The canonical columns as read, as text: what a quarantine file
    /// keeps of the row (a typed timestamp as RFC 3339 UTC).
    fn fields(&self) -> Vec<(&'static str, String)> {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let timestamp = match (&self.timestamp, self.micros) {
            (Some(t), _) => t.clone(),
            (None, Some(us)) => chrono::DateTime::from_timestamp_micros(us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_else(|| us.to_string()),
            (None, None) => String::new(),
        };
        let mut out = vec![
            (REQUEST_ID, s(&self.id)),
            (TIMESTAMP, timestamp),
            (PROVIDER, s(&self.provider)),
            (MODEL, s(&self.model)),
            (BILLING_SCOPE, s(&self.scope)),
            (TEAM, s(&self.team)),
            (USE_CASE, s(&self.use_case)),
        ];
        for (t, c) in TOKEN_COLUMNS.into_iter().enumerate() {
            out.push((c, s(&self.texts[t])));
        }
        out.push((STATUS, s(&self.status)));
        out.push((OUTCOME, s(&self.outcome)));
        out.push((OUTCOME_COUNT, s(&self.outcome_count_text)));
        out.push((USER, s(&self.user)));
        let flag = self
            .estimated_text
            .clone()
            .or_else(|| self.estimated.map(|b| b.to_string()));
        out.push((TOKENS_ESTIMATED, s(&flag)));
        out.push((CONVERSATION_ID, s(&self.conversation)));
        out
    }

    /// The row checks, in order; the first that fails, as (column, reason).
    fn failed_check(&self) -> Option<(&'static str, String)> {
        if trimmed_id(self.id.as_deref()).is_none() {
            return Some((REQUEST_ID, format!("missing `{REQUEST_ID}`")));
        }
        // A typed timestamp has no text: its day is the check.
        if self.day.is_none() {
            let Some(ts) = clean(self.timestamp.as_deref()) else {
                return Some((TIMESTAMP, format!("missing `{TIMESTAMP}`")));
            };
            return Some((
                TIMESTAMP,
                format!("`timestamp` is not an RFC 3339 time: `{ts}`"),
            ));
        }
        if clean(self.provider.as_deref()).is_none() {
            return Some((PROVIDER, format!("missing `{PROVIDER}`")));
        }
        if clean(self.model.as_deref()).is_none() {
            return Some((MODEL, format!("missing `{MODEL}`")));
        }
        for (t, c) in TOKEN_COLUMNS.into_iter().enumerate() {
            let text = self.texts[t].as_deref();
            if (c == INPUT_TOKENS || c == OUTPUT_TOKENS) && text.is_none() {
                return Some((c, format!("missing `{c}`")));
            }
            if let Some(text) = text {
                match self.values[t] {
                    None => return Some((c, format!("`{c}` is not a whole number: `{text}`"))),
                    Some(v) if v < 0 => return Some((c, format!("`{c}` is negative: `{text}`"))),
                    Some(v) if v > MAX_TOKENS => {
                        return Some((
                            c,
                            format!(
                                "`{c}` is `{text}`, more than {MAX_TOKENS} tokens, the most one request may count"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(text) = self.outcome_count_text.as_deref() {
            let c = OUTCOME_COUNT;
            match self.outcome_count {
                None => return Some((c, format!("`{c}` is not a whole number: `{text}`"))),
                Some(v) if v < 0 => return Some((c, format!("`{c}` is negative: `{text}`"))),
                Some(v) if v > MAX_OUTCOME_COUNT => {
                    return Some((
                        c,
                        format!(
                            "`{c}` is `{text}`, more than {MAX_OUTCOME_COUNT}, the most one request may count"
                        ),
                    ));
                }
                Some(_) if clean(self.outcome.as_deref()).is_none() => {
                    return Some((
                        c,
                        format!("`{c}` is `{text}` but the row has no `{OUTCOME}`"),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(text) = self.estimated_text.as_deref()
            && flag_of(Some(text)).is_err()
        {
            return Some((
                TOKENS_ESTIMATED,
                format!(
                    "`{TOKENS_ESTIMATED}` must be true or false (also 1/0, yes/no, empty), not `{text}`"
                ),
            ));
        }
        if let Err(status) = status_of(self.status.as_deref()) {
            return Some((
                STATUS,
                format!("`status` must be `ok` or `error`, not `{status}`"),
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_ids_have_equal_keys_and_blank_ids_none() {
        assert_eq!(id_key("req_1"), id_key("req_1"));
        assert_ne!(id_key("req_1"), id_key("req_2"));
        assert!(id_key("req_1") < 1 << 44);
        assert_eq!(trimmed_id(Some("  req_1 ")), Some("req_1"));
        assert_eq!(trimmed_id(Some("   ")), None);
        assert_eq!(trimmed_id(None), None);
    }

    #[test]
    fn candidates_hold_every_key_given() {
        let keys: Vec<u64> = (0..10_000u64)
            .map(|i| id_key(&format!("req_{i:08}")))
            .collect();
        let c = Candidates::new(keys.iter().copied().step_by(7).collect());
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(c.contains_key(k), i % 7 == 0 || c.keys.contains(&k));
        }
        assert!(!Candidates::new(Vec::new()).contains_key(keys[0]));
    }

    #[test]
    fn plain_ids_are_read_by_source_and_position() {
        let plain = PlainIds {
            sources: vec![vec![0b101], vec![]],
        };
        assert!(plain.get(0, 0));
        assert!(!plain.get(0, 1));
        assert!(plain.get(0, 2));
        assert!(!plain.get(0, 64));
        assert!(!plain.get(1, 0));
        assert!(!plain.get(2, 0));
    }

    #[test]
    fn key_ids_tell_texts_apart_and_blank_from_nothing_not() {
        let ca = StringChunked::from_iter_options(
            "k".into(),
            [
                Some("openai"),
                None,
                Some(""),
                Some("a-model-name-longer-than-twelve"),
                Some("openai"),
                Some("a-model-name-longer-than-twelve"),
            ]
            .into_iter(),
        );
        let k = KeyIds::new(&ca);
        assert_eq!(k.ids[0], k.ids[4]);
        assert_eq!(k.ids[1], 0);
        assert_eq!(k.ids[2], 0);
        assert_ne!(k.ids[0], k.ids[3]);
        assert_eq!(k.text(&ca, k.ids[0]).as_deref(), Some("openai"));
        assert_eq!(k.text(&ca, 0), None);
        assert_eq!(
            k.text(&ca, k.ids[5]).as_deref(),
            Some("a-model-name-longer-than-twelve")
        );
        assert!(k.width() >= 2);
    }

    #[test]
    fn statuses_normalise_like_the_row_checks() {
        assert_eq!(status_of(None), Ok(false));
        assert_eq!(status_of(Some(" Success ")), Ok(false));
        assert_eq!(status_of(Some("FAILED")), Ok(true));
        assert_eq!(status_of(Some("Pending")), Err("pending".to_string()));
    }

    fn detail() -> Detail {
        Detail {
            source: 0,
            row: 1,
            seq: 1,
            id: Some("r1".into()),
            timestamp: Some("2025-01-03T10:00:00Z".into()),
            micros: None,
            day: Some(20091),
            provider: Some("openai".into()),
            model: Some("gpt-4o".into()),
            scope: None,
            team: None,
            use_case: None,
            status: None,
            values: [Some(1), None, None, Some(2)],
            texts: [Some("1".into()), None, None, Some("2".into())],
            outcome: None,
            outcome_count: None,
            outcome_count_text: None,
            user: None,
            estimated: None,
            estimated_text: None,
            conversation: None,
        }
    }

    #[test]
    fn row_checks_name_the_first_failure() {
        assert_eq!(detail().failed_check(), None);
        let d = Detail {
            id: Some(" ".into()),
            provider: None,
            ..detail()
        };
        assert_eq!(
            d.failed_check(),
            Some((REQUEST_ID, "missing `request_id`".to_string()))
        );
        let d = Detail {
            day: None,
            timestamp: Some(" yesterday ".into()),
            ..detail()
        };
        assert_eq!(
            d.failed_check(),
            Some((
                TIMESTAMP,
                "`timestamp` is not an RFC 3339 time: `yesterday`".to_string()
            ))
        );
        let d = Detail {
            provider: None,
            values: [Some(-1), None, None, Some(2)],
            texts: [Some("-1".into()), None, None, Some("2".into())],
            ..detail()
        };
        assert_eq!(
            d.failed_check(),
            Some((PROVIDER, "missing `provider`".to_string()))
        );
        let d = Detail {
            values: [Some(1), None, None, None],
            texts: [Some("1".into()), Some("x".into()), None, None],
            ..detail()
        };
        assert_eq!(
            d.failed_check(),
            Some((
                CACHED_INPUT_TOKENS,
                "`cached_input_tokens` is not a whole number: `x`".to_string()
            ))
        );
        let d = Detail {
            status: Some("Pending".into()),
            ..detail()
        };
        assert_eq!(
            d.failed_check(),
            Some((
                STATUS,
                "`status` must be `ok` or `error`, not `pending`".to_string()
            ))
        );
    }

    #[test]
    fn estimated_flags_read_every_spelling_and_refuse_the_rest() {
        for (text, want) in [
            (Some("true"), Ok(Some(true))),
            (Some(" TRUE "), Ok(Some(true))),
            (Some("Yes"), Ok(Some(true))),
            (Some("1"), Ok(Some(true))),
            (Some("false"), Ok(Some(false))),
            (Some("No"), Ok(Some(false))),
            (Some("0"), Ok(Some(false))),
            (Some(""), Ok(None)),
            (Some("  "), Ok(None)),
            (Some("NULL"), Ok(None)),
            (Some("None"), Ok(None)),
            (None, Ok(None)),
            (Some("maybe"), Err(())),
            (Some("2"), Err(())),
            (Some("1.0"), Err(())),
        ] {
            assert_eq!(flag_of(text), want, "{text:?}");
        }
        let with = |text: &str| Detail {
            estimated_text: Some(text.into()),
            estimated: flag_of(Some(text)).ok().flatten(),
            ..detail()
        };
        assert_eq!(with("Yes").failed_check(), None);
        assert_eq!(with("null").failed_check(), None);
        assert_eq!(
            with("sometimes").failed_check(),
            Some((
                TOKENS_ESTIMATED,
                "`tokens_estimated` must be true or false (also 1/0, yes/no, empty), not `sometimes`"
                    .to_string()
            ))
        );
        // A boolean column has no text to refuse.
        let typed = Detail {
            estimated: Some(true),
            ..detail()
        };
        assert_eq!(typed.failed_check(), None);
        assert!(
            typed
                .fields()
                .contains(&(TOKENS_ESTIMATED, "true".to_string()))
        );
    }

    #[test]
    fn outcome_counts_are_checked_like_token_counts() {
        let with = |outcome: Option<&str>, count: Option<i64>, text: &str| Detail {
            outcome: outcome.map(String::from),
            outcome_count: count,
            outcome_count_text: Some(text.into()),
            ..detail()
        };
        assert_eq!(
            with(Some("resolved_ticket"), Some(3), "3").failed_check(),
            None
        );
        assert_eq!(
            with(Some("resolved_ticket"), None, "2.5").failed_check(),
            Some((
                OUTCOME_COUNT,
                "`outcome_count` is not a whole number: `2.5`".to_string()
            ))
        );
        assert_eq!(
            with(Some("resolved_ticket"), Some(-1), "-1").failed_check(),
            Some((
                OUTCOME_COUNT,
                "`outcome_count` is negative: `-1`".to_string()
            ))
        );
        assert_eq!(
            with(Some(" "), Some(2), "2").failed_check(),
            Some((
                OUTCOME_COUNT,
                "`outcome_count` is `2` but the row has no `outcome`".to_string()
            ))
        );
        // An outcome alone counts one; no check to fail.
        let alone = Detail {
            outcome: Some("resolved_ticket".into()),
            ..detail()
        };
        assert_eq!(alone.failed_check(), None);
    }
}
