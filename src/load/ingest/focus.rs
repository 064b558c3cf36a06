//! FOCUS 1.x billing exports (CSV or Parquet) into canonical billed lines.
//!
//! Money is parsed from the export's own text with `rust_decimal`; a cost
//! column stored as a float is refused rather than trusted. Model and token
//! class come from our `x_Model` / `x_UsageType` extension columns, else
//! from the provider's meter text: the CUR usage type AWS writes in
//! `x_UsageType` (FOCUS 1.0) or `SkuMeter` (1.2), Microsoft's
//! `x_SkuMeterName`, Google's SKU description in `ChargeDescription`.
//! Token counts come in whatever unit the provider bills (tokens, `1K`,
//! `1M`, Microsoft's pricing blocks) and are normalised exactly.

use polars::prelude::*;

use super::bill::{
    BillFormat, BillRow, ReadBill, RowError, bill_fields, bill_rows, in_invoice_currency,
};
use super::detect::{Over, Rule};
use super::provider::LLM_PROVIDERS;
pub use super::provider::provider_of;
use super::{
    Bill, BilledLine, ChargeCategory, first_line, is_null_text, missing_columns, scan, time,
};
use crate::catalog::{Catalog, UsageType};
use crate::config::{BillingFormat, BillingSpec};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::fx::FxTable;
use crate::money::{Decimal, parse_amount};
use crate::period::Period;
use crate::schema::focus::*;

/// A FOCUS export is told by its `BilledCost` column.
pub(super) const FORMAT: BillFormat = BillFormat {
    format: BillingFormat::Focus,
    rules: &[Rule {
        over: Over::Names,
        rank: 10,
        test: |s| s.has(&[BILLED_COST]),
    }],
    read: ReadBill::Object(load_focus),
};

