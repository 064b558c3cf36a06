//! LiteLLM proxy `LiteLLM_SpendLogs` exports (CSV, a JSON array of rows, or
//! JSON lines) into the canonical request log (DESIGN §3.1).
//!
//! This module owns LiteLLM's quirks and nothing else: every value leaves
//! as text, in the file's row order, for `requests::normalize` to check,
//! type and quarantine. No row is dropped and no bad value is mended here.
//!
//! | canonical | from the export |
//! |---|---|
//! | `request_id` | `request_id` |
//! | `timestamp` | `startTime` (no offset means UTC, as LiteLLM stores it) |
//! | `provider` | `custom_llm_provider`: `bedrock` → `aws-bedrock`, `azure` → `azure-openai`, `vertex_ai` and `gemini` → `vertex-ai`, `mistral` → `mistral-ai`, `xai` → `xai` (one table with OpenTelemetry's names, `src/load/ingest/provider.rs`), others lower-cased with `-` for `_` and `.`; when empty, a known `provider/` prefix of `model` |
//! | `model` | `model` (the model actually called, without a `provider/` prefix), else `model_group` |
//! | `billing_scope` | `api_key` (the hashed virtual key; else `metadata.user_api_key`) through `[sources.litellm] key_scopes`; an unmapped key gives an empty scope |
//! | `team` | `team_id`, else `metadata.user_api_key_team_id`, else `metadata.user_api_key_team_alias` (`team = "team_alias"` puts the alias first) |
//! | `use_case` | the request tag `use_case:<value>` (the prefix is `use_case_tag`), else `metadata.spend_logs_metadata.use_case`; other tags are not use cases (LiteLLM adds its own, such as `User-Agent: …`) |
//! | `input_tokens` | `prompt_tokens` − cache reads − cache writes |
//! | `cached_input_tokens`, `cache_write_tokens` | `metadata.usage_object.prompt_tokens_details.{cached_tokens, cache_creation_tokens}`, else `usage_object.{cache_read_input_tokens, cache_creation_input_tokens}`; 0 when the metadata has no usage object (older LiteLLM) |
//! | `output_tokens` | `completion_tokens` (reasoning included) |
//! | `status` | `status`, else `metadata.status`: `success` → `ok`, `failure` → `error` |
//! | `outcome` | the request tag `outcome:<value>`, else `metadata.spend_logs_metadata.outcome` |
//! | `outcome_count` | the request tag `outcome_count:<n>`, else `metadata.spend_logs_metadata.outcome_count`; none (one outcome) when neither |
//! | `user` | `end_user` (the request's `user`, as LiteLLM records the customer), else `user` |
//! | `conversation_id` | `session_id` (the `litellm_session_id` a caller passes to group requests into a session) |
//! | `tokens_estimated` | the request tag `tokens_estimated:<value>`, else `metadata.spend_logs_metadata.tokens_estimated`: LiteLLM records no such field, so a caller that counts tokens itself says so like an outcome |
//!
//! `spend` is ignored: money comes from the provider's bill.
//!
//! Decisions:
//! * `prompt_tokens` includes cache reads and writes for every provider
//!   (LiteLLM reports usage OpenAI-style). When it is smaller than the two,
//!   `input_tokens` is the negative difference, so the row is quarantined as
//!   negative: the counts disagree and no guess is better than another.
//! * A row whose `metadata` is not JSON cannot tell its cache counts: its
//!   `cached_input_tokens` is the text `metadata is not JSON`, so the row is
//!   quarantined rather than billed with cache reads priced as input.
//! * A response served from LiteLLM's own cache (`cache_hit` true) never
//!   reached the provider, who billed nothing for it: its tokens are 0.

use polars::prelude::*;
use serde_json::{Map, Value};

use super::gateway_row::{CanonicalRow, CanonicalRows, Count, backticked, not_json, text};
use super::provider::provider_id;
use crate::config::{FileFormat, LitellmOptions, LitellmTeam};
use crate::context::Context;
use crate::error::{Error, Location, Result};

/// The export's field names, and its rows as JSON objects.
type Rows = (Vec<String>, Vec<Map<String, Value>>);

