//! Telling what an input is from the file itself, so a policy can list a
//! bucket of exports without saying which is which. The policy's `format`
//! wins when given.

use super::bill::BillFormat;
use super::{BILL_FORMATS, first_line, scan};
use crate::config::{BillingFormat, FileFormat, RequestFormat};
use crate::context::Context;
use crate::error::{Error, Location, Result};

/// Column names of a table file, or the keys that occur in a JSON document
/// (any depth), with the document's text for JSON.
fn fingerprint(
    ctx: &Context,
    url: &str,
    file_format: Option<FileFormat>,
    text: Option<&str>,
) -> Result<(Vec<String>, String)> {
    let format = file_format.or_else(|| FileFormat::from_name(url));
    if format == Some(FileFormat::Json) {
        let text = match text {
            Some(t) => t.to_string(),
            None => ctx.store.read_text(url)?,
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::input(
                Location {
                    uri: url.to_string(),
                    row: Some(e.line() as u64),
                    column: Some(e.column().to_string()),
                },
                format!("not valid JSON: {e}"),
            )
        })?;
        let mut keys = Vec::new();
        collect_keys(&v, &mut keys, 0);
        keys.sort();
        keys.dedup();
        return Ok((keys, text));
    }
    let mut lf = scan(ctx, url, file_format)?;
    let schema = lf
        .collect_schema()
        .map_err(|e| Error::input(Location::file(url), first_line(&e.to_string()).to_string()))?;
    Ok((
        schema.iter_names().map(ToString::to_string).collect(),
        String::new(),
    ))
}