pub fn load_focus(
    ctx: &Context,
    url: &str,
    spec: &BillingSpec,
    catalog: &Catalog,
    period: Period,
    fx: &FxTable,
) -> Result<Bill> {
    let mut lf = scan(ctx, url, spec.file_format)?;
    let schema = lf
        .collect_schema()
        .map_err(|e| Error::input(Location::file(url), first_line(&e.to_string()).to_string()))?;
    if let Some(e) = missing_columns(url, "a FOCUS export", &schema, &REQUIRED) {
        return Err(e.with_hint(format!(
            "a FOCUS 1.x export has {}",
            REQUIRED.map(|c| format!("`{c}`")).join(", ")
        )));
    }
    if let Some(dt) = schema.get(BILLED_COST)
        && dt.is_float()
    {
        return Err(Error::input(
            Location::cell(url, 1, BILLED_COST),
            format!("`{BILLED_COST}` is stored as {dt}, which cannot hold money exactly"),
        )
        .with_hint("export costs as decimal or text columns"));
    }
    let mut wanted = vec![
        BILLED_COST,
        BILLING_CURRENCY,
        CHARGE_PERIOD_START,
        CHARGE_CATEGORY,
        CHARGE_CLASS,
        CHARGE_DESCRIPTION,
        PROVIDER_NAME,
        PUBLISHER_NAME,
        SERVICE_NAME,
        SERVICE_CATEGORY,
        CONSUMED_QUANTITY,
        CONSUMED_UNIT,
        PRICING_QUANTITY,
        PRICING_UNIT,
        X_MODEL,
        X_USAGE_TYPE,
        TAGS,
        SKU_METER,
        X_SKU_METER_NAME,
        X_SKU_DESCRIPTION,
        X_SKU_METER_CATEGORY,
        X_SKU_METER_SUBCATEGORY,
        X_PRICING_BLOCK_SIZE,
        X_PRICING_UNIT_DESCRIPTION,
        BILLING_PERIOD_START,
    ];
    if !wanted.contains(&spec.scope_column.as_str()) {
        wanted.push(spec.scope_column.as_str());
    }
    let exprs: Vec<Expr> = wanted
        .iter()
        .map(|&c| {
            // Typed times (a Parquet export's `ChargePeriodStart`) as RFC
            // 3339 UTC text, which every row check reads.
            let utc_text = |e: Expr| e.dt().to_string("%Y-%m-%dT%H:%M:%S%.fZ").alias(c);
            match schema.get(c) {
                Some(DataType::Datetime(_, Some(_))) => {
                    utc_text(col(c).dt().convert_time_zone(TimeZone::UTC))
                }
                Some(DataType::Datetime(_, None)) => utc_text(col(c)),
                Some(_) => col(c).cast(DataType::String).alias(c),
                None => lit(NULL).cast(DataType::String).alias(c),
            }
        })
        .collect();
    let df = lf.select(exprs).collect().map_err(|e| {
        Error::input(
            Location::file(url),
            format!(
                "cannot read the FOCUS export: {}",
                first_line(&e.to_string())
            ),
        )
    })?;
    let get = |c: &str| {
        df.column(c)
            .and_then(|c| c.str().cloned())
            .expect("selected as text")
    };
    let cols: Vec<StringChunked> = wanted.iter().map(|c| get(c)).collect();
    let cell = |i: usize, c: &str| -> Option<&str> {
        let k = wanted.iter().position(|w| *w == c).expect("wanted column");
        cols[k].get(i).map(str::trim).filter(|s| !is_null_text(s))
    };
    bill_rows(
        url,
        (0..df.height()).map(|i| ((i + 1) as u64, i)),
        |&i| {
            let v = |c: &str| cell(i, c);
            // A row of another month is counted, not read further: its values
            // are that month's business. A correction of an earlier month is
            // invoiced in the billing period it appears in, not the one it
            // corrects.
            let correction = v(CHARGE_CLASS).is_some_and(|c| c.eq_ignore_ascii_case("correction"));
            let invoiced = match v(BILLING_PERIOD_START).and_then(charge_day) {
                Some(billing) if correction => Some(billing),
                _ => v(CHARGE_PERIOD_START).and_then(charge_day),
            };
            if let Some(day) = invoiced.filter(|d| !period.contains(*d)) {
                return Ok(Some(BillRow::Outside(day)));
            }
            let line = read_row(&v, spec, catalog, fx)?;
            if !is_llm_service(&v, &line, spec, catalog) {
                return Ok(Some(BillRow::OtherService(line.cost)));
            }
            Ok(Some(BillRow::Line(line)))
        },
        |&i| {
            bill_fields(
                cell(i, BILLED_COST),
                wanted
                    .iter()
                    .filter(|c| schema.contains(c))
                    .map(|&c| (c, cell(i, c))),
            )
        },
    )
}

/// Whether a FOCUS row is LLM spend: the policy's `exclude_services` never
/// are, its `include_services` always are; else an AI service
/// (`ServiceCategory`), a provider the catalog prices (Bedrock, Azure
/// OpenAI, Vertex AI, OpenAI, …), or a model the catalog knows.
fn is_llm_service<'a>(
    v: &dyn Fn(&str) -> Option<&'a str>,
    line: &BilledLine,
    spec: &BillingSpec,
    catalog: &Catalog,
) -> bool {
    let service = v(SERVICE_NAME).unwrap_or("");
    let listed = |list: &[String]| list.iter().any(|s| s.trim().eq_ignore_ascii_case(service));
    if listed(&spec.exclude_services) {
        return false;
    }
    listed(&spec.include_services)
        || v(SERVICE_CATEGORY).is_some_and(|c| c.eq_ignore_ascii_case(AI_SERVICE_CATEGORY))
        || LLM_PROVIDERS.contains(&line.provider.as_str())
        || catalog.has_provider(&line.provider)
        || line.model.is_some()
}

