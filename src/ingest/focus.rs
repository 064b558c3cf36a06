//! FOCUS 1.x billing exports (CSV or Parquet) into canonical billed lines.
//!
//! Money is parsed from the export's own text with `rust_decimal`; a cost
//! column stored as a float is refused rather than trusted. Model and token
//! class come from our `x_Model` / `x_UsageType` extension columns.

use polars::prelude::*;

use super::{BilledLine, ChargeCategory, QuarantinedRow, column_list, first_line, scan, time};
use crate::catalog::{Catalog, UsageType};
use crate::config::BillingSpec;
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::money::{Decimal, parse_amount};
use crate::period::Period;
use crate::schema::focus::*;

#[derive(Debug, Clone, Default)]
pub struct Bill {
    pub lines: Vec<BilledLine>,
    pub quarantine: Vec<QuarantinedRow>,
    pub rows_read: u64,
    /// Rows whose charge period is another month.
    pub outside_period: u64,
}

pub fn load_focus(
    ctx: &Context,
    url: &str,
    spec: &BillingSpec,
    catalog: &Catalog,
    period: Period,
    currency: &str,
) -> Result<Bill> {
    let mut lf = scan(ctx, url, spec.file_format)?;
    let schema = lf
        .collect_schema()
        .map_err(|e| Error::input(Location::file(url), first_line(&e.to_string()).to_string()))?;
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|c| !schema.contains(c))
        .map(|c| format!("`{c}`"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::input(
            Location::file(url),
            format!(
                "not a FOCUS export: missing {}; found {}",
                missing.join(", "),
                column_list(&schema)
            ),
        )
        .with_hint(format!(
            "a FOCUS 1.x export has {}",
            REQUIRED.map(|c| format!("`{c}`")).join(", ")
        )));
    }
    if let Some(dt) = schema.get(BILLED_COST) {
        if dt.is_float() {
            return Err(Error::input(
                Location::cell(url, 1, BILLED_COST),
                format!("`{BILLED_COST}` is stored as {dt}, which cannot hold money exactly"),
            )
            .with_hint("export costs as decimal or text columns"));
        }
    }
    let wanted = [
        BILLED_COST,
        BILLING_CURRENCY,
        CHARGE_PERIOD_START,
        CHARGE_CATEGORY,
        CHARGE_CLASS,
        CHARGE_DESCRIPTION,
        PROVIDER_NAME,
        PUBLISHER_NAME,
        SERVICE_NAME,
        CONSUMED_QUANTITY,
        CONSUMED_UNIT,
        PRICING_QUANTITY,
        PRICING_UNIT,
        X_MODEL,
        X_USAGE_TYPE,
        spec.scope_column.as_str(),
    ];
    let exprs: Vec<Expr> = wanted
        .iter()
        .map(|&c| {
            if schema.contains(c) {
                col(c).cast(DataType::String).alias(c)
            } else {
                lit(NULL).cast(DataType::String).alias(c)
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
    let mut bill = Bill::default();
    for i in 0..df.height() {
        let row = (i + 1) as u64;
        let v = |c: &str| -> Option<&str> {
            let k = wanted.iter().position(|w| *w == c).expect("wanted column");
            cols[k].get(i).map(str::trim).filter(|s| !s.is_empty())
        };
        bill.rows_read += 1;
        match read_row(&v, spec, catalog, currency) {
            Ok(mut line) => {
                if !period.contains(line.day) {
                    bill.outside_period += 1;
                    continue;
                }
                line.source = url.to_string();
                line.row = row;
                bill.lines.push(line);
            }
            Err((column, reason)) => bill.quarantine.push(QuarantinedRow {
                source: url.to_string(),
                row,
                column: column.to_string(),
                reason,
            }),
        }
    }
    Ok(bill)
}

type RowError = (&'static str, String);

fn read_row<'a>(
    v: &dyn Fn(&str) -> Option<&'a str>,
    spec: &BillingSpec,
    catalog: &Catalog,
    currency: &str,
) -> std::result::Result<BilledLine, RowError> {
    let cost_text = v(BILLED_COST).ok_or((BILLED_COST, format!("missing `{BILLED_COST}`")))?;
    let cost =
        parse_amount(cost_text).map_err(|e| (BILLED_COST, format!("`{BILLED_COST}`: {e}")))?;
    let cur =
        v(BILLING_CURRENCY).ok_or((BILLING_CURRENCY, format!("missing `{BILLING_CURRENCY}`")))?;
    if !cur.eq_ignore_ascii_case(currency) {
        return Err((
            BILLING_CURRENCY,
            format!(
                "billed in `{cur}`, but invoices are in `{currency}`; no exchange rate is configured"
            ),
        ));
    }
    let start = v(CHARGE_PERIOD_START).ok_or((
        CHARGE_PERIOD_START,
        format!("missing `{CHARGE_PERIOD_START}`"),
    ))?;
    let day = time::utc_day(start).ok_or((
        CHARGE_PERIOD_START,
        format!("`{CHARGE_PERIOD_START}` is not an ISO 8601 time: `{start}`"),
    ))?;
    let cat_text =
        v(CHARGE_CATEGORY).ok_or((CHARGE_CATEGORY, format!("missing `{CHARGE_CATEGORY}`")))?;
    let category = ChargeCategory::parse(cat_text).ok_or((
        CHARGE_CATEGORY,
        format!(
            "`{CHARGE_CATEGORY}` is `{cat_text}`, expected Usage, Credit, Tax, Adjustment or Purchase"
        ),
    ))?;
    let correction = v(CHARGE_CLASS).is_some_and(|c| c.eq_ignore_ascii_case("correction"));
    let provider = provider_of(
        v(PROVIDER_NAME).unwrap_or(""),
        v(SERVICE_NAME).unwrap_or(""),
        v(PUBLISHER_NAME).unwrap_or(""),
    );
    let model_raw = v(X_MODEL).map(str::to_string);
    let model = model_raw
        .as_deref()
        .and_then(|m| catalog.resolve(&provider, m))
        .map(|e| e.model.clone());
    let usage_type = match v(X_USAGE_TYPE) {
        None => None,
        Some(t) => match UsageType::parse(t) {
            Some(u) => Some(u),
            None if t.eq_ignore_ascii_case("other") => None,
            None => {
                return Err((
                    X_USAGE_TYPE,
                    format!(
                        "`{X_USAGE_TYPE}` is `{t}`, expected input, cached_input, cache_write, output or other"
                    ),
                ));
            }
        },
    };
    let quantity = token_quantity(v)?;
    Ok(BilledLine {
        provider,
        scope: v(&spec.scope_column).unwrap_or("").to_string(),
        day,
        model,
        model_raw,
        usage_type,
        quantity,
        cost,
        currency: currency.to_string(),
        category,
        correction,
        description: v(CHARGE_DESCRIPTION).map(str::to_string),
        source: String::new(),
        row: 0,
    })
}

/// Tokens on the line: `ConsumedQuantity` when its unit is tokens, else
/// `PricingQuantity` times the tokens in one `PricingUnit` (`1M Tokens`).
fn token_quantity<'a>(
    v: &dyn Fn(&str) -> Option<&'a str>,
) -> std::result::Result<Option<Decimal>, RowError> {
    let parse = |c: &'static str, t: &str| parse_amount(t).map_err(|e| (c, format!("`{c}`: {e}")));
    if let Some(q) = v(CONSUMED_QUANTITY) {
        let unit = v(CONSUMED_UNIT).unwrap_or("tokens");
        if let Some(per) = tokens_per_unit(unit) {
            return Ok(Some(parse(CONSUMED_QUANTITY, q)? * per));
        }
    }
    if let (Some(q), Some(unit)) = (v(PRICING_QUANTITY), v(PRICING_UNIT)) {
        if let Some(per) = tokens_per_unit(unit) {
            return Ok(Some(parse(PRICING_QUANTITY, q)? * per));
        }
    }
    Ok(None)
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

/// Our provider id for a FOCUS row (DESIGN §3.1 ids).
pub fn provider_of(provider_name: &str, service: &str, publisher: &str) -> String {
    let p = provider_name.to_ascii_lowercase();
    let s = service.to_ascii_lowercase();
    let all = format!("{p} {s} {}", publisher.to_ascii_lowercase());
    if s.contains("bedrock") {
        "aws-bedrock".into()
    } else if (p.contains("microsoft") || p.contains("azure")) && all.contains("openai") {
        "azure-openai".into()
    } else if p.contains("google") && (s.contains("vertex") || s.contains("gemini")) {
        "vertex-ai".into()
    } else if p.contains("openai") {
        "openai".into()
    } else if p.contains("anthropic") {
        "anthropic".into()
    } else {
        p.split_whitespace().collect::<Vec<_>>().join("-")
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

    #[test]
    fn providers_map_to_our_ids() {
        assert_eq!(provider_of("OpenAI", "OpenAI API", "OpenAI"), "openai");
        assert_eq!(
            provider_of("Anthropic", "Claude API", "Anthropic"),
            "anthropic"
        );
        assert_eq!(
            provider_of("AWS", "Amazon Bedrock", "Anthropic"),
            "aws-bedrock"
        );
        assert_eq!(
            provider_of("Microsoft", "Azure OpenAI Service", "Microsoft"),
            "azure-openai"
        );
        assert_eq!(
            provider_of("Google Cloud", "Vertex AI", "Google"),
            "vertex-ai"
        );
        assert_eq!(
            provider_of("Mistral AI", "La Plateforme", "Mistral AI"),
            "mistral-ai"
        );
    }
}