/// Export columns a file must have (besides `model` or `model_group`).
const REQUIRED: [&str; 5] = [
    "request_id",
    "startTime",
    "custom_llm_provider",
    "prompt_tokens",
    "completion_tokens",
];

/// LiteLLM provider ids that may prefix a model name (`bedrock/…`).
const MODEL_PREFIXES: [&str; 14] = [
    "openai",
    "anthropic",
    "bedrock",
    "azure",
    "azure_ai",
    "vertex_ai",
    "gemini",
    "mistral",
    "groq",
    "deepseek",
    "cohere",
    "together_ai",
    "fireworks_ai",
    "xai",
];

/// The export as a frame with canonical column names (DESIGN §3.1).
pub fn load(
    ctx: &Context,
    url: &str,
    file_format: Option<FileFormat>,
    opts: &LitellmOptions,
) -> Result<LazyFrame> {
    let format = file_format
        .or_else(|| FileFormat::from_name(url))
        .ok_or_else(|| {
            Error::input(
                Location::file(url),
                "cannot tell the file's format from its name",
            )
            .with_hint("name it .csv, .json or .jsonl, or give `file_format` in the policy")
        })?;
    let text = ctx.store.read_text(url)?;
    Ok(frame_from_text(url, &text, format, opts)?.lazy())
}

/// The export's text as a canonical frame.
fn frame_from_text(
    url: &str,
    text: &str,
    format: FileFormat,
    opts: &LitellmOptions,
) -> Result<DataFrame> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (fields, rows) = match format {
        FileFormat::Csv => csv_rows(url, text)?,
        FileFormat::Json | FileFormat::Jsonl => json_rows(url, text)?,
        FileFormat::Parquet => {
            return Err(Error::input(
                Location::file(url),
                "a LiteLLM SpendLogs export is read from CSV or JSON, not Parquet",
            )
            .with_hint("export the `LiteLLM_SpendLogs` table as CSV or JSON lines"));
        }
    };
    if !(fields.is_empty() && rows.is_empty()) {
        check_fields(url, &fields)?;
    }
    let mut out = CanonicalRows::default();
    for row in &rows {
        out.push(convert(row, opts));
    }
    Ok(out.into_frame())
}

/// The header and the records of a CSV export; empty cells are absent.
fn csv_rows(url: &str, text: &str) -> Result<Rows> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let bad = |e: csv::Error| {
        let row = e.position().map(csv::Position::record);
        Error::input(
            Location {
                uri: url.to_string(),
                row,
                column: None,
            },
            format!("cannot read the CSV: {e}"),
        )
        .with_hint(
            "a SpendLogs CSV needs one header line and the same number of cells on every row",
        )
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        let row: Map<String, Value> = header
            .iter()
            .zip(record.iter())
            .filter(|(_, cell)| !super::is_null_text(cell))
            .map(|(h, cell)| (h.clone(), Value::String(cell.to_string())))
            .collect();
        rows.push(row);
    }
    Ok((header, rows))
}

/// The rows of a JSON export: an array of row objects, one row object per
/// line, or an API page `{"data": [rows]}`. Fields are the keys seen.
fn json_rows(url: &str, text: &str) -> Result<Rows> {
    let mut rows = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let value = value.map_err(|e| not_json(url, &e))?;
        match value {
            Value::Array(items) => rows.extend(items.into_iter().map(into_row)),
            Value::Object(mut m)
                if !m.contains_key("request_id") && m.get("data").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = m.remove("data") {
                    rows.extend(items.into_iter().map(into_row));
                }
            }
            other => rows.push(into_row(other)),
        }
    }
    let mut fields: Vec<String> = Vec::new();
    for row in &rows {
        for k in row.keys() {
            if !fields.contains(k) {
                fields.push(k.clone());
            }
        }
    }
    Ok((fields, rows))
}