fn read_row<'a>(
    v: &dyn Fn(&str) -> Option<&'a str>,
    spec: &BillingSpec,
    catalog: &Catalog,
    fx: &FxTable,
) -> std::result::Result<BilledLine, RowError> {
    let cost_text = v(BILLED_COST).ok_or_else(|| RowError::missing(BILLED_COST))?;
    let cost = parse_amount(cost_text)
        .map_err(|e| RowError::new(BILLED_COST, format!("`{BILLED_COST}`: {e}")))?;
    let cur = v(BILLING_CURRENCY).ok_or_else(|| RowError::missing(BILLING_CURRENCY))?;
    let start = v(CHARGE_PERIOD_START).ok_or_else(|| RowError::missing(CHARGE_PERIOD_START))?;
    let day = charge_day(start).ok_or_else(|| {
        RowError::new(
            CHARGE_PERIOD_START,
            format!("`{CHARGE_PERIOD_START}` is not an ISO 8601 time: `{start}`"),
        )
    })?;
    // At the rate of the charge day, which a correction shares with the
    // period it corrects.
    let (cost, converted) = in_invoice_currency(fx, BILLING_CURRENCY, cur, day, cost)?;
    let cat_text = v(CHARGE_CATEGORY).ok_or_else(|| RowError::missing(CHARGE_CATEGORY))?;
    let category = ChargeCategory::parse(cat_text).ok_or_else(|| {
        RowError::new(
            CHARGE_CATEGORY,
            format!(
                "`{CHARGE_CATEGORY}` is `{cat_text}`, expected Usage, Credit, Tax, Adjustment or Purchase"
            ),
        )
    })?;
    let correction = v(CHARGE_CLASS).is_some_and(|c| c.eq_ignore_ascii_case("correction"));
    let product = [X_SKU_METER_CATEGORY, X_SKU_METER_SUBCATEGORY]
        .iter()
        .filter_map(|c| v(c))
        .collect::<Vec<_>>()
        .join(" ");
    let provider = provider_of(
        v(PROVIDER_NAME).unwrap_or(""),
        v(SERVICE_NAME).unwrap_or(""),
        v(PUBLISHER_NAME).unwrap_or(""),
        &product,
    );
    // Our `x_Model` / `x_UsageType` extension first; else the provider's
    // meter or SKU text (Bedrock usage types, Azure meters, Vertex SKUs):
    // the first that names a token class, else one that names a model.
    let ours = v(X_USAGE_TYPE).and_then(UsageType::parse);
    let meters: Vec<Meter> = METER_COLUMNS
        .iter()
        .filter_map(|c| v(c))
        .filter_map(parse_meter)
        .collect();
    let meter = meters
        .iter()
        .find(|m| m.usage_type.is_some())
        .or_else(|| meters.iter().find(|m| m.model.is_some()))
        .cloned();
    let model_raw = v(X_MODEL)
        .map(str::to_string)
        .or_else(|| meter.as_ref().and_then(|m| m.model.clone()));
    let model = model_raw
        .as_deref()
        .and_then(|m| catalog.resolve(&provider, m))
        .map(|e| e.model.clone());
    let usage_type = match (ours, v(X_USAGE_TYPE)) {
        (Some(u), _) => Some(u),
        (None, Some(t)) if t.eq_ignore_ascii_case("other") => None,
        _ => match &meter {
            Some(m) => m.usage_type,
            None => match v(X_USAGE_TYPE) {
                // AWS writes its own usage type here (`USE1-Guardrail-…`):
                // a charge that is not per token, not a typo of ours.
                Some(t) if category == ChargeCategory::Usage && !is_provider_usage_type(t) => {
                    return Err(RowError::new(
                        X_USAGE_TYPE,
                        format!(
                            "`{X_USAGE_TYPE}` is `{t}`: neither a token class (input, cached_input, cache_write, output, other) nor a usage type we can read"
                        ),
                    ));
                }
                _ => None,
            },
        },
    };
    let scope = spec
        .scope_tag
        .as_deref()
        .and_then(|key| v(TAGS).and_then(|tags| tag_value(tags, key)))
        .or_else(|| v(&spec.scope_column).map(str::to_string))
        .unwrap_or_default();
    let quantity = token_quantity(v, usage_type.is_some())?;
    Ok(BilledLine {
        provider,
        scope,
        day,
        model,
        model_raw,
        usage_type,
        quantity,
        cost,
        currency: fx.currency().to_string(),
        fx: converted.map(Box::new),
        category,
        correction,
        description: v(CHARGE_DESCRIPTION).map(str::to_string),
        source: String::new(),
        row: 0,
    })
}

