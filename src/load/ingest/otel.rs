//! OpenTelemetry GenAI spans (JSON lines) into the canonical request log
//! (DESIGN §3.1).
//!
//! Two shapes are read, line by line (a `.json` file may hold one document
//! or an array of them):
//! * flat spans, one per line, as SDK console and file exporters write them:
//!   `{"name", "span_id" (or `context.span_id`), "start_time" (RFC 3339 or
//!   unix nanoseconds), "status": {"status_code"}, "attributes": {…},
//!   "resource": {"attributes": {…}}}`;
//! * OTLP/JSON export requests, as the collector's file exporter writes
//!   them: `resourceSpans[].scopeSpans[].spans[]` with `startTimeUnixNano`,
//!   `status.code` (2 is error) and attributes as `[{"key", "value":
//!   {"stringValue" | "intValue" | …}}]`, where a 64-bit `intValue` is a
//!   decimal string (protobuf's JSON mapping) — or a number, also accepted.
//!
//! | canonical | from the span |
//! |---|---|
//! | `request_id` | `gen_ai.response.id`, else the span id |
//! | `timestamp` | the span's start |
//! | `provider` | `gen_ai.provider.name`, else the deprecated `gen_ai.system`: `aws.bedrock` → `aws-bedrock`, `azure.ai.openai` / `az.ai.openai` → `azure-openai`, `gcp.vertex_ai`, `gcp.gemini`, `gcp.gen_ai` (and older `vertex_ai`, `gemini`) → `vertex-ai`, `x_ai` → `xai` (one table with LiteLLM's names, `src/load/ingest/provider.rs`), others lower-cased with `-` for `.` and `_` |
//! | `model` | `gen_ai.response.model`, else `gen_ai.request.model` |
//! | `input_tokens` | `gen_ai.usage.input_tokens` (else the deprecated `gen_ai.usage.prompt_tokens`) − cache reads − cache writes: the conventions count cached tokens in the input |
//! | `cached_input_tokens` | `gen_ai.usage.cache_read.input_tokens` |
//! | `cache_write_tokens` | `gen_ai.usage.cache_creation.input_tokens` |
//! | `output_tokens` | `gen_ai.usage.output_tokens` (else `gen_ai.usage.completion_tokens`); reasoning included |
//! | `status` | `error` when the span status is ERROR or it has `error.type`, else `ok` |
//! | `team`, `use_case`, `billing_scope` | the span attribute named by `[sources.otel] team_attribute` (`team`), `use_case_attribute` (`use_case`), `scope_attribute` (none), else the resource attribute of that name |
//! | `outcome`, `outcome_count` | the span (else resource) attribute named by `[sources.otel] outcome_attribute` (`outcome`) and `outcome_count_attribute` (`outcome_count`): the conventions have none for business outcomes |
//! | `user` | `enduser.id`, else `user.id` (its successor in the conventions), span or resource |
//! | `conversation_id` | `gen_ai.conversation.id`, span or resource |
//! | `tokens_estimated` | the span (else resource) attribute `tokens_estimated`: the conventions have none |
//!
//! Decisions:
//! * Only model calls are requests. A span without any `gen_ai.usage.*`
//!   token count, or whose `gen_ai.operation.name` is not in
//!   `[sources.otel] operations` (default `chat`, `generate_content`,
//!   `text_completion`, `embeddings`) — agent, workflow and tool spans,
//!   whose usage repeats their children's — is skipped and counted
//!   ([`Spans::skipped`]). Everything else goes on, bad values included,
//!   for the canonical checks to quarantine.
//! * An `embeddings` span without output tokens has 0 of them.
//! * When cache reads and writes exceed the input, `input_tokens` is the
//!   negative difference, so the span is quarantined as negative.
//! * Rows count the spans kept, in file order; the frame's `__line` column
//!   says which line of the file each came from.

use polars::prelude::*;
use serde_json::{Map, Value};

use super::gateway_row::{CanonicalRow, CanonicalRows, Count, backticked, not_json, text};
use super::provider::provider_id;
use crate::config::{FileFormat, OtelOptions};
use crate::context::Context;
use crate::error::{Error, Location, Result};