/// A row that is not an object becomes an empty row, quarantined later
/// for its missing `request_id`.
fn into_row(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn check_fields(url: &str, fields: &[String]) -> Result<()> {
    let has = |f: &str| fields.iter().any(|x| x == f);
    let mut missing: Vec<&str> = REQUIRED.iter().copied().filter(|f| !has(f)).collect();
    if !has("model") && !has("model_group") {
        missing.push("model");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::input(
        Location::file(url),
        format!(
            "not a LiteLLM SpendLogs export: missing {}; found {}",
            backticked(missing.iter().copied(), usize::MAX),
            if fields.is_empty() {
                "no fields".to_string()
            } else {
                backticked(fields.iter().map(String::as_str), 24)
            }
        ),
    )
    .with_hint(
        "a SpendLogs export needs `request_id`, `startTime`, `model` (or `model_group`), \
         `custom_llm_provider`, `prompt_tokens` and `completion_tokens`; export the \
         `LiteLLM_SpendLogs` table with its column names, or set `format` in the policy",
    ))
}

/// One SpendLogs row in canonical form.
/// The request tag (and `spend_logs_metadata` key) naming a request's
/// business outcome, and the one counting it.
const OUTCOME_TAG: &str = "outcome";
const OUTCOME_COUNT_TAG: &str = "outcome_count";
/// The request tag (and `spend_logs_metadata` key) saying the counts are
/// estimated: LiteLLM has no field of its own for it.
const TOKENS_ESTIMATED_TAG: &str = "tokens_estimated";

fn convert(row: &Map<String, Value>, opts: &LitellmOptions) -> CanonicalRow {
    let get = |k: &str| row.get(k).filter(|v| !is_blank(v));
    let metadata = get("metadata").map(as_json);
    let (metadata, metadata_ok) = match metadata {
        None => (Value::Null, true),
        Some(Ok(v)) => (v, true),
        Some(Err(())) => (Value::Null, false),
    };
    let meta = |path: &[&str]| -> Option<&Value> {
        let mut v = &metadata;
        for k in path {
            v = v.get(k)?;
        }
        (!is_blank(v)).then_some(v)
    };

    let raw_provider = get("custom_llm_provider").and_then(text);
    let raw_model = get("model").and_then(text);
    let (prefix, model) = match raw_model.as_deref().and_then(|m| m.split_once('/')) {
        Some((p, rest)) if MODEL_PREFIXES.contains(&p) || Some(p) == raw_provider.as_deref() => {
            (Some(p.to_string()), Some(rest.to_string()))
        }
        _ => (None, raw_model),
    };
    let provider = raw_provider.or(prefix).map(|p| provider_id(&p));
    let model = model
        .filter(|m| !m.trim().is_empty())
        .or_else(|| get("model_group").and_then(text));

    let key = get("api_key")
        .or_else(|| meta(&["user_api_key"]))
        .and_then(text);
    let billing_scope = key.and_then(|k| opts.key_scopes.get(k.trim()).cloned());

    let team_id = || {
        get("team_id")
            .or_else(|| meta(&["user_api_key_team_id"]))
            .and_then(text)
    };
    let team_alias = || meta(&["user_api_key_team_alias"]).and_then(text);
    let team = match opts.team {
        LitellmTeam::TeamId => team_id().or_else(team_alias),
        LitellmTeam::TeamAlias => team_alias().or_else(team_id),
    };

    let use_case = get("request_tags")
        .and_then(|v| tag_value(v, &opts.use_case_tag))
        .or_else(|| meta(&["spend_logs_metadata", opts.use_case_tag.as_str()]).and_then(text));

    let status = get("status")
        .or_else(|| meta(&["status"]))
        .and_then(text)
        .map(|s| match s.trim().to_ascii_lowercase().as_str() {
            "success" => "ok".to_string(),
            "failure" => "error".to_string(),
            _ => s,
        });

    let cache_hit = get("cache_hit")
        .and_then(text)
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("true"));
    let (input, cached, written, output) = if cache_hit {
        let zero = || Some("0".to_string());
        (zero(), zero(), zero(), zero())
    } else {
        let usage = |a: &[&str], b: &[&str]| {
            let mut path = vec!["usage_object"];
            path.extend_from_slice(a);
            meta(&path).or_else(|| {
                let mut path = vec!["usage_object"];
                path.extend_from_slice(b);
                meta(&path)
            })
        };
        let prompt = Count::of(get("prompt_tokens"));
        let (cached, written) = if metadata_ok {
            (
                Count::of(usage(
                    &["prompt_tokens_details", "cached_tokens"],
                    &["cache_read_input_tokens"],
                )),
                Count::of(usage(
                    &["prompt_tokens_details", "cache_creation_tokens"],
                    &["cache_creation_input_tokens"],
                )),
            )
        } else {
            (Count::Raw("metadata is not JSON".into()), Count::Absent)
        };
        let input = match (&prompt, cached.known(), written.known()) {
            (Count::Int(p), Some(c), Some(w)) => Some((p - c - w).to_string()),
            _ => prompt.text(),
        };
        (
            input,
            cached.text().or_else(|| Some("0".into())),
            written.text().or_else(|| Some("0".into())),
            Count::of(get("completion_tokens")).text(),
        )
    };

    // Outcomes are tagged like use cases: a request tag first, then the
    // caller's spend-logs metadata.
    let tagged = |name: &str| {
        get("request_tags")
            .and_then(|v| tag_value(v, name))
            .or_else(|| meta(&["spend_logs_metadata", name]).and_then(text))
    };
    CanonicalRow {
        outcome: tagged(OUTCOME_TAG),
        outcome_count: tagged(OUTCOME_COUNT_TAG),
        user: get("end_user").or_else(|| get("user")).and_then(text),
        tokens_estimated: tagged(TOKENS_ESTIMATED_TAG),
        conversation_id: get("session_id").and_then(text),
        request_id: get("request_id").and_then(text),
        timestamp: get("startTime").and_then(text),
        provider,
        model,
        billing_scope,
        team,
        use_case,
        input_tokens: input,
        cached_input_tokens: cached,
        cache_write_tokens: written,
        output_tokens: output,
        status,
        line: None,
    }
}