/// Tokens on the line: `ConsumedQuantity` when its unit is tokens, else
/// `PricingQuantity` times the tokens in one pricing unit. On a token meter
/// a unit that only counts (`Units`, `count`, `1K`, `1M`) counts tokens, and
/// Microsoft's `PricingQuantity` counts blocks of `x_PricingBlockSize`
/// (or `x_PricingUnitDescription`) units. Exact decimal products only.
fn token_quantity<'a>(
    v: &dyn Fn(&str) -> Option<&'a str>,
    token_line: bool,
) -> std::result::Result<Option<Decimal>, RowError> {
    let parse = |c: &'static str, t: &str| {
        parse_amount(t).map_err(|e| RowError::new(c, format!("`{c}`: {e}")))
    };
    if let Some(q) = v(CONSUMED_QUANTITY) {
        let unit = v(CONSUMED_UNIT).unwrap_or("tokens");
        let per = tokens_per_unit(unit).or_else(|| token_line.then(|| count_unit(unit)).flatten());
        if let Some(per) = per {
            return Ok(Some(parse(CONSUMED_QUANTITY, q)? * per));
        }
    }
    let Some(q) = v(PRICING_QUANTITY) else {
        return Ok(None);
    };
    let block = v(X_PRICING_BLOCK_SIZE)
        .and_then(|b| parse_amount(b).ok())
        .filter(|b| *b > Decimal::ZERO);
    let per = match v(PRICING_UNIT).and_then(tokens_per_unit) {
        // `Tokens` priced in blocks: the block is the unit.
        Some(per) if per == Decimal::ONE => Some(block.unwrap_or(per)),
        Some(per) => Some(per),
        None if token_line => block
            .or_else(|| v(X_PRICING_UNIT_DESCRIPTION).and_then(count_unit))
            .or_else(|| v(PRICING_UNIT).and_then(count_unit)),
        None => None,
    };
    match per {
        Some(per) => Ok(Some(parse(PRICING_QUANTITY, q)? * per)),
        None => Ok(None),
    }
}

/// Tokens in one unit such as `Tokens`, `1K Tokens`, `1000000 Tokens`,
/// `1M tokens`; `None` when the unit is not tokens.
pub fn tokens_per_unit(unit: &str) -> Option<Decimal> {
    let u = unit.trim().to_ascii_lowercase();
    let rest = u
        .strip_suffix("tokens")
        .or_else(|| u.strip_suffix("token"))?
        .trim();
    if rest.is_empty() {
        return Some(Decimal::ONE);
    }
    let (num, mult) = match rest.chars().last() {
        Some('k') => (&rest[..rest.len() - 1], 1_000u64),
        Some('m') => (&rest[..rest.len() - 1], 1_000_000u64),
        _ => (rest, 1),
    };
    let n = parse_amount(num.trim()).ok()?;
    Some(n * Decimal::from(mult))
}

/// Units counted by a unit that names no thing but a count: `Units`,
/// `count`, `1K`, `1M`, `1000000 count`; `None` for `GB`, `h`, ….
fn count_unit(unit: &str) -> Option<Decimal> {
    let u = unit.trim().to_ascii_lowercase();
    let counted = ["tokens", "token", "units", "unit", "count"]
        .iter()
        .find_map(|w| u.strip_suffix(w));
    match counted.map(str::trim) {
        Some("") => Some(Decimal::ONE),
        Some(rest) => bare_unit(rest),
        None => bare_unit(&u),
    }
}

/// `1K`, `1M`, `1000`, `1 M` as a count of units; `None` otherwise.
fn bare_unit(unit: &str) -> Option<Decimal> {
    let u = unit.trim().to_ascii_lowercase().replace(' ', "");
    let (num, mult) = match u.chars().last()? {
        'k' => (&u[..u.len() - 1], 1_000u64),
        'm' => (&u[..u.len() - 1], 1_000_000u64),
        _ => (u.as_str(), 1),
    };
    let n = if num.is_empty() {
        Decimal::ONE
    } else {
        parse_amount(num).ok()?
    };
    Some(n * Decimal::from(mult))
}