const INPUT: &str = "gen_ai.usage.input_tokens";
const OUTPUT: &str = "gen_ai.usage.output_tokens";
const PROMPT_DEPRECATED: &str = "gen_ai.usage.prompt_tokens";
const COMPLETION_DEPRECATED: &str = "gen_ai.usage.completion_tokens";
const CACHE_READ: &str = "gen_ai.usage.cache_read.input_tokens";
const CACHE_CREATION: &str = "gen_ai.usage.cache_creation.input_tokens";
/// Our attribute for counts a tokenizer made: the conventions have none.
const ESTIMATED_ATTRIBUTE: &str = "tokens_estimated";

/// What one file of spans gave.
#[derive(Debug)]
pub struct Spans {
    /// Model-call spans in canonical form, in file order.
    pub frame: DataFrame,
    /// Spans that are not model calls (no usage, or another operation).
    pub skipped: u64,
}

/// The spans as a frame with canonical column names (DESIGN §3.1).
pub fn load(
    ctx: &Context,
    url: &str,
    file_format: Option<FileFormat>,
    opts: &OtelOptions,
) -> Result<LazyFrame> {
    Ok(load_spans(ctx, url, file_format, opts)?.frame.lazy())
}

/// The spans, with how many were skipped as not model calls.
pub fn load_spans(
    ctx: &Context,
    url: &str,
    file_format: Option<FileFormat>,
    opts: &OtelOptions,
) -> Result<Spans> {
    let format = file_format.or_else(|| FileFormat::from_name(url));
    if matches!(format, Some(FileFormat::Csv | FileFormat::Parquet)) {
        return Err(Error::input(
            Location::file(url),
            "OpenTelemetry spans are read from JSON lines, not CSV or Parquet",
        )
        .with_hint(
            "export the spans with the collector's file exporter (OTLP/JSON, one request per line)",
        ));
    }
    let text = ctx.store.read_text(url)?;
    spans_from_text(url, &text, opts)
}

fn spans_from_text(url: &str, text: &str, opts: &OtelOptions) -> Result<Spans> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut spans: Vec<Span> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let (mut line, mut counted_to) = (1u64, 0usize);
    loop {
        // The line a document starts on: after the whitespace before it.
        let start = stream.byte_offset();
        let Some(doc) = stream.next() else { break };
        let doc = doc.map_err(|e| {
            not_json(url, &e).with_hint(
                "spans are JSON lines: one span object, or one OTLP/JSON export request, per line",
            )
        })?;
        let begin = start + text[start..].len() - text[start..].trim_start().len();
        line += text[counted_to..begin].matches('\n').count() as u64;
        counted_to = begin;
        let docs = match doc {
            Value::Array(items) => items,
            other => vec![other],
        };
        for doc in docs {
            if let Value::Object(m) = &doc {
                for k in m.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            collect_spans(&doc, line, &mut spans);
        }
    }
    if spans.is_empty() && !keys.is_empty() {
        return Err(Error::input(
            Location::file(url),
            format!(
                "not OpenTelemetry spans: no `resourceSpans` and no span with `attributes`; found {}",
                backticked(keys.iter().map(String::as_str), 24)
            ),
        )
        .with_hint(
            "expected OTLP/JSON (`resourceSpans[].scopeSpans[].spans[]`) or flat spans with \
             `span_id`, `start_time` and `attributes` (`gen_ai.*`), one per line; or set `format` \
             in the policy",
        ));
    }
    let mut rows = CanonicalRows::default();
    let mut skipped = 0;
    for span in &spans {
        match convert(span, opts) {
            Some(row) => rows.push(row),
            None => skipped += 1,
        }
    }
    Ok(Spans {
        frame: rows.into_frame(),
        skipped,
    })
}

/// One span, its attributes decoded to plain JSON values.
#[derive(Debug, Default)]
struct Span {
    line: u64,
    span_id: Option<String>,
    start: Option<Value>,
    error: bool,
    attributes: Map<String, Value>,
    resource: Map<String, Value>,
}