fn collect_keys(v: &serde_json::Value, out: &mut Vec<String>, depth: usize) {
    if depth > 6 {
        return;
    }
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                collect_keys(x, out, depth + 1);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a.iter().take(20) {
                collect_keys(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

fn has(names: &[String], wanted: &[&str]) -> bool {
    wanted.iter().all(|w| names.iter().any(|n| n == w))
}

fn found(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(24).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 24 {
        format!(" and {} more", names.len() - 24)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// Which kind of request log a file is.
pub fn request_format(
    ctx: &Context,
    url: &str,
    file_format: Option<FileFormat>,
) -> Result<RequestFormat> {
    crate::error::reading(url, || detect_request_format(ctx, url, file_format))
}

fn detect_request_format(
    ctx: &Context,
    url: &str,
    file_format: Option<FileFormat>,
) -> Result<RequestFormat> {
    let jsonl = file_format.or_else(|| FileFormat::from_name(url)) == Some(FileFormat::Jsonl);
    let names = match fingerprint(ctx, url, file_format, None) {
        Ok((names, _)) => names,
        // Spans whose lines differ in shape may defeat Polars' schema
        // inference; they are peeked at below.
        Err(_) if jsonl => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut names = names;
    let mut format = request_rules(&names);
    if format.is_none() && jsonl {
        names = jsonl_keys(ctx, url)?;
        format = request_rules(&names);
    }
    format.ok_or_else(|| {
        Error::input(
            Location::file(url),
            format!(
                "cannot tell what request log this is; found {}",
                found(&names)
            ),
        )
        .with_hint(
            "expected a canonical log (`request_id`, `timestamp`, …), a LiteLLM SpendLogs export \
             (`request_id`, `startTime`, `prompt_tokens`, …) or OpenTelemetry GenAI spans \
             (`resourceSpans`, or `attributes` with `gen_ai.*`); or set `format` in the policy",
        )
    })
}

/// The request-log rules, over column names or JSON keys (any depth).
fn request_rules(names: &[String]) -> Option<RequestFormat> {
    let any = |wanted: &[&str]| wanted.iter().any(|w| names.iter().any(|n| n == w));
    // LiteLLM's `metadata` may hold a `timestamp` key; a canonical log
    // never has `startTime`.
    if has(names, &["request_id", "timestamp"]) && !any(&["startTime"]) {
        Some(RequestFormat::Canonical)
    } else if has(names, &["request_id"]) && any(&["startTime", "prompt_tokens"]) {
        Some(RequestFormat::Litellm)
    } else if any(&["resourceSpans", "resource_spans", "attributes"])
        || names.iter().any(|n| n.starts_with("gen_ai."))
    {
        Some(RequestFormat::Otel)
    } else {
        None
    }
}

/// The keys (any depth) of the first lines of a JSON lines file.
fn jsonl_keys(ctx: &Context, url: &str) -> Result<Vec<String>> {
    let text = ctx.store.read_text(url)?;
    let mut keys = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .take(20)
    {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            Error::input(
                Location {
                    uri: url.to_string(),
                    row: Some(i as u64 + 1),
                    column: Some(e.column().to_string()),
                },
                format!(
                    "not valid JSON: {}",
                    e.to_string().split(" at line ").next().unwrap_or("")
                ),
            )
            .with_hint("JSON lines hold one JSON object per line")
        })?;
        collect_keys(&v, &mut keys, 0);
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Which kind of bill a file is; `text` is the file's text when the
/// caller has already read it (JSON), so it is not fetched twice.
pub fn billing_format(
    ctx: &Context,
    url: &str,
    file_format: Option<FileFormat>,
    text: Option<&str>,
) -> Result<BillingFormat> {
    bill_format_among(&BILL_FORMATS, ctx, url, file_format, text)
}

/// Which of `formats` a bill file is, by their rules.
pub(super) fn bill_format_among<K: Copy>(
    formats: &[&BillFormat<K>],
    ctx: &Context,
    url: &str,
    file_format: Option<FileFormat>,
    text: Option<&str>,
) -> Result<K> {
    // Provider API pages (one, an array, or one per line), whatever the
    // extension says, before the one-document fingerprint.
    if let Some(text) = text
        && let Some(format) = first_match(formats, Over::Pages, &Seen::pages(text))
    {
        return Ok(format);
    }
    let (names, text) = fingerprint(ctx, url, file_format, text)?;
    let seen = Seen {
        names: Names::Given(&names),
        text: &text,
    };
    if let Some(format) = first_match(formats, Over::Names, &seen) {
        Ok(format)
    } else if let Some((what, how)) = native_export(&names) {
        Err(Error::input(
            Location::file(url),
            format!(
                "this is a native {what} export, not FOCUS; found {}",
                found(&names)
            ),
        )
        .with_hint(format!("export FOCUS 1.x instead: {how}")))
    } else {
        Err(Error::input(
            Location::file(url),
            format!("cannot tell what bill this is; found {}", found(&names)),
        )
        .with_hint(
            "expected a FOCUS export (`BilledCost`, …), OpenAI costs pages (`organization.costs.result`) \
             or dashboard CSV (`amount_value`, `line_item`), an Anthropic cost report (`starting_at`, \
             `results`, `amount`) or console CSV (`usage_date_utc`, `cost_usd`), or a usage report of \
             either (`organization.usage.completions.result`, `uncached_input_tokens`); or set `format` \
             in the policy",
        ))
    }
}

/// What a detection rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Over {
    /// A JSON text read as API pages: the keys of its first values (none
    /// when they are not JSON). Tried first, whatever the extension says.
    Pages,
    /// A file's column names, or the keys anywhere in one JSON document
    /// (with its text).
    Names,
}

/// One way a bill format is told from a file; it lives next to the
/// format's loader. Rules are tried `Pages` first, then by `rank` (lower
/// first; the registry's order among equal ranks): a rule that would also
/// match a more specific format's file must rank after it.
#[derive(Clone, Copy)]
pub(super) struct Rule {
    pub over: Over,
    pub rank: u8,
    pub test: fn(&Seen<'_>) -> bool,
}

/// What detection has seen of a file: names (column names or JSON keys)
/// and, for JSON, its text.
pub(super) struct Seen<'a> {
    names: Names<'a>,
    text: &'a str,
}

enum Names<'a> {
    Given(&'a [String]),
    /// A text's [`page_keys`], parsed when a rule first asks: most pages
    /// are told by a marker in their text, before any is parsed.
    PageKeys(std::cell::OnceCell<Vec<String>>),
}

impl<'a> Seen<'a> {
    fn pages(text: &'a str) -> Seen<'a> {
        Seen {
            names: Names::PageKeys(std::cell::OnceCell::new()),
            text,
        }
    }

    fn names(&self) -> &[String] {
        match &self.names {
            Names::Given(names) => names,
            Names::PageKeys(keys) => keys.get_or_init(|| page_keys(self.text)),
        }
    }

    /// Every one of `wanted` is among the names.
    pub(super) fn has(&self, wanted: &[&str]) -> bool {
        has(self.names(), wanted)
    }

    /// The text holds `s` (JSON only; a table's text is empty).
    pub(super) fn text_has(&self, s: &str) -> bool {
        self.text.contains(s)
    }
}

/// The format of the first rule over `over` that `seen` matches.
fn first_match<K: Copy>(formats: &[&BillFormat<K>], over: Over, seen: &Seen<'_>) -> Option<K> {
    let mut rules: Vec<(u8, usize, &Rule)> = formats
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.rules.iter().map(move |r| (r.rank, i, r)))
        .filter(|(_, _, r)| r.over == over)
        .collect();
    rules.sort_by_key(|(rank, i, _)| (*rank, *i));
    rules
        .into_iter()
        .find(|(_, _, r)| (r.test)(seen))
        .map(|(_, i, _)| formats[i].format)
}

/// The keys (any depth) of the first values of a JSON text, as API pages
/// are told by; none when one of them is not JSON.
fn page_keys(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for v in serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .take(3)
    {
        match v {
            Ok(v) => collect_keys(&v, &mut names, 0),
            Err(_) => return Vec::new(),
        }
    }
    names
}

/// Which provider API bill a JSON text is, by the rules [`Over::Pages`].
#[cfg(test)]
fn json_bill_format(text: &str) -> Option<BillingFormat> {
    first_match(&BILL_FORMATS, Over::Pages, &Seen::pages(text))
}

/// A cloud's own cost export that people hand over instead of FOCUS, by
/// its column names: what it is and how to get the FOCUS export instead.
fn native_export(names: &[String]) -> Option<(&'static str, &'static str)> {
    let any_prefix = |p: &str| names.iter().any(|n| n.starts_with(p));
    let any = |wanted: &[&str]| wanted.iter().any(|w| names.iter().any(|n| n == w));
    if any_prefix("lineItem/") && any_prefix("cost/") {
        Some((
            "Oracle Cloud (OCI) cost report",
            "OCI's FOCUS reports are in the same bucket under `FOCUS Reports/` (Billing & Cost Management → Cost and Usage Reports)",
        ))
    } else if any_prefix("lineItem/") || any_prefix("line_item_") {
        Some((
            "AWS Cost and Usage Report (CUR)",
            "in the AWS Billing console, Data Exports → Create → \"FOCUS 1.0 with AWS columns\" (or 1.2), CSV, and point `[sources] billing` at it",
        ))
    } else if any(&[
        "CostInBillingCurrency",
        "MeterCategory",
        "costInBillingCurrency",
        "meterCategory",
    ]) {
        Some((
            "Azure cost details (EA / MCA usage details)",
            "in Cost Management → Exports, create an export of type \"Cost and usage (FOCUS)\", CSV or Parquet",
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(names: &[&str]) -> Option<RequestFormat> {
        request_rules(&names.iter().map(ToString::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn usage_reports_are_told_from_cost_reports() {
        let openai = r#"{"object": "page", "data": [{"start_time": 1, "end_time": 2, "results": [{"object": "organization.usage.completions.result", "input_tokens": 1}]}]}"#;
        assert_eq!(json_bill_format(openai), Some(BillingFormat::OpenaiUsage));
        let costs = r#"{"object": "page", "data": [{"start_time": 1, "end_time": 2, "results": [{"object": "organization.costs.result"}]}]}"#;
        assert_eq!(json_bill_format(costs), Some(BillingFormat::OpenaiCosts));
        let usage = r#"{"data": [{"starting_at": "x", "results": [{"uncached_input_tokens": 1, "output_tokens": 2}]}]}"#;
        assert_eq!(
            json_bill_format(usage),
            Some(BillingFormat::AnthropicUsageReport)
        );
        let cost =
            r#"{"data": [{"starting_at": "x", "results": [{"amount": "1", "currency": "USD"}]}]}"#;
        assert_eq!(
            json_bill_format(cost),
            Some(BillingFormat::AnthropicCostReport)
        );
    }

    #[test]
    fn every_billing_format_is_registered_once() {
        for format in [
            BillingFormat::Focus,
            BillingFormat::OpenaiCosts,
            BillingFormat::OpenaiCostCsv,
            BillingFormat::AnthropicCostReport,
            BillingFormat::AnthropicCostCsv,
            BillingFormat::OpenaiUsage,
            BillingFormat::AnthropicUsageReport,
        ] {
            let n = BILL_FORMATS.iter().filter(|f| f.format == format).count();
            assert_eq!(n, 1, "{format:?}");
        }
    }

    #[test]
    fn request_logs_are_told_apart() {
        assert_eq!(
            rules(&["request_id", "timestamp", "model"]),
            Some(RequestFormat::Canonical)
        );
        assert_eq!(
            rules(&["request_id", "startTime", "prompt_tokens"]),
            Some(RequestFormat::Litellm)
        );
        // A SpendLogs JSON export whose metadata holds a `timestamp` key.
        assert_eq!(
            rules(&["request_id", "startTime", "metadata", "timestamp"]),
            Some(RequestFormat::Litellm)
        );
        assert_eq!(
            rules(&["resourceSpans", "scopeSpans", "spans"]),
            Some(RequestFormat::Otel)
        );
        assert_eq!(rules(&["span_id", "attributes"]), Some(RequestFormat::Otel));
        assert_eq!(
            rules(&["span_id", "gen_ai.usage.input_tokens"]),
            Some(RequestFormat::Otel)
        );
        assert_eq!(rules(&["id", "cost"]), None);
    }

    #[test]
    fn spans_that_defeat_schema_inference_are_peeked_at() {
        let ctx = Context::new(crate::load::store::Store::new());
        ctx.store.put_memory(
            "spans.jsonl",
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"5"}}]}]}]}]}
{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":5}}]}]}]}]}
"#
            .to_vec(),
        );
        assert_eq!(
            request_format(&ctx, "memory://spans.jsonl", None).unwrap(),
            RequestFormat::Otel
        );
    }
}