/// What a provider's meter or SKU text says: the model it is for and the
/// token class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub model: Option<String>,
    pub usage_type: Option<UsageType>,
}

/// Reads a meter text:
/// * Bedrock usage types: `USE1-Claude3.5Sonnet-input-tokens`,
///   `…-output-tokens`, `…-cache-read-input-token-count`,
///   `…-cache-write-input-token-count`, `…-mantle-input-tokens-…`;
///   Marketplace `USE1-MP:USE1_InputTokenCount-Units` (no model);
/// * Azure meters: `gpt-4o 1120 Inp glbl Tokens`,
///   `gpt 4o 1120 cached Inp glbl Tokens`, `GPT 5 outpt Glbl 1M Tokens`;
/// * Vertex SKUs: `Gemini 2.5 Flash Text Input - Predictions`,
///   `Gemini 2.5 Flash Thinking Text Output - Predictions`.
pub fn parse_meter(text: &str) -> Option<Meter> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    // Bedrock: region prefix, model, token suffix.
    const BEDROCK: [(&str, UsageType); 6] = [
        ("-cache-read-input-token-count", UsageType::CachedInput),
        ("-cache-write-input-token-count", UsageType::CacheWrite),
        ("-mantle-input-tokens", UsageType::Input),
        ("-mantle-output-tokens", UsageType::Output),
        ("-input-tokens", UsageType::Input),
        ("-output-tokens", UsageType::Output),
    ];
    for (suffix, ut) in BEDROCK {
        if let Some(at) = lower.find(suffix) {
            let head = &t[..at];
            let model = head.split_once('-').map(|(_, m)| m).unwrap_or(head);
            return Some(Meter {
                model: (!model.is_empty()).then(|| model.to_string()),
                usage_type: Some(ut),
            });
        }
    }
    if lower.contains("mp:") || lower.contains("tokencount") {
        let ut = if lower.contains("cachewrite") {
            Some(UsageType::CacheWrite)
        } else if lower.contains("cacheread") {
            Some(UsageType::CachedInput)
        } else if lower.contains("inputtoken") || lower.contains("input_tokens") {
            Some(UsageType::Input)
        } else if lower.contains("outputtoken") || lower.contains("output_tokens") {
            Some(UsageType::Output)
        } else {
            None
        };
        return ut.map(|u| Meter {
            model: None,
            usage_type: Some(u),
        });
    }
    // Azure meters and Vertex SKUs: "<model words> [version code] <class
    // word> …", the class word `Input`/`Inp`/`Inpt`, `Output`/`Outp`/`outpt`,
    // `cached`/`cchd` or `Caching`; Vertex adds " - <operation>".
    let left = t.split_once(" - ").map_or(t, |(l, _)| l);
    let words: Vec<&str> = left.split_whitespace().collect();
    let is_class = |w: &str| {
        let w = w.to_ascii_lowercase();
        w.starts_with("inp")
            || w.starts_with("outp")
            || matches!(w.as_str(), "output" | "cached" | "cchd" | "caching")
    };
    let k = words.iter().position(|w| is_class(w))?;
    let has = |x: &str| words.iter().any(|w| w.eq_ignore_ascii_case(x));
    let usage_type = if has("storage") {
        // Context-cache storage is billed per hour, not per token.
        None
    } else if has("cached") || has("cchd") || has("caching") {
        Some(UsageType::CachedInput)
    } else if words[k..]
        .iter()
        .any(|w| w.to_ascii_lowercase().starts_with("out"))
    {
        Some(UsageType::Output)
    } else {
        Some(UsageType::Input)
    };
    // Not part of the model's name: modality, launch stage, routing, and a
    // 4-digit model version code (`1120`, `0416`).
    const NOT_MODEL: [&str; 8] = [
        "ga", "text", "image", "audio", "video", "thinking", "preview", "global",
    ];
    let model: Vec<&str> = words[..k]
        .iter()
        .copied()
        .filter(|w| {
            let version_code = w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit());
            !(version_code || NOT_MODEL.contains(&w.to_ascii_lowercase().as_str()))
        })
        .collect();
    // A price sentence (`$0.003 per 1000 input tokens for …`) names no model.
    let sentence = model.iter().any(|w| w.starts_with('$') || *w == "per");
    Some(Meter {
        model: (!model.is_empty() && !sentence).then(|| model.join(" ")),
        usage_type,
    })
}