/// The spans of one document: an OTLP/JSON export request or a flat span.
fn collect_spans(doc: &Value, line: u64, out: &mut Vec<Span>) {
    let Some(obj) = doc.as_object() else { return };
    let resource_spans = obj
        .get("resourceSpans")
        .or_else(|| obj.get("resource_spans"));
    if let Some(resource_spans) = resource_spans {
        for rs in resource_spans.as_array().into_iter().flatten() {
            let resource = rs
                .get("resource")
                .and_then(|r| r.get("attributes"))
                .map(attributes)
                .unwrap_or_default();
            let scopes = ["scopeSpans", "scope_spans", "instrumentationLibrarySpans"]
                .iter()
                .find_map(|k| rs.get(*k));
            for scope in scopes.and_then(Value::as_array).into_iter().flatten() {
                for sp in scope
                    .get("spans")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(mut span) = span_of(sp, line) {
                        span.resource = resource.clone();
                        out.push(span);
                    }
                }
            }
        }
    } else if (obj.contains_key("attributes") || obj.keys().any(|k| k.starts_with("gen_ai.")))
        && let Some(mut span) = span_of(doc, line)
    {
        span.resource = match obj.get("resource") {
            Some(r) if r.get("attributes").is_some() => attributes(&r["attributes"]),
            Some(r) => attributes(r),
            None => Map::new(),
        };
        out.push(span);
    }
}

fn span_of(sp: &Value, line: u64) -> Option<Span> {
    let obj = sp.as_object()?;
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| obj.get(*k))
            .filter(|v| !v.is_null())
    };
    let span_id = first(&["spanId", "span_id"])
        .or_else(|| sp.get("context").and_then(|c| c.get("span_id")))
        .and_then(text);
    let start = first(&[
        "startTimeUnixNano",
        "start_time_unix_nano",
        "start_time",
        "startTime",
    ])
    .cloned();
    // A span written as one flat object carries its attributes at the top.
    let attrs = obj
        .get("attributes")
        .map_or_else(|| attributes(sp), attributes);
    let error = status_is_error(obj) || attrs.get("error.type").is_some_and(|v| text(v).is_some());
    Some(Span {
        line,
        span_id,
        start,
        error,
        attributes: attrs,
        resource: Map::new(),
    })
}

/// Whether a span's status is ERROR, in any of the spellings exporters
/// use: OTLP `{"code": 2}` or `"STATUS_CODE_ERROR"`, the Python SDK's
/// `{"status_code": "ERROR"}`, or a bare `"ERROR"`.
fn status_is_error(span: &Map<String, Value>) -> bool {
    let code = match span.get("status") {
        Some(Value::Object(s)) => ["code", "status_code", "statusCode"]
            .iter()
            .find_map(|k| s.get(*k)),
        Some(other) => Some(other),
        None => span.get("status_code"),
    };
    match code {
        Some(Value::Number(n)) => n.as_u64() == Some(2),
        Some(Value::String(s)) => matches!(
            s.trim().to_ascii_uppercase().as_str(),
            "2" | "ERROR" | "STATUS_CODE_ERROR"
        ),
        _ => false,
    }
}

/// Attributes as a map of plain values, from an OTLP key-value list
/// (`[{"key", "value": {"stringValue": …}}]`) or a JSON object.
fn attributes(v: &Value) -> Map<String, Value> {
    match v {
        Value::Array(kvs) => kvs
            .iter()
            .filter_map(|kv| {
                let key = kv.get("key")?.as_str()?;
                Some((
                    key.to_string(),
                    any_value(kv.get("value").unwrap_or(&Value::Null)),
                ))
            })
            .collect(),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), any_value(v))).collect(),
        _ => Map::new(),
    }
}

