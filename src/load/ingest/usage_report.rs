//! Provider usage reports — OpenAI `/v1/organization/usage/completions`
//! pages and Anthropic `/v1/organizations/usage_report/messages` — the
//! provider's own token counts, with no money in them. What they are for
//! is `compute::refine`.
//!
//! | report | scope | model | tokens per class |
//! |---|---|---|---|
//! | OpenAI usage (completions, embeddings) | `project_id` | `model` | input = `input_uncached_tokens`, else `input_tokens` − `input_cached_tokens` − `input_cache_write_tokens`; cached = `input_cached_tokens`; cache write = `input_cache_write_tokens`; output = `output_tokens` |
//! | Anthropic usage report | `workspace_id` (null: default workspace, `""`) | `model` | input = `uncached_input_tokens`; cache write = `cache_creation.ephemeral_5m_input_tokens` + `ephemeral_1h_input_tokens`; cached = `cache_read_input_tokens`; output = `output_tokens` |

use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::bill::{BillFormat, BillRow, ReadBill, RowError, bill_rows, record_fields};
use super::detect::{Over, Rule};
use super::pages::read_pages;
use super::{Bill, time};
use crate::catalog::{Catalog, UsageType};
use crate::config::BillingFormat;
use crate::error::Result;
use crate::period::Period;

/// Tokens of one class the provider counted for a scope, day and model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedUsage {
    pub provider: String,
    pub scope: String,
    pub day: NaiveDate,
    /// Canonical catalog name; `None` when the report is not grouped by
    /// model or names a model the catalog does not know.
    pub model: Option<String>,
    pub usage_type: UsageType,
    pub tokens: u64,
}

const OPENAI_SHAPE: &str = "`{\"object\": \"page\", \"data\": [{\"start_time\", \"end_time\", \"results\": \
    [{\"object\": \"organization.usage.completions.result\", \"input_tokens\", \"input_cached_tokens\", \
    \"output_tokens\", \"project_id\", \"model\", …}]}], \"has_more\", \"next_page\"}`";

const ANTHROPIC_SHAPE: &str = "`{\"data\": [{\"starting_at\", \"ending_at\", \"results\": \
    [{\"uncached_input_tokens\", \"cache_creation\": {\"ephemeral_5m_input_tokens\", \
    \"ephemeral_1h_input_tokens\"}, \"cache_read_input_tokens\", \"output_tokens\", \"workspace_id\", \
    \"model\", …}]}], \"has_more\", \"next_page\"}`";

#[derive(Debug, Deserialize)]
struct OpenaiPage {
    data: Vec<OpenaiBucket>,
}