/// An AWS usage type (`USE1-Guardrail-ContentPolicyUnits`,
/// `BoxUsage:t3.micro`, `DataTransfer-Out-Bytes`) rather than a token-class
/// word of our `x_UsageType` extension.
fn is_provider_usage_type(text: &str) -> bool {
    let t = text.trim();
    t.contains(':') || (t.contains('-') && t.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// The UTC day of a FOCUS date-time; also Microsoft's FOCUS 1.0 (r1)
/// form without seconds, `2024-01-01T00:00Z`.
fn charge_day(text: &str) -> Option<chrono::NaiveDate> {
    let t = text.trim();
    time::utc_day(t).or_else(|| {
        let b = t.as_bytes();
        let minutes_only = b.len() >= 16
            && b[13] == b':'
            && b.get(16)
                .is_none_or(|c| matches!(c, b'Z' | b'z' | b'+' | b'-'));
        minutes_only
            .then(|| time::utc_day(&format!("{}:00{}", &t[..16], &t[16..])))
            .flatten()
    })
}

/// A key of a FOCUS `Tags` value: a JSON object, or the same without its
/// outer braces as older Azure exports write it (`"env": "prod","team": "x"`).
pub fn tag_value(tags: &str, key: &str) -> Option<String> {
    let t = tags.trim();
    let text = if t.starts_with('{') {
        t.to_string()
    } else {
        format!("{{{t}}}")
    };
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    match v.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_units_normalise_exactly() {
        assert_eq!(tokens_per_unit("Tokens"), Some(Decimal::ONE));
        assert_eq!(tokens_per_unit("1K Tokens"), Some(Decimal::from(1000)));
        assert_eq!(
            tokens_per_unit("1000000 Tokens"),
            Some(Decimal::from(1_000_000))
        );
        assert_eq!(tokens_per_unit("1M tokens"), Some(Decimal::from(1_000_000)));
        assert_eq!(tokens_per_unit("GB-Hours"), None);
    }

    fn meter(text: &str) -> (Option<String>, Option<UsageType>) {
        let m = parse_meter(text).unwrap_or_else(|| panic!("no meter in {text}"));
        (m.model, m.usage_type)
    }

    #[test]
    fn bedrock_usage_types() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            meter("USE1-Claude3.5Sonnet-input-tokens"),
            (some("Claude3.5Sonnet"), Some(UsageType::Input))
        );
        assert_eq!(
            meter("USE1-Claude3.5Sonnet-output-tokens"),
            (some("Claude3.5Sonnet"), Some(UsageType::Output))
        );
        assert_eq!(
            meter("USW2-Claude3.5Haiku-cache-read-input-token-count"),
            (some("Claude3.5Haiku"), Some(UsageType::CachedInput))
        );
        assert_eq!(
            meter("USE1-Claude3.5Sonnet-cache-write-input-token-count"),
            (some("Claude3.5Sonnet"), Some(UsageType::CacheWrite))
        );
        assert_eq!(
            meter("USE1-MP:USE1_InputTokenCount-Units"),
            (None, Some(UsageType::Input))
        );
        assert_eq!(
            meter("USE2_CacheWriteInputTokenCount"),
            (None, Some(UsageType::CacheWrite))
        );
    }

    #[test]
    fn azure_meters() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            meter("gpt-4o 1120 Inp glbl Tokens"),
            (some("gpt-4o"), Some(UsageType::Input))
        );
        assert_eq!(
            meter("gpt-4o 1120 Outp glbl Tokens"),
            (some("gpt-4o"), Some(UsageType::Output))
        );
        assert_eq!(
            meter("gpt 4o 1120 cached Inp glbl Tokens"),
            (some("gpt 4o"), Some(UsageType::CachedInput))
        );
        assert_eq!(
            meter("GPT 5 outpt Glbl 1M Tokens"),
            (some("GPT 5"), Some(UsageType::Output))
        );
        assert_eq!(
            meter("o4-mini 0416 Inp glbl Tokens"),
            (some("o4-mini"), Some(UsageType::Input))
        );
    }

    #[test]
    fn vertex_skus() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            meter("Gemini 2.5 Flash Text Input - Predictions"),
            (some("Gemini 2.5 Flash"), Some(UsageType::Input))
        );
        assert_eq!(
            meter("Gemini 2.5 Flash GA Text Input - Predictions"),
            (some("Gemini 2.5 Flash"), Some(UsageType::Input))
        );
        assert_eq!(
            meter("Gemini 2.5 Flash Thinking Text Output - Predictions"),
            (some("Gemini 2.5 Flash"), Some(UsageType::Output))
        );
        assert_eq!(
            meter("Gemini 2.5 Flash GA Input Text Caching"),
            (some("Gemini 2.5 Flash"), Some(UsageType::CachedInput))
        );
        assert_eq!(
            meter("Gemini 3.7 Flash Global Text Input - Predictions"),
            (some("Gemini 3.7 Flash"), Some(UsageType::Input))
        );
        assert_eq!(
            meter("Gemini 2.5 Pro Text Output"),
            (some("Gemini 2.5 Pro"), Some(UsageType::Output))
        );
        // Cache storage is per hour: the model, no token class.
        assert_eq!(
            meter("Gemini 2.5 Flash Input Text Caching Storage"),
            (some("Gemini 2.5 Flash"), None)
        );
        assert!(parse_meter("Sales tax").is_none());
        assert!(parse_meter("Tax for product code AmazonBedrock").is_none());
        // A CUR price sentence names a class but no model.
        assert_eq!(
            meter("$0.003 per 1000 input tokens for Claude 3.5 Sonnet"),
            (None, Some(UsageType::Input))
        );
    }

    #[test]
    fn azure_units_of_1k_and_1m_tokens() {
        assert_eq!(bare_unit("1K"), Some(Decimal::from(1000)));
        assert_eq!(bare_unit("1M"), Some(Decimal::from(1_000_000)));
        assert_eq!(bare_unit("1000"), Some(Decimal::from(1000)));
        assert_eq!(bare_unit("GB"), None);
    }

    /// A row of named columns, for `token_quantity`.
    fn row<'a>(cells: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |c: &str| cells.iter().find(|(k, _)| *k == c).map(|(_, v)| *v)
    }

    fn tokens(cells: &[(&str, &str)], token_line: bool) -> Option<Decimal> {
        token_quantity(&row(cells), token_line).unwrap()
    }

    #[test]
    fn token_quantities_in_every_unit_are_exact() {
        let d = |s: &str| Some(s.parse::<Decimal>().unwrap());
        // AWS: usage in thousands of tokens.
        let aws = [
            ("ConsumedQuantity", "1234.567"),
            ("ConsumedUnit", "1K tokens"),
        ];
        assert_eq!(tokens(&aws, true), d("1234567"));
        // Microsoft: consumed units are tokens; pricing counts 1K or 1M blocks.
        let k = [
            ("ConsumedQuantity", "1200000"),
            ("ConsumedUnit", "Units"),
            ("PricingQuantity", "1200"),
            ("PricingUnit", "Units"),
            ("x_PricingBlockSize", "1000"),
            ("x_PricingUnitDescription", "1K"),
        ];
        assert_eq!(tokens(&k, true), d("1200000"));
        assert_eq!(tokens(&k[2..], true), d("1200000"), "blocks of 1000");
        assert_eq!(tokens(&[k[2], k[3], k[5]], true), d("1200000"), "1K");
        let m = [
            ("PricingQuantity", "0.3"),
            ("PricingUnit", "Units"),
            ("x_PricingUnitDescription", "1M"),
        ];
        assert_eq!(tokens(&m, true), d("300000"));
        assert_eq!(
            tokens(&[m[0], ("x_PricingBlockSize", "1000000")], true),
            d("300000")
        );
        // Google: token SKUs count in `count`.
        assert_eq!(
            tokens(
                &[("ConsumedQuantity", "20000000"), ("ConsumedUnit", "count")],
                true
            ),
            d("20000000")
        );
        // FOCUS units that say tokens, with or without a block.
        assert_eq!(
            tokens(
                &[
                    ("PricingQuantity", "0.00001"),
                    ("PricingUnit", "1000000 Tokens")
                ],
                false
            ),
            d("10")
        );
        assert_eq!(
            tokens(
                &[
                    ("PricingQuantity", "2.5"),
                    ("PricingUnit", "Tokens"),
                    ("x_PricingBlockSize", "1000")
                ],
                false
            ),
            d("2500")
        );
        // A count unit says nothing on a line that is not a token meter.
        assert_eq!(tokens(&k[..2], false), None);
        assert_eq!(
            tokens(&[("ConsumedQuantity", "10"), ("ConsumedUnit", "h")], true),
            None
        );
    }

    #[test]
    fn count_units() {
        assert_eq!(count_unit("Units"), Some(Decimal::ONE));
        assert_eq!(count_unit("count"), Some(Decimal::ONE));
        assert_eq!(count_unit("1K"), Some(Decimal::from(1000)));
        assert_eq!(count_unit("1M"), Some(Decimal::from(1_000_000)));
        assert_eq!(count_unit("1000000 count"), Some(Decimal::from(1_000_000)));
        assert_eq!(count_unit("GB"), None);
        assert_eq!(count_unit("h"), None);
    }

    #[test]
    fn aws_usage_types_are_not_our_token_words() {
        assert!(is_provider_usage_type("USE1-Guardrail-ContentPolicyUnits"));
        assert!(is_provider_usage_type("BoxUsage:t3.micro"));
        assert!(!is_provider_usage_type("outptu"));
        assert!(!is_provider_usage_type("cache-reed"));
    }

    #[test]
    fn charge_days_with_and_without_seconds() {
        let day = |s: &str| charge_day(s).map(|d| d.to_string());
        assert_eq!(day("2025-09-02T00:00:00Z").as_deref(), Some("2025-09-02"));
        assert_eq!(day("2025-09-02T00:00Z").as_deref(), Some("2025-09-02"));
        assert_eq!(day("2025-09-02T23:30-02:00").as_deref(), Some("2025-09-03"));
        assert_eq!(day("2025-09-02T0Z"), None);
    }

    #[test]
    fn tags_with_and_without_braces() {
        assert_eq!(
            tag_value(r#"{"team":"web","env":"prod"}"#, "team").as_deref(),
            Some("web")
        );
        assert_eq!(
            tag_value(r#""env": "prod","team": "ops""#, "team").as_deref(),
            Some("ops")
        );
        assert_eq!(tag_value(r#"{"team":"web"}"#, "missing"), None);
        assert_eq!(tag_value("not json", "team"), None);
    }

    #[test]
    fn providers_map_to_our_ids() {
        assert_eq!(provider_of("OpenAI", "OpenAI API", "OpenAI", ""), "openai");
        assert_eq!(
            provider_of("Anthropic", "Claude API", "Anthropic", ""),
            "anthropic"
        );
        assert_eq!(
            provider_of("AWS", "Amazon Bedrock", "Anthropic", ""),
            "aws-bedrock"
        );
        assert_eq!(
            provider_of("Microsoft", "Azure OpenAI Service", "Microsoft", ""),
            "azure-openai"
        );
        // Microsoft's own FOCUS export: the service is "Azure AI Services";
        // the meter subcategory says Azure OpenAI.
        assert_eq!(
            provider_of(
                "Microsoft",
                "Azure AI Services",
                "Microsoft",
                "Cognitive Services Azure OpenAI"
            ),
            "azure-openai"
        );
        assert_eq!(
            provider_of("Google Cloud", "Vertex AI", "Google", ""),
            "vertex-ai"
        );
        assert_eq!(
            provider_of("Mistral AI", "La Plateforme", "Mistral AI", ""),
            "mistral-ai"
        );
    }
}