/// An OTLP `AnyValue` as a plain value; a plain value as itself. An
/// `intValue` stays as its text (a decimal string in OTLP/JSON).
fn any_value(v: &Value) -> Value {
    let Some(obj) = v.as_object() else {
        return v.clone();
    };
    let typed = |k: &str| obj.get(k);
    if obj.is_empty() {
        Value::Null
    } else if let Some(s) = typed("stringValue") {
        s.clone()
    } else if let Some(i) = typed("intValue") {
        i.clone()
    } else if let Some(d) = typed("doubleValue") {
        d.clone()
    } else if let Some(b) = typed("boolValue") {
        b.clone()
    } else if let Some(b) = typed("bytesValue") {
        b.clone()
    } else if let Some(a) = typed("arrayValue") {
        let values = a.get("values").and_then(Value::as_array);
        Value::Array(values.into_iter().flatten().map(any_value).collect())
    } else if let Some(kv) = typed("kvlistValue") {
        Value::Object(attributes(kv.get("values").unwrap_or(&Value::Null)))
    } else {
        v.clone()
    }
}

/// The canonical row of a model-call span; `None` for any other span.
fn convert(span: &Span, opts: &OtelOptions) -> Option<CanonicalRow> {
    let attr = |k: &str| span.attributes.get(k).filter(|v| !v.is_null());
    let tagged = |k: &str| {
        attr(k)
            .and_then(text)
            .or_else(|| span.resource.get(k).and_then(text))
    };
    let operation = attr("gen_ai.operation.name").and_then(text);
    if let Some(op) = &operation
        && !opts.operations.iter().any(|o| o == op.trim())
    {
        return None;
    }
    let input = Count::of(attr(INPUT).or_else(|| attr(PROMPT_DEPRECATED)));
    let output = Count::of(attr(OUTPUT).or_else(|| attr(COMPLETION_DEPRECATED)));
    if input == Count::Absent && output == Count::Absent {
        return None;
    }
    let cached = Count::of(attr(CACHE_READ));
    let written = Count::of(attr(CACHE_CREATION));
    let input_tokens = match (&input, cached.known(), written.known()) {
        (Count::Int(i), Some(c), Some(w)) => Some((i - c - w).to_string()),
        _ => input.text(),
    };
    let output_tokens = match output {
        Count::Absent if operation.as_deref() == Some("embeddings") => Some("0".to_string()),
        other => other.text(),
    };
    Some(CanonicalRow {
        request_id: attr("gen_ai.response.id")
            .and_then(text)
            .or_else(|| span.span_id.clone()),
        timestamp: span.start.as_ref().and_then(start_time),
        provider: attr("gen_ai.provider.name")
            .or_else(|| attr("gen_ai.system"))
            .and_then(text)
            .map(|p| provider_id(&p)),
        model: attr("gen_ai.response.model")
            .or_else(|| attr("gen_ai.request.model"))
            .and_then(text),
        billing_scope: opts.scope_attribute.as_deref().and_then(tagged),
        team: tagged(&opts.team_attribute),
        use_case: tagged(&opts.use_case_attribute),
        outcome: tagged(&opts.outcome_attribute),
        outcome_count: tagged(&opts.outcome_count_attribute),
        user: tagged("enduser.id").or_else(|| tagged("user.id")),
        tokens_estimated: tagged(ESTIMATED_ATTRIBUTE),
        conversation_id: tagged("gen_ai.conversation.id"),
        input_tokens,
        cached_input_tokens: cached.text(),
        cache_write_tokens: written.text(),
        output_tokens,
        status: Some(if span.error { "error" } else { "ok" }.to_string()),
        line: Some(span.line),
    })
}