/// The value of the tag `<name>:<value>` in a JSON array of tags (or its
/// text, as in a CSV cell).
fn tag_value(tags: &Value, name: &str) -> Option<String> {
    let tags = as_json(tags).ok()?;
    tags.as_array()?.iter().find_map(|t| {
        let (k, v) = t.as_str()?.split_once(':')?;
        (k.trim() == name && !v.trim().is_empty()).then(|| v.trim().to_string())
    })
}

/// A JSON value held as JSON (JSON export) or as its text (CSV cell).
fn as_json(v: &Value) -> Result<Value, ()> {
    match v {
        Value::String(s) => serde_json::from_str(s).map_err(|_| ()),
        other => Ok(other.clone()),
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => super::is_null_text(s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::request::*;

    const HEADER: &str = "request_id,call_type,api_key,spend,total_tokens,prompt_tokens,completion_tokens,startTime,endTime,model,model_group,custom_llm_provider,metadata,cache_hit,request_tags,team_id,status";

    fn opts() -> LitellmOptions {
        let mut o = LitellmOptions::default();
        o.key_scopes.insert(
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b".into(),
            "proj_core".into(),
        );
        o
    }

    fn csv(rows: &[&str]) -> DataFrame {
        let text = format!("{HEADER}\n{}\n", rows.join("\n"));
        frame_from_text("memory://spend.csv", &text, FileFormat::Csv, &opts()).unwrap()
    }

    fn values(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        df.column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    fn one(df: &DataFrame, name: &str) -> Option<String> {
        values(df, name).remove(0)
    }

    const KEY: &str = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b";

    fn row(prompt: &str, metadata: &str, extra: &str) -> String {
        // extra: cache_hit,request_tags,team_id,status
        format!(
            "req-1,acompletion,{KEY},0.01,{prompt},{prompt},50,2025-01-03 10:00:00.123,2025-01-03 10:00:02,claude-3-5-sonnet-20241022,claude-sonnet,anthropic,\"{}\",{extra}",
            metadata.replace('"', "\"\"")
        )
    }

    #[test]
    fn prompt_tokens_lose_cache_reads_and_writes() {
        let meta = r#"{"usage_object":{"prompt_tokens":1200,"completion_tokens":50,"prompt_tokens_details":{"cached_tokens":800,"cache_creation_tokens":300}}}"#;
        let df = csv(&[&row("1200", meta, "False,[],support,success")]);
        assert_eq!(one(&df, INPUT_TOKENS).as_deref(), Some("100"));
        assert_eq!(one(&df, CACHED_INPUT_TOKENS).as_deref(), Some("800"));
        assert_eq!(one(&df, CACHE_WRITE_TOKENS).as_deref(), Some("300"));
        assert_eq!(one(&df, OUTPUT_TOKENS).as_deref(), Some("50"));
        assert_eq!(
            one(&df, TIMESTAMP).as_deref(),
            Some("2025-01-03 10:00:00.123")
        );
        assert_eq!(
            one(&df, MODEL).as_deref(),
            Some("claude-3-5-sonnet-20241022")
        );
    }

    #[test]
    fn cache_counts_from_anthropic_style_keys_and_none_without_usage_object() {
        let meta =
            r#"{"usage_object":{"cache_read_input_tokens":200,"cache_creation_input_tokens":0}}"#;
        let df = csv(&[
            &row("1000", meta, "False,[],support,success"),
            &row("1000", "{}", "False,[],support,success"),
        ]);
        assert_eq!(
            values(&df, INPUT_TOKENS),
            [Some("800".into()), Some("1000".into())]
        );
        assert_eq!(
            values(&df, CACHED_INPUT_TOKENS),
            [Some("200".into()), Some("0".into())]
        );
    }

    #[test]
    fn more_cache_than_prompt_is_negative_and_left_to_quarantine() {
        let meta = r#"{"usage_object":{"prompt_tokens_details":{"cached_tokens":800,"cache_creation_tokens":300}}}"#;
        let df = csv(&[&row("1000", meta, "False,[],support,success")]);
        assert_eq!(one(&df, INPUT_TOKENS).as_deref(), Some("-100"));
    }

    #[test]
    fn bad_values_pass_through_as_text() {
        let bad_meta = csv(&[&row("1000", "{not json", "False,[],support,success")]);
        assert_eq!(
            one(&bad_meta, CACHED_INPUT_TOKENS).as_deref(),
            Some("metadata is not JSON")
        );
        assert_eq!(one(&bad_meta, INPUT_TOKENS).as_deref(), Some("1000"));
        let bad_count = csv(&[&row("12x", "{}", "False,[],support,success")]);
        assert_eq!(one(&bad_count, INPUT_TOKENS).as_deref(), Some("12x"));
        let bad_cache = r#"{"usage_object":{"prompt_tokens_details":{"cached_tokens":"lots"}}}"#;
        let bad_cache = csv(&[&row("1000", bad_cache, "False,[],support,success")]);
        assert_eq!(
            one(&bad_cache, CACHED_INPUT_TOKENS).as_deref(),
            Some("lots")
        );
    }

    #[test]
    fn status_success_and_failure_map_to_ok_and_error() {
        let df = csv(&[
            &row("10", "{}", "False,[],support,success"),
            &row("10", "{}", "False,[],support,failure"),
            &row("10", r#"{"status":"failure"}"#, "False,[],support,"),
            &row("10", "{}", "False,[],support,pending"),
        ]);
        assert_eq!(
            values(&df, STATUS),
            [
                Some("ok".into()),
                Some("error".into()),
                Some("error".into()),
                Some("pending".into())
            ]
        );
    }

    #[test]
    fn hashed_key_maps_to_a_billing_scope() {
        let other = row("10", "{}", "False,[],support,success").replace(KEY, "0000");
        let df = csv(&[&row("10", "{}", "False,[],support,success"), &other]);
        assert_eq!(values(&df, BILLING_SCOPE), [Some("proj_core".into()), None]);
    }

    #[test]
    fn use_case_from_its_tag_else_spend_logs_metadata() {
        let df = csv(&[
            &row(
                "10",
                "{}",
                r#"False,"[""User-Agent: curl/8.5.0"",""use_case:tickets""]",support,success"#,
            ),
            &row(
                "10",
                r#"{"spend_logs_metadata":{"use_case":"triage"}}"#,
                r#"False,"[""batch""]",support,success"#,
            ),
            &row("10", "{}", r#"False,"[""jobID:214590""]",support,success"#),
        ]);
        assert_eq!(
            values(&df, USE_CASE),
            [Some("tickets".into()), Some("triage".into()), None]
        );
    }

    #[test]
    fn outcome_from_its_tag_or_metadata_and_the_end_user() {
        let row = |v: Value| into_row(v);
        let c = convert(
            &row(serde_json::json!({
                "request_tags": ["use_case:tickets", "outcome:resolved_ticket", "outcome_count:3"],
                "end_user": "cust-1",
                "user": "default_user_id",
            })),
            &opts(),
        );
        assert_eq!(
            (
                c.outcome.as_deref(),
                c.outcome_count.as_deref(),
                c.user.as_deref()
            ),
            (Some("resolved_ticket"), Some("3"), Some("cust-1"))
        );
        let c = convert(
            &row(serde_json::json!({
                "metadata": {"spend_logs_metadata": {"outcome": "article_draft"}},
                "user": "dev-9",
            })),
            &opts(),
        );
        assert_eq!(
            (
                c.outcome.as_deref(),
                c.outcome_count.as_deref(),
                c.user.as_deref()
            ),
            (Some("article_draft"), None, Some("dev-9"))
        );
    }

    #[test]
    fn conversation_from_the_session_and_estimated_counts_tagged() {
        let row = |v: Value| into_row(v);
        let c = convert(
            &row(serde_json::json!({
                "session_id": "3f1d2c9a-5b1e-4c0e-9a53-1f2e3d4c5b6a",
                "request_tags": ["use_case:tickets", "tokens_estimated:true"],
            })),
            &opts(),
        );
        assert_eq!(
            (c.conversation_id.as_deref(), c.tokens_estimated.as_deref()),
            (Some("3f1d2c9a-5b1e-4c0e-9a53-1f2e3d4c5b6a"), Some("true"))
        );
        let c = convert(
            &row(serde_json::json!({
                "session_id": null,
                "metadata": {"spend_logs_metadata": {"tokens_estimated": false}},
            })),
            &opts(),
        );
        assert_eq!(
            (c.conversation_id.as_deref(), c.tokens_estimated.as_deref()),
            (None, Some("false"))
        );
    }

    #[test]
    fn team_falls_back_to_the_key_team_alias() {
        let meta = r#"{"user_api_key_team_alias":"search","user_api_key_team_id":"5f1c"}"#;
        let df = csv(&[
            &row("10", meta, "False,[],,success"),
            &row("10", meta, "False,[],5f1c,success"),
        ]);
        assert_eq!(
            values(&df, TEAM),
            [Some("5f1c".into()), Some("5f1c".into())]
        );
        let mut alias = opts();
        alias.team = LitellmTeam::TeamAlias;
        let text = format!("{HEADER}\n{}\n", row("10", meta, "False,[],5f1c,success"));
        let df = frame_from_text("memory://s.csv", &text, FileFormat::Csv, &alias).unwrap();
        assert_eq!(one(&df, TEAM).as_deref(), Some("search"));
        let no_id = r#"{"user_api_key_team_alias":"search"}"#;
        assert_eq!(
            one(&csv(&[&row("10", no_id, "False,[],,success")]), TEAM).as_deref(),
            Some("search")
        );
    }

    #[test]
    fn litellm_cache_hits_cost_no_tokens() {
        let meta = r#"{"usage_object":{"prompt_tokens_details":{"cached_tokens":5}}}"#;
        let df = csv(&[&row("1000", meta, "True,[],support,success")]);
        for c in TOKEN_COLUMNS {
            assert_eq!(one(&df, c).as_deref(), Some("0"), "{c}");
        }
    }

    #[test]
    fn providers_map_to_our_ids_and_model_prefixes_go() {
        assert_eq!(provider_id("bedrock"), "aws-bedrock");
        assert_eq!(provider_id("azure"), "azure-openai");
        assert_eq!(provider_id("vertex_ai"), "vertex-ai");
        assert_eq!(provider_id("OpenAI"), "openai");
        assert_eq!(provider_id("anthropic"), "anthropic");
        assert_eq!(provider_id("together_ai"), "together-ai");
        let prefixed = row("10", "{}", "False,[],support,success").replace(
            ",claude-3-5-sonnet-20241022,claude-sonnet,anthropic,",
            ",bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0,sonnet,,",
        );
        let df = csv(&[&prefixed]);
        assert_eq!(one(&df, PROVIDER).as_deref(), Some("aws-bedrock"));
        assert_eq!(
            one(&df, MODEL).as_deref(),
            Some("anthropic.claude-3-5-sonnet-20240620-v1:0")
        );
        let group_only = row("10", "{}", "False,[],support,success")
            .replace(",claude-3-5-sonnet-20241022,", ",,");
        assert_eq!(
            one(&csv(&[&group_only]), MODEL).as_deref(),
            Some("claude-sonnet")
        );
    }

    #[test]
    fn json_array_json_lines_and_api_pages_read_alike() {
        let r1 = r#"{"request_id":"a","startTime":"2025-01-03T10:00:00Z","model":"gpt-4o","custom_llm_provider":"openai","prompt_tokens":1000,"completion_tokens":10,"api_key":"88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b","metadata":{"usage_object":{"prompt_tokens_details":{"cached_tokens":600}}},"request_tags":["use_case:search"],"team_id":"search","status":"success"}"#;
        let r2 = r#"{"request_id":"b","startTime":"2025-01-03T11:00:00Z","model":"gpt-4o","custom_llm_provider":"openai","prompt_tokens":"7","completion_tokens":null,"status":"failure"}"#;
        let o = opts();
        let array = frame_from_text(
            "memory://a.json",
            &format!("[{r1},\n{r2}]"),
            FileFormat::Json,
            &o,
        )
        .unwrap();
        let lines = frame_from_text(
            "memory://a.jsonl",
            &format!("{r1}\n\n{r2}\n"),
            FileFormat::Jsonl,
            &o,
        )
        .unwrap();
        let page = frame_from_text(
            "memory://a.json",
            &format!("{{\"data\":[{r1},{r2}],\"total\":2}}"),
            FileFormat::Json,
            &o,
        )
        .unwrap();
        assert_eq!(array, lines);
        assert_eq!(array, page);
        assert_eq!(
            values(&array, REQUEST_ID),
            [Some("a".into()), Some("b".into())]
        );
        assert_eq!(
            values(&array, INPUT_TOKENS),
            [Some("400".into()), Some("7".into())]
        );
        assert_eq!(
            values(&array, CACHED_INPUT_TOKENS),
            [Some("600".into()), Some("0".into())]
        );
        assert_eq!(values(&array, OUTPUT_TOKENS), [Some("10".into()), None]);
        assert_eq!(values(&array, USE_CASE), [Some("search".into()), None]);
        assert_eq!(
            values(&array, BILLING_SCOPE),
            [Some("proj_core".into()), None]
        );
        assert_eq!(
            values(&array, STATUS),
            [Some("ok".into()), Some("error".into())]
        );
    }

    #[test]
    fn unreadable_json_names_line_and_column() {
        let text = "{\"request_id\":\"a\"}\n{\"request_id\": ?}\n";
        let e = frame_from_text("memory://a.jsonl", text, FileFormat::Jsonl, &opts()).unwrap_err();
        match e {
            Error::Input { at, message, .. } => {
                assert_eq!((at.row, at.column.as_deref()), (Some(2), Some("16")));
                assert!(
                    message.starts_with("not valid JSON: expected value"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_without_the_fields_names_found_and_expected() {
        let text = "request_id,timestamp,tokens\nr1,2025-01-03T10:00:00Z,5\n";
        let e = frame_from_text("memory://x.csv", text, FileFormat::Csv, &opts()).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("missing `startTime`, `custom_llm_provider`, `prompt_tokens`, `completion_tokens`, `model`"), "{shown}");
        assert!(
            shown.contains("found `request_id`, `timestamp`, `tokens`"),
            "{shown}"
        );
        assert!(e.hint().unwrap().contains("`model_group`"));
    }

    #[test]
    fn an_empty_export_is_an_empty_log() {
        let df = frame_from_text("memory://e.json", "[]", FileFormat::Json, &opts()).unwrap();
        assert_eq!(df.height(), 0);
        // The canonical columns the adapter fills, value columns included
        // (the insight columns only when a row has a value).
        assert_eq!(df.width(), 15);
    }
}