#[derive(Debug, Deserialize)]
struct OpenaiBucket {
    /// Unix seconds, inclusive.
    start_time: i64,
    #[serde(default)]
    results: Vec<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct AnthropicPage {
    data: Vec<AnthropicBucket>,
}

#[derive(Debug, Deserialize)]
struct AnthropicBucket {
    starting_at: String,
    #[serde(default)]
    results: Vec<Map<String, Value>>,
}

/// Per-class counts of one result, or the column and reason it is bad.
type Counts = std::result::Result<[(UsageType, u64); 4], RowError>;

/// OpenAI usage pages say what their results are (completions or
/// embeddings usage).
pub(super) const OPENAI: BillFormat = BillFormat {
    format: BillingFormat::OpenaiUsage,
    rules: &[Rule {
        over: Over::Pages,
        rank: 20,
        test: |s| {
            s.text_has("organization.usage.completions.result")
                || s.text_has("organization.usage.embeddings.result")
        },
    }],
    read: ReadBill::Text(|url, text, catalog, period, _| {
        openai_from_text(url, text, catalog, period)
    }),
};

/// Anthropic usage report pages count tokens and state no amount.
pub(super) const ANTHROPIC: BillFormat = BillFormat {
    format: BillingFormat::AnthropicUsageReport,
    rules: &[Rule {
        over: Over::Pages,
        rank: 30,
        test: |s| {
            s.has(&["data", "starting_at", "results", "uncached_input_tokens"])
                && !s.has(&["amount"])
        },
    }],
    read: ReadBill::Text(|url, text, catalog, period, _| {
        anthropic_from_text(url, text, catalog, period)
    }),
};

pub(super) fn openai_from_text(
    url: &str,
    text: &str,
    catalog: &Catalog,
    period: Period,
) -> Result<Bill> {
    let pages: Vec<OpenaiPage> = read_pages(url, text, "OpenAI usage pages", OPENAI_SHAPE)?;
    let results = pages
        .iter()
        .flat_map(|p| &p.data)
        .flat_map(|bucket| bucket.results.iter().map(move |r| (bucket, r)))
        // Other usage endpoints (images, audio, vector stores) count no
        // tokens of a chat model: not rows of this report.
        .filter(|(_, r)| {
            let kind = r.get("object").and_then(Value::as_str).unwrap_or("");
            kind.is_empty()
                || kind == "organization.usage.completions.result"
                || kind == "organization.usage.embeddings.result"
        })
        .enumerate()
        .map(|(i, r)| ((i + 1) as u64, r));
    bill_rows(
        url,
        results,
        |&(bucket, result)| {
            let day = DateTime::from_timestamp(bucket.start_time, 0)
                .map(|t| t.date_naive())
                .ok_or_else(|| {
                    RowError::new(
                        "start_time",
                        format!("`start_time` `{}` is not a time", bucket.start_time),
                    )
                })?;
            if !period.contains(day) {
                return Ok(Some(BillRow::Outside(day)));
            }
            let counts = openai_counts(result)?;
            Ok(Some(BillRow::Usage(reported(
                "openai",
                str_field(result, "project_id"),
                day,
                str_field(result, "model"),
                counts,
                catalog,
            ))))
        },
        |&(_, result)| record_fields(None, result),
    )
}

fn openai_counts(r: &Map<String, Value>) -> Counts {
    let cached = count(r, &["input_cached_tokens"])?.unwrap_or(0);
    let write = count(r, &["input_cache_write_tokens"])?.unwrap_or(0);
    let output = count(r, &["output_tokens"])?.ok_or(missing("output_tokens"))?;
    let input = match count(r, &["input_uncached_tokens"])? {
        Some(n) => n,
        None => {
            let all = count(r, &["input_tokens"])?.ok_or(missing("input_tokens"))?;
            all.checked_sub(cached.saturating_add(write)).ok_or_else(|| {
                RowError::new(
                    "input_tokens",
                    format!(
                        "`input_tokens` {all} is less than its cached ({cached}) and cache-write \
                         ({write}) tokens, which it includes"
                    ),
                )
            })?
        }
    };
    Ok([
        (UsageType::Input, input),
        (UsageType::CachedInput, cached),
        (UsageType::CacheWrite, write),
        (UsageType::Output, output),
    ])
}

pub(super) fn anthropic_from_text(
    url: &str,
    text: &str,
    catalog: &Catalog,
    period: Period,
) -> Result<Bill> {
    let pages: Vec<AnthropicPage> =
        read_pages(url, text, "Anthropic usage report pages", ANTHROPIC_SHAPE)?;
    let results = pages
        .iter()
        .flat_map(|p| &p.data)
        .flat_map(|bucket| bucket.results.iter().map(move |r| (bucket, r)))
        .enumerate()
        .map(|(i, r)| ((i + 1) as u64, r));
    bill_rows(
        url,
        results,
        |&(bucket, result)| {
            let day = time::utc_day(&bucket.starting_at).ok_or_else(|| {
                RowError::new(
                    "starting_at",
                    format!(
                        "`starting_at` is not an RFC 3339 time: `{}`",
                        bucket.starting_at
                    ),
                )
            })?;
            if !period.contains(day) {
                return Ok(Some(BillRow::Outside(day)));
            }
            let counts = anthropic_counts(result)?;
            Ok(Some(BillRow::Usage(reported(
                "anthropic",
                str_field(result, "workspace_id"),
                day,
                str_field(result, "model"),
                counts,
                catalog,
            ))))
        },
        |&(_, result)| record_fields(None, result),
    )
}

fn anthropic_counts(r: &Map<String, Value>) -> Counts {
    let input = count(r, &["uncached_input_tokens"])?.ok_or(missing("uncached_input_tokens"))?;
    let output = count(r, &["output_tokens"])?.ok_or(missing("output_tokens"))?;
    let cached = count(r, &["cache_read_input_tokens"])?.unwrap_or(0);
    let write_5m = count(r, &["cache_creation", "ephemeral_5m_input_tokens"])?.unwrap_or(0);
    let write_1h = count(r, &["cache_creation", "ephemeral_1h_input_tokens"])?.unwrap_or(0);
    Ok([
        (UsageType::Input, input),
        (UsageType::CachedInput, cached),
        (UsageType::CacheWrite, write_5m.saturating_add(write_1h)),
        (UsageType::Output, output),
    ])
}

/// The reported usage of one result: a row per class with tokens.
fn reported(
    provider: &str,
    scope: Option<&str>,
    day: NaiveDate,
    model: Option<&str>,
    counts: [(UsageType, u64); 4],
    catalog: &Catalog,
) -> Vec<ReportedUsage> {
    let model = model
        .and_then(|m| catalog.resolve(provider, m))
        .map(|e| e.model.clone());
    counts
        .into_iter()
        .filter(|(_, tokens)| *tokens > 0)
        .map(|(usage_type, tokens)| ReportedUsage {
            provider: provider.to_string(),
            scope: scope.unwrap_or("").to_string(),
            day,
            model: model.clone(),
            usage_type,
            tokens,
        })
        .collect()
}

fn str_field<'a>(r: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    r.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn missing(key: &'static str) -> RowError {
    RowError::missing(key)
}