/// A span start as RFC 3339 text: unix nanoseconds (a number, or digits in
/// a string) are converted; other text goes on as it is.
fn start_time(v: &Value) -> Option<String> {
    let nanos = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    };
    match nanos {
        Some(n) => chrono::DateTime::from_timestamp(
            n.div_euclid(1_000_000_000),
            n.rem_euclid(1_000_000_000) as u32,
        )
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .or_else(|| text(v)),
        None => text(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::request::*;

    fn spans(text: &str) -> Spans {
        spans_from_text("memory://spans.jsonl", text, &OtelOptions::default()).unwrap()
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

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    const FLAT: &str = r#"{"trace_id":"0x5b8aa5a2d2c872e8321cf37308d69df2","span_id":"0x051581bf3cb55c13","name":"chat claude-3-5-sonnet","start_time":"2025-01-05T08:00:00.000000Z","status":{"status_code":"UNSET"},"attributes":{"gen_ai.operation.name":"chat","gen_ai.provider.name":"anthropic","gen_ai.request.model":"claude-3-5-sonnet","gen_ai.response.model":"claude-3-5-sonnet-20241022","gen_ai.response.id":"msg_01","gen_ai.usage.input_tokens":1500,"gen_ai.usage.cache_read.input_tokens":1000,"gen_ai.usage.cache_creation.input_tokens":400,"gen_ai.usage.output_tokens":20,"use_case":"completions"},"resource":{"attributes":{"service.name":"copilot-api","team":"copilot"}}}"#;

    #[test]
    fn flat_span_input_loses_cache_reads_and_writes() {
        let out = spans(FLAT);
        let df = &out.frame;
        assert_eq!(values(df, INPUT_TOKENS), [s("100")]);
        assert_eq!(values(df, CACHED_INPUT_TOKENS), [s("1000")]);
        assert_eq!(values(df, CACHE_WRITE_TOKENS), [s("400")]);
        assert_eq!(values(df, OUTPUT_TOKENS), [s("20")]);
        assert_eq!(values(df, MODEL), [s("claude-3-5-sonnet-20241022")]);
        assert_eq!(values(df, REQUEST_ID), [s("msg_01")]);
        assert_eq!(values(df, TIMESTAMP), [s("2025-01-05T08:00:00.000000Z")]);
        assert_eq!(values(df, STATUS), [s("ok")]);
        assert_eq!(out.skipped, 0);
    }

    #[test]
    fn outcome_and_end_user_come_from_attributes() {
        let with = FLAT.replace(
            r#""use_case":"completions"}"#,
            r#""use_case":"completions","outcome":"resolved_ticket","outcome_count":2,"enduser.id":"u-7"}"#,
        );
        let out = spans(&with);
        assert_eq!(values(&out.frame, OUTCOME), [s("resolved_ticket")]);
        assert_eq!(values(&out.frame, OUTCOME_COUNT), [s("2")]);
        assert_eq!(values(&out.frame, USER), [s("u-7")]);
        // `user.id` (the newer name) on the resource; no outcome at all.
        let newer = FLAT.replace(r#""team":"copilot""#, r#""team":"copilot","user.id":"u-8""#);
        let out = spans(&newer);
        assert_eq!(values(&out.frame, USER), [s("u-8")]);
        assert_eq!(values(&out.frame, OUTCOME), [None]);
        assert_eq!(values(&out.frame, OUTCOME_COUNT), [None]);
    }

    #[test]
    fn conversation_and_estimated_counts_come_from_attributes() {
        let with = FLAT.replace(
            r#""use_case":"completions"}"#,
            r#""use_case":"completions","gen_ai.conversation.id":"conv_5j66","tokens_estimated":true}"#,
        );
        let out = spans(&with);
        assert_eq!(values(&out.frame, CONVERSATION_ID), [s("conv_5j66")]);
        assert_eq!(values(&out.frame, TOKENS_ESTIMATED), [s("true")]);
        // On the resource; and neither at all.
        let resource = FLAT.replace(
            r#""team":"copilot""#,
            r#""team":"copilot","gen_ai.conversation.id":"conv_r""#,
        );
        assert_eq!(
            values(&spans(&resource).frame, CONVERSATION_ID),
            [s("conv_r")]
        );
        // Neither: the frame has no such columns, as a log without them.
        let plain = spans(FLAT).frame;
        assert!(plain.column(CONVERSATION_ID).is_err());
        assert!(plain.column(TOKENS_ESTIMATED).is_err());
    }

    #[test]
    fn team_falls_back_to_resource_attributes() {
        let df = spans(FLAT).frame;
        assert_eq!(values(&df, TEAM), [s("copilot")]);
        assert_eq!(values(&df, USE_CASE), [s("completions")]);
        let span_wins = FLAT.replace(
            r#""use_case":"completions""#,
            r#""use_case":"completions","team":"search""#,
        );
        assert_eq!(values(&spans(&span_wins).frame, TEAM), [s("search")]);
        let opts = OtelOptions {
            team_attribute: "service.name".into(),
            scope_attribute: Some("gen_ai.response.id".into()),
            ..OtelOptions::default()
        };
        let df = spans_from_text("memory://s.jsonl", FLAT, &opts)
            .unwrap()
            .frame;
        assert_eq!(values(&df, TEAM), [s("copilot-api")]);
        assert_eq!(values(&df, BILLING_SCOPE), [s("msg_01")]);
    }

    const OTLP: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}},{"key":"team","value":{"stringValue":"support"}}]},"scopeSpans":[{"scope":{"name":"opentelemetry.instrumentation.openai_v2"},"spans":[{"traceId":"5b8aa5a2d2c872e8321cf37308d69df2","spanId":"051581bf3cb55c13","name":"chat gpt-4o","kind":3,"startTimeUnixNano":"1735898400000000000","endTimeUnixNano":"1735898401000000000","attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},{"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"1000000"}},{"key":"gen_ai.usage.cache_read.input_tokens","value":{"intValue":0}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":"100000"}},{"key":"use_case","value":{"stringValue":"tickets"}}],"status":{}},{"traceId":"5b8aa5a2d2c872e8321cf37308d69df2","spanId":"1111111111111111","name":"chat gpt-4o-mini","startTimeUnixNano":"1735981200000000000","attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},{"key":"gen_ai.provider.name","value":{"stringValue":"azure.ai.openai"}},{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o-mini"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"1000000"}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":"0"}},{"key":"error.type","value":{"stringValue":"timeout"}}],"status":{"code":2,"message":"timeout"}},{"traceId":"5b8aa5a2d2c872e8321cf37308d69df2","spanId":"2222222222222222","name":"POST","startTimeUnixNano":"1735981200000000000","attributes":[{"key":"http.request.method","value":{"stringValue":"POST"}}]}]}]}]}"#;

    #[test]
    fn otlp_json_int_values_are_strings_and_times_are_nanos() {
        let out = spans(OTLP);
        let df = &out.frame;
        assert_eq!(values(df, INPUT_TOKENS), [s("1000000"), s("1000000")]);
        assert_eq!(values(df, OUTPUT_TOKENS), [s("100000"), s("0")]);
        assert_eq!(values(df, CACHED_INPUT_TOKENS), [s("0"), None]);
        assert_eq!(
            values(df, TIMESTAMP),
            [s("2025-01-03T10:00:00Z"), s("2025-01-04T09:00:00Z")]
        );
        assert_eq!(
            values(df, REQUEST_ID),
            [s("051581bf3cb55c13"), s("1111111111111111")]
        );
        assert_eq!(values(df, PROVIDER), [s("openai"), s("azure-openai")]);
        assert_eq!(values(df, TEAM), [s("support"), s("support")]);
        assert_eq!(values(df, USE_CASE), [s("tickets"), None]);
        assert_eq!(values(df, STATUS), [s("ok"), s("error")]);
        assert_eq!(out.skipped, 1, "the HTTP span is not a model call");
    }

    #[test]
    fn deprecated_attribute_names_are_read() {
        let old = r#"{"span_id":"a1","start_time":1735898400000000000,"attributes":{"gen_ai.system":"aws.bedrock","gen_ai.request.model":"anthropic.claude-3-5-sonnet-20240620-v1:0","gen_ai.usage.prompt_tokens":"300","gen_ai.usage.completion_tokens":30},"status":"ERROR"}"#;
        let df = spans(old).frame;
        assert_eq!(values(&df, PROVIDER), [s("aws-bedrock")]);
        assert_eq!(values(&df, INPUT_TOKENS), [s("300")]);
        assert_eq!(values(&df, OUTPUT_TOKENS), [s("30")]);
        assert_eq!(values(&df, TIMESTAMP), [s("2025-01-03T10:00:00Z")]);
        assert_eq!(values(&df, STATUS), [s("error")]);
        assert_eq!(values(&df, REQUEST_ID), [s("a1")]);
    }

    #[test]
    fn only_model_calls_are_requests() {
        let agent = FLAT.replace(
            r#""gen_ai.operation.name":"chat""#,
            r#""gen_ai.operation.name":"invoke_agent""#,
        );
        let tool = r#"{"span_id":"t","start_time":"2025-01-05T08:00:00Z","attributes":{"gen_ai.operation.name":"execute_tool","gen_ai.tool.name":"search"}}"#;
        let no_usage = r#"{"span_id":"n","start_time":"2025-01-05T08:00:00Z","attributes":{"gen_ai.operation.name":"chat","gen_ai.provider.name":"openai"}}"#;
        let embeddings = r#"{"span_id":"e","start_time":"2025-01-05T08:00:00Z","attributes":{"gen_ai.operation.name":"embeddings","gen_ai.provider.name":"openai","gen_ai.request.model":"text-embedding-3-small","gen_ai.usage.input_tokens":12}}"#;
        let out = spans(&[agent.as_str(), tool, no_usage, embeddings, FLAT].join("\n"));
        assert_eq!(out.skipped, 3);
        assert_eq!(values(&out.frame, REQUEST_ID), [s("e"), s("msg_01")]);
        assert_eq!(values(&out.frame, OUTPUT_TOKENS), [s("0"), s("20")]);
        assert_eq!(
            out.frame
                .column(crate::load::ingest::gateway_row::SOURCE_LINE)
                .unwrap()
                .u64()
                .unwrap()
                .to_vec(),
            [Some(4), Some(5)]
        );
    }

    #[test]
    fn bad_values_pass_through_as_text() {
        let bad = FLAT
            .replace(
                r#""gen_ai.usage.output_tokens":20"#,
                r#""gen_ai.usage.output_tokens":"twenty""#,
            )
            .replace(
                r#""gen_ai.usage.input_tokens":1500"#,
                r#""gen_ai.usage.input_tokens":1000"#,
            )
            .replace(
                r#""start_time":"2025-01-05T08:00:00.000000Z""#,
                r#""start_time":"last tuesday""#,
            );
        let df = spans(&bad).frame;
        assert_eq!(values(&df, OUTPUT_TOKENS), [s("twenty")]);
        assert_eq!(values(&df, INPUT_TOKENS), [s("-400")]);
        assert_eq!(values(&df, TIMESTAMP), [s("last tuesday")]);
    }

    #[test]
    fn providers_map_to_our_ids() {
        for (theirs, ours) in [
            ("openai", "openai"),
            ("anthropic", "anthropic"),
            ("aws.bedrock", "aws-bedrock"),
            ("azure.ai.openai", "azure-openai"),
            ("az.ai.openai", "azure-openai"),
            ("gcp.vertex_ai", "vertex-ai"),
            ("vertex_ai", "vertex-ai"),
            ("gcp.gemini", "vertex-ai"),
            ("mistral_ai", "mistral-ai"),
            ("ibm.watsonx.ai", "ibm-watsonx-ai"),
        ] {
            assert_eq!(provider_id(theirs), ours, "{theirs}");
        }
    }

    #[test]
    fn unreadable_json_names_the_line() {
        let text = format!("{FLAT}\n\n{{\"span_id\": oops}}\n");
        let e = spans_from_text("memory://s.jsonl", &text, &OtelOptions::default()).unwrap_err();
        match e {
            Error::Input { at, hint, .. } => {
                assert_eq!(at.row, Some(3));
                assert!(hint.unwrap().contains("JSON lines"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_of_something_else_names_what_it_found() {
        let e = spans_from_text(
            "memory://s.jsonl",
            r#"{"request_id":"r1","timestamp":"2025-01-03"}"#,
            &OtelOptions::default(),
        )
        .unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("not OpenTelemetry spans"), "{shown}");
        assert!(shown.contains("found `request_id`, `timestamp`"), "{shown}");
        assert!(e.hint().unwrap().contains("resourceSpans"));
        let empty = spans("");
        assert_eq!((empty.frame.height(), empty.skipped), (0, 0));
    }
}
