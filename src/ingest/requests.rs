//! Tagged request logs in the canonical schema (DESIGN §3.1), as CSV,
//! Parquet or JSON lines: checked row by row, de-duplicated exactly by
//! `request_id`, resolved through the catalog and summed into usage cells.

use std::collections::HashMap;

use polars::prelude::*;
use serde::Serialize;

use super::litellm::SOURCE_LINE;
use super::{QuarantinedRow, UsageCell, column_list, first_line, litellm, otel, scan, time};
use crate::catalog::Catalog;
use crate::config::{FailedRequests, FileFormat, RequestFormat, Sources};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::period::Period;
use crate::schema::request::*;
use crate::schema::work;

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

#[derive(Debug, Clone)]
pub struct RequestLog {
    pub cells: Vec<UsageCell>,
    pub quarantine: Vec<QuarantinedRow>,
    pub stats: RequestStats,
}

/// A request-log object: what it is, and its container format (from its
/// name when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSource {
    pub url: String,
    pub format: RequestFormat,
    pub file_format: Option<FileFormat>,
}

pub fn load_requests(
    ctx: &Context,
    sources: &[RequestSource],
    options: &Sources,
    catalog: &Catalog,
    period: Period,
    failed: FailedRequests,
) -> Result<RequestLog> {
    let mut frames = Vec::with_capacity(sources.len());
    let mut spans_skipped = 0;
    for (i, s) in sources.iter().enumerate() {
        let (frame, skipped) = normalize(ctx, i as u32, s, options)?;
        frames.push(frame);
        spans_skipped += skipped;
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
    let (reason, column) = row_checks();
    let all = all.with_columns([reason.alias(work::REASON), column.alias(work::COLUMN)]);

    let bad = all.clone().filter(col(work::REASON).is_not_null()).select([
        col(work::SOURCE),
        col(work::ROW),
        col(work::COLUMN),
        col(work::REASON),
    ]);
    let good = all
        .filter(col(work::REASON).is_null())
        .with_column(col(REQUEST_ID).is_first_distinct().alias("__first"));
    let dups = good.clone().filter(col("__first").not()).select([
        col(work::SOURCE),
        col(work::ROW),
        lit(REQUEST_ID).alias(work::COLUMN),
        concat_str(
            [
                lit("duplicate `request_id` `"),
                col(REQUEST_ID),
                lit("`; the first row with it was kept"),
            ],
            "",
            false,
        )
        .alias(work::REASON),
    ]);
    let resolved = good
        .filter(col("__first"))
        .with_column(resolve_models(catalog).alias(work::RESOLVED_MODEL));
    let unknown = resolved
        .clone()
        .filter(col(work::RESOLVED_MODEL).is_null())
        .select([
            col(work::SOURCE),
            col(work::ROW),
            lit(MODEL).alias(work::COLUMN),
            concat_str(
                [
                    lit("model `"),
                    col(MODEL),
                    lit("` of provider `"),
                    col(PROVIDER),
                    lit("` is not in the catalog"),
                ],
                "",
                false,
            )
            .alias(work::REASON),
        ]);

    let quarantine_df = concat(
        [bad, dups.with_column(lit(true).alias("__dup")), unknown],
        UnionArgs {
            diagonal: true,
            ..Default::default()
        },
    )
    .map_err(polars_err)?
    .collect()
    .map_err(polars_err)?;

    let usage_df = resolved
        .filter(col(work::RESOLVED_MODEL).is_not_null())
        .with_columns([
            col(work::DAY)
                .gt_eq(lit(period.start()))
                .and(col(work::DAY).lt(lit(period.end())))
                .alias("__in_period"),
            col(STATUS).eq(lit("error")).alias(work::IS_ERROR),
        ])
        .group_by([
            col(PROVIDER),
            col(BILLING_SCOPE),
            col(work::DAY),
            col(work::RESOLVED_MODEL),
            col(TEAM),
            col(USE_CASE),
            col("__in_period"),
            col(work::IS_ERROR),
        ])
        .agg([
            col(INPUT_TOKENS).sum(),
            col(CACHED_INPUT_TOKENS).sum(),
            col(CACHE_WRITE_TOKENS).sum(),
            col(OUTPUT_TOKENS).sum(),
            len().alias(work::REQUESTS),
        ])
        .collect()
        .map_err(polars_err)?;

    let mut stats = RequestStats::default();
    let quarantine = quarantine_rows(&quarantine_df, sources, &mut stats).map_err(polars_err)?;
    let cells = usage_cells(&usage_df, period, failed, &mut stats).map_err(polars_err)?;
    stats.spans_skipped = spans_skipped;
    stats.rows_read = stats.quarantined
        + stats.duplicates
        + stats.outside_period
        + stats.failed_excluded
        + stats.used;
    Ok(RequestLog {
        cells,
        quarantine,
        stats,
    })
}

/// One file's rows, renamed and typed to the canonical schema, with
/// enough of the raw text kept to say what was wrong with a value.
fn normalize(
    ctx: &Context,
    index: u32,
    source: &RequestSource,
    options: &Sources,
) -> Result<(LazyFrame, u64)> {
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
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| !schema.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(Error::input(
            Location::file(url),
            format!(
                "not a canonical request log: missing {}; found {}",
                missing
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                column_list(&schema)
            ),
        )
        .with_hint(format!(
            "a request log needs {}; see the request log schema in README.md",
            REQUIRED.map(|c| format!("`{c}`")).join(", ")
        )));
    }
    let text = |c: &str| -> Expr {
        if schema.contains(c) {
            let e = col(c).cast(DataType::String).str().strip_chars(lit(NULL));
            when(e.clone().eq(lit("")))
                .then(lit(NULL).cast(DataType::String))
                .otherwise(e)
        } else {
            lit(NULL).cast(DataType::String)
        }
    };
    let day = match schema.get(TIMESTAMP) {
        Some(DataType::String) => col(TIMESTAMP).map(
            |c| {
                let ca = c.str()?;
                let days: Int32Chunked = ca
                    .iter()
                    .map(|v| v.and_then(time::utc_day).map(days_since_epoch))
                    .collect();
                Ok(days.with_name(c.name().clone()).into_date().into_column())
            },
            |_, f| Ok(Field::new(f.name().clone(), DataType::Date)),
        ),
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
    let status = text(STATUS).str().to_lowercase();
    let status = when(
        status
            .clone()
            .is_null()
            .or(status.clone().eq(lit("success"))),
    )
    .then(lit("ok"))
    .when(
        status
            .clone()
            .eq(lit("failure"))
            .or(status.clone().eq(lit("failed"))),
    )
    .then(lit("error"))
    .otherwise(status);
    let mut exprs = vec![
        lit(index).alias(work::SOURCE),
        col(work::ROW),
        text(REQUEST_ID).alias(REQUEST_ID),
        text(TIMESTAMP).alias("__timestamp_text"),
        day.alias(work::DAY),
        text(PROVIDER).str().to_lowercase().alias(PROVIDER),
        text(MODEL).alias(MODEL),
        text(BILLING_SCOPE).fill_null(lit("")).alias(BILLING_SCOPE),
        text(TEAM).fill_null(lit(UNTAGGED_TEAM)).alias(TEAM),
        text(USE_CASE).fill_null(lit(NO_USE_CASE)).alias(USE_CASE),
        status.alias(STATUS),
    ];
    for c in TOKEN_COLUMNS {
        let raw = text(c);
        exprs.push(raw.clone().alias(format!("__{c}_text")));
        exprs.push(raw.cast(DataType::Int64).alias(c));
    }
    // Adapters that do not keep one row per line say which line a row
    // came from; the rest are numbered in file order.
    let lf = if schema.contains(SOURCE_LINE) {
        lf.with_column(col(SOURCE_LINE).cast(IDX_DTYPE).alias(work::ROW))
    } else {
        lf.with_row_index(work::ROW, Some(1))
    };
    Ok((lf.select(exprs), skipped))
}

fn days_since_epoch(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// The first failed check of a row, as (reason, column); null when none.
fn row_checks() -> (Expr, Expr) {
    let quoted =
        |msg: &str, c: &str| concat_str([lit(msg.to_string()), col(c), lit("`")], "", false);
    let mut checks: Vec<(Expr, Expr, &str)> = vec![
        (
            col(REQUEST_ID).is_null(),
            lit(format!("missing `{REQUEST_ID}`")),
            REQUEST_ID,
        ),
        (
            col("__timestamp_text").is_null(),
            lit(format!("missing `{TIMESTAMP}`")),
            TIMESTAMP,
        ),
        (
            col(work::DAY).is_null(),
            quoted("`timestamp` is not an RFC 3339 time: `", "__timestamp_text"),
            TIMESTAMP,
        ),
        (
            col(PROVIDER).is_null(),
            lit(format!("missing `{PROVIDER}`")),
            PROVIDER,
        ),
        (
            col(MODEL).is_null(),
            lit(format!("missing `{MODEL}`")),
            MODEL,
        ),
    ];
    for c in TOKEN_COLUMNS {
        let raw = format!("__{c}_text");
        if c == INPUT_TOKENS || c == OUTPUT_TOKENS {
            checks.push((col(&raw).is_null(), lit(format!("missing `{c}`")), c));
        }
        checks.push((
            col(&raw).is_not_null().and(col(c).is_null()),
            quoted(&format!("`{c}` is not a whole number: `"), &raw),
            c,
        ));
        checks.push((
            col(c).lt(lit(0i64)),
            quoted(&format!("`{c}` is negative: `"), &raw),
            c,
        ));
    }
    checks.push((
        col(STATUS)
            .neq(lit("ok"))
            .and(col(STATUS).neq(lit("error"))),
        quoted("`status` must be `ok` or `error`, not `", STATUS),
        STATUS,
    ));
    let mut reason = lit(NULL).cast(DataType::String);
    let mut column = lit(NULL).cast(DataType::String);
    for (cond, msg, c) in checks.into_iter().rev() {
        reason = when(cond.clone()).then(msg).otherwise(reason);
        column = when(cond).then(lit(c)).otherwise(column);
    }
    (reason, column)
}

/// The catalog's name for each row's (provider, model); null when the
/// catalog does not know it. Resolution runs once per distinct pair.
fn resolve_models(catalog: &Catalog) -> Expr {
    let catalog = std::sync::Arc::new(catalog.clone());
    col(PROVIDER).map_many(
        move |cols| {
            let (providers, models) = (cols[0].str()?, cols[1].str()?);
            let mut known: HashMap<(&str, &str), Option<&str>> = HashMap::new();
            let out: StringChunked = providers
                .iter()
                .zip(models.iter())
                .map(|pm| match pm {
                    (Some(p), Some(m)) => *known
                        .entry((p, m))
                        .or_insert_with(|| catalog.resolve(p, m).map(|e| e.model.as_str())),
                    _ => None,
                })
                .collect();
            Ok(out.with_name(work::RESOLVED_MODEL.into()).into_column())
        },
        &[col(MODEL)],
        |_, _| Ok(Field::new(work::RESOLVED_MODEL.into(), DataType::String)),
    )
}

fn quarantine_rows(
    df: &DataFrame,
    sources: &[RequestSource],
    stats: &mut RequestStats,
) -> PolarsResult<Vec<QuarantinedRow>> {
    let src = df.column(work::SOURCE)?.cast(&DataType::UInt32)?;
    let row = df.column(work::ROW)?.cast(&DataType::UInt64)?;
    let dup = df.column("__dup")?.bool()?;
    let (src, row) = (src.u32()?, row.u64()?);
    let column = df.column(work::COLUMN)?.str()?;
    let reason = df.column(work::REASON)?.str()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        if dup.get(i).unwrap_or(false) {
            stats.duplicates += 1;
        } else {
            stats.quarantined += 1;
        }
        out.push(QuarantinedRow {
            source: sources[src.get(i).unwrap_or(0) as usize].url.clone(),
            row: row.get(i).unwrap_or(0),
            column: column.get(i).unwrap_or("").to_string(),
            reason: reason.get(i).unwrap_or("").to_string(),
        });
    }
    out.sort();
    Ok(out)
}

fn usage_cells(
    df: &DataFrame,
    period: Period,
    failed: FailedRequests,
    stats: &mut RequestStats,
) -> PolarsResult<Vec<UsageCell>> {
    let s = |c: &str| df.column(c).and_then(|c| c.str().cloned());
    let n = |c: &str| -> PolarsResult<UInt64Chunked> {
        Ok(df
            .column(c)?
            .fill_null(FillNullStrategy::Zero)?
            .cast(&DataType::UInt64)?
            .u64()?
            .clone())
    };
    let (provider, scope, model, team, use_case) = (
        s(PROVIDER)?,
        s(BILLING_SCOPE)?,
        s(work::RESOLVED_MODEL)?,
        s(TEAM)?,
        s(USE_CASE)?,
    );
    let day = df.column(work::DAY)?.cast(&DataType::Int32)?;
    let day = day.i32()?;
    let in_period = df.column("__in_period")?.bool()?.clone();
    let is_error = df.column(work::IS_ERROR)?.bool()?.clone();
    let tokens = [
        n(INPUT_TOKENS)?,
        n(CACHED_INPUT_TOKENS)?,
        n(CACHE_WRITE_TOKENS)?,
        n(OUTPUT_TOKENS)?,
    ];
    let requests = n(work::REQUESTS)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut cells: Vec<UsageCell> = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let count = requests.get(i).unwrap_or(0);
        let error = is_error.get(i).unwrap_or(false);
        if !in_period.get(i).unwrap_or(false) {
            stats.outside_period += count;
            continue;
        }
        if error && failed == FailedRequests::Exclude {
            stats.failed_excluded += count;
            continue;
        }
        stats.used += count;
        if error {
            stats.errors += count;
        }
        let day = epoch + chrono::Duration::days(i64::from(day.get(i).unwrap_or(0)));
        debug_assert!(period.contains(day));
        cells.push(UsageCell {
            provider: provider.get(i).unwrap_or("").to_string(),
            scope: scope.get(i).unwrap_or("").to_string(),
            day,
            model: model.get(i).unwrap_or("").to_string(),
            team: team.get(i).unwrap_or("").to_string(),
            use_case: use_case.get(i).unwrap_or("").to_string(),
            tokens: std::array::from_fn(|t| tokens[t].get(i).unwrap_or(0)),
            requests: count,
            errors: if error { count } else { 0 },
        });
    }
    // Error and ok requests of the same key become one cell.
    cells.sort_by(|a, b| cell_key(a).cmp(&cell_key(b)));
    let mut merged: Vec<UsageCell> = Vec::with_capacity(cells.len());
    for c in cells {
        match merged.last_mut() {
            Some(last) if cell_key(last) == cell_key(&c) => {
                for t in 0..4 {
                    last.tokens[t] += c.tokens[t];
                }
                last.requests += c.requests;
                last.errors += c.errors;
            }
            _ => merged.push(c),
        }
    }
    Ok(merged)
}

fn cell_key(c: &UsageCell) -> (&str, &str, chrono::NaiveDate, &str, &str, &str) {
    (&c.provider, &c.scope, c.day, &c.model, &c.team, &c.use_case)
}