/// A token count at `path` (null or absent: `None`); a negative, fractional
/// or non-numeric value is the row's error.
fn count(
    r: &Map<String, Value>,
    path: &[&'static str],
) -> std::result::Result<Option<u64>, RowError> {
    let key = path[path.len() - 1];
    let mut v = r.get(path[0]);
    for k in &path[1..] {
        v = v.and_then(|x| x.get(k));
    }
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            RowError::new(
                key,
                format!("`{}` is not a token count: `{n}`", path.join(".")),
            )
        }),
        Some(other) => Err(RowError::new(
            key,
            format!("`{}` is not a token count: `{other}`", path.join(".")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::parse(
            r#"{"currency": "USD", "models": [
                {"provider": "openai", "model": "gpt-4o", "tier": "general",
                 "aliases": ["gpt-4o-2024-08-06"],
                 "prices": [{"effective_from": "2024-01-01", "input": "2.50", "cached_input": "1.25", "output": "10.00"}]},
                {"provider": "openai", "model": "gpt-4o-mini", "tier": "throughput",
                 "prices": [{"effective_from": "2024-01-01", "input": "0.15", "cached_input": "0.075", "output": "0.60"}]}
            ]}"#,
            "memory://catalog.json",
        )
        .unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 4, 2).unwrap()
    }

    fn period() -> Period {
        "2025-04".parse().unwrap()
    }

    const OPENAI_PAGE: &str = r#"{"object": "page", "data": [{"object": "bucket", "start_time": 1743552000, "end_time": 1743638400, "results": [
        {"object": "organization.usage.completions.result", "input_tokens": 1000000, "input_cached_tokens": 200000,
         "output_tokens": 100000, "num_model_requests": 40, "project_id": "proj_a", "model": "gpt-4o-2024-08-06"},
        {"object": "organization.usage.completions.result", "input_tokens": 2000000, "input_cached_tokens": 0,
         "output_tokens": 0, "num_model_requests": 9, "project_id": "proj_a", "model": "gpt-4o-mini-2024-07-18"},
        {"object": "organization.usage.images.result", "images": 3, "project_id": "proj_a"}
    ]}], "has_more": false, "next_page": null}"#;

    #[test]
    fn openai_input_tokens_include_the_cached_ones() {
        let bill = openai_from_text("memory://u.json", OPENAI_PAGE, &catalog(), period()).unwrap();
        assert_eq!(bill.rows_read, 2, "images are not token usage");
        let of = |m: Option<&str>, t| {
            bill.usage
                .iter()
                .find(|u| u.model.as_deref() == m && u.usage_type == t)
                .map(|u| u.tokens)
        };
        assert_eq!(of(Some("gpt-4o"), UsageType::Input), Some(800_000));
        assert_eq!(of(Some("gpt-4o"), UsageType::CachedInput), Some(200_000));
        assert_eq!(of(Some("gpt-4o"), UsageType::Output), Some(100_000));
        // The mini model is not in this catalog under its dated name alone:
        // resolved through the undated prefix.
        assert_eq!(of(Some("gpt-4o-mini"), UsageType::Input), Some(2_000_000));
        assert!(
            bill.usage
                .iter()
                .all(|u| u.scope == "proj_a" && u.day == day())
        );
    }

    #[test]
    fn anthropic_counts_cache_writes_of_both_lifetimes() {
        let text = r#"{"data": [{"starting_at": "2025-04-02T00:00:00Z", "ending_at": "2025-04-03T00:00:00Z", "results": [
            {"uncached_input_tokens": 1500, "cache_creation": {"ephemeral_1h_input_tokens": 1000, "ephemeral_5m_input_tokens": 500},
             "cache_read_input_tokens": 200, "output_tokens": 500, "workspace_id": null, "model": "claude-x"},
            {"uncached_input_tokens": -3, "output_tokens": 1, "workspace_id": "wrkspc_1", "model": "claude-x"}
        ]}], "has_more": false, "next_page": null}"#;
        let bill = anthropic_from_text("memory://u.json", text, &catalog(), period()).unwrap();
        let tokens: Vec<(UsageType, u64)> = bill
            .usage
            .iter()
            .map(|u| (u.usage_type, u.tokens))
            .collect();
        assert_eq!(
            tokens,
            [
                (UsageType::Input, 1500),
                (UsageType::CachedInput, 200),
                (UsageType::CacheWrite, 1500),
                (UsageType::Output, 500),
            ]
        );
        assert!(
            bill.usage
                .iter()
                .all(|u| u.scope.is_empty() && u.model.is_none())
        );
        assert_eq!(bill.quarantine.len(), 1);
        assert_eq!(
            bill.quarantine[0].reason,
            "`uncached_input_tokens` is not a token count: `-3`"
        );
    }
}
