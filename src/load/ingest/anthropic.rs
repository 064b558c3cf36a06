//! Anthropic bills: `/v1/organizations/cost_report` JSON pages and the console
//! cost CSV, into canonical billed lines.
//!
//! The API states amounts as decimal strings in **cents** with fractional
//! cents (`"123.78912"` is $1.2378912): they are shifted two places, exactly,
//! never rounded per row. The console CSV states **dollars** (`cost_usd`)
//! and names models by display name (`Claude Sonnet 4.5`), resolved through
//! the catalog. `workspace_id` (API) or `workspace` (CSV) is the billing
//! scope; the default workspace (`null`, `Default`) is scope `""`.
//!
//! Costs that are not tokens (`web_search`, `code_execution`,
//! `session_usage`) stay `usage` lines without a token class: the requests
//! that caused them are the model's requests, so the reconciliation spreads
//! them over the matching usage by catalog cost, at the grain the line has.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::bill::{
    BillFormat, BillRow, ReadBill, RowError, bill_rows, in_invoice_currency, record_fields,
};
use super::csv_table::CsvTable;
use super::detect::{Over, Rule};
use super::pages::read_pages;
use super::{Bill, BilledLine, ChargeCategory, time};
use crate::catalog::{Catalog, UsageType};
use crate::config::BillingFormat;
use crate::error::Result;
use crate::fx::FxTable;
use crate::money::{Decimal, parse_amount};
use crate::period::Period;

/// Our provider id.
pub const PROVIDER: &str = "anthropic";

/// The `/v1/organizations/cost_report` response shape, for messages.
const REPORT_SHAPE: &str = "`{\"data\": [{\"starting_at\", \"ending_at\", \"results\": [{\"amount\", \
    \"currency\", \"workspace_id\", \"description\", \"cost_type\", \"model\", \"token_type\", …}]}], \
    \"has_more\", \"next_page\"}`";

/// The console cost CSV header as exported.
const CSV_HEADER: &str = "usage_date_utc,model,workspace,api_key,usage_type,context_window,\
    token_type,cost_usd,list_price_usd,cost_type,inference_geo,speed,api_key_id,api_key_status";
const CSV_REQUIRED: [&str; 2] = ["usage_date_utc", "cost_usd"];

#[derive(Debug, Deserialize)]
struct ReportPage {
    data: Vec<ReportBucket>,
}

#[derive(Debug, Deserialize)]
struct ReportBucket {
    /// RFC 3339, inclusive; daily buckets in UTC.
    starting_at: String,
    #[serde(default)]
    results: Vec<CostItem>,
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
struct CostItem {
    /// Cents as a decimal string; a bare number is read from its text too.
    amount: Option<Box<RawValue>>,
    currency: Option<String>,
    workspace_id: Option<String>,
    description: Option<String>,
    cost_type: Option<String>,
    model: Option<String>,
    token_type: Option<String>,
}

/// Cost report pages carry `amount` in their results; pages without any
/// result are told by their shape, unless their results count tokens
/// (a usage report). Saved as one JSON document, by the same keys.
pub(super) const COST_REPORT: BillFormat = BillFormat {
    format: BillingFormat::AnthropicCostReport,
    rules: &[
        Rule {
            over: Over::Pages,
            rank: 50,
            test: |s| {
                s.has(&["data", "starting_at", "results"])
                    && (s.has(&["amount"]) || !s.has(&["uncached_input_tokens"]))
            },
        },
        Rule {
            over: Over::Names,
            rank: 50,
            test: |s| s.has(&["starting_at", "results", "amount"]),
        },
    ],
    read: ReadBill::Text(report_from_text),
};

/// The console CSV is told by its day and dollar columns.
pub(super) const COST_CSV: BillFormat = BillFormat {
    format: BillingFormat::AnthropicCostCsv,
    rules: &[Rule {
        over: Over::Names,
        rank: 30,
        test: |s| s.has(&["cost_usd", "usage_date_utc"]),
    }],
    read: ReadBill::Text(cost_csv_from_text),
};

pub(super) fn report_from_text(
    url: &str,
    text: &str,
    catalog: &Catalog,
    period: Period,
    fx: &FxTable,
) -> Result<Bill> {
    let pages: Vec<ReportPage> =
        read_pages(url, text, "Anthropic cost report pages", REPORT_SHAPE)?;
    // Records are numbered across buckets and pages.
    let items = pages
        .iter()
        .flat_map(|p| &p.data)
        .flat_map(|bucket| {
            let day = time::utc_day(&bucket.starting_at);
            bucket.results.iter().map(move |item| (bucket, day, item))
        })
        .enumerate()
        .map(|(i, r)| ((i + 1) as u64, r));
    bill_rows(
        url,
        items,
        |&(bucket, day, item)| match day {
            None => Err(RowError::new(
                "starting_at",
                format!(
                    "`starting_at` is not an RFC 3339 time: `{}`",
                    bucket.starting_at
                ),
            )),
            Some(day) if !period.contains(day) => Ok(Some(BillRow::Outside(day))),
            Some(day) => read_item(item, day, catalog, fx).map(|l| Some(BillRow::Line(l))),
        },
        |&(_, _, item)| record_fields(item.amount.as_deref().map(RawValue::get), item),
    )
}

fn read_item(
    item: &CostItem,
    day: NaiveDate,
    catalog: &Catalog,
    fx: &FxTable,
) -> std::result::Result<BilledLine, RowError> {
    let raw = item
        .amount
        .as_deref()
        .map(|r| r.get().trim())
        .filter(|t| *t != "null")
        .ok_or_else(|| RowError::missing("amount"))?;
    let text = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).map_err(|e| RowError::new("amount", e.to_string()))?
    } else {
        raw.to_string()
    };
    let cents =
        parse_amount(&text).map_err(|e| RowError::new("amount", format!("`amount`: {e}")))?;
    let cost = cents_to_dollars(cents).ok_or_else(|| {
        RowError::new(
            "amount",
            format!("`amount` `{text}` has too many decimal places"),
        )
    })?;
    let cur = item
        .currency
        .as_deref()
        .ok_or_else(|| RowError::missing("currency"))?;
    let (cost, converted) = in_invoice_currency(fx, "currency", cur, day, cost)?;
    let tokens = item
        .cost_type
        .as_deref()
        .is_none_or(|c| c.eq_ignore_ascii_case("tokens") || c.eq_ignore_ascii_case("token"));
    // `Web Search Usage` names a tool, not a model: only token lines carry
    // a model in their description.
    let described = item
        .description
        .as_deref()
        .filter(|_| tokens)
        .and_then(split_description);
    let model_raw = item
        .model
        .clone()
        .or_else(|| described.as_ref().map(|d| d.0.clone()));
    let usage_type = match (tokens, item.token_type.as_deref()) {
        (false, _) => None,
        (true, Some(t)) => Some(report_usage_type(t).ok_or_else(|| {
            RowError::new(
                "token_type",
                format!(
                    "`token_type` is `{t}`, expected uncached_input_tokens, output_tokens, \
                     cache_read_input_tokens or cache_creation.ephemeral_5m_input_tokens / _1h_"
                ),
            )
        })?),
        (true, None) => described.and_then(|d| d.1),
    };
    let model = model_raw
        .as_deref()
        .and_then(|m| catalog.resolve(PROVIDER, m))
        .map(|e| e.model.clone());
    Ok(BilledLine {
        provider: PROVIDER.to_string(),
        scope: item.workspace_id.clone().unwrap_or_default(),
        day,
        model,
        model_raw,
        usage_type,
        quantity: None,
        cost,
        currency: fx.currency().to_string(),
        fx: converted.map(Box::new),
        category: ChargeCategory::Usage,
        correction: false,
        description: item.description.clone().or_else(|| item.cost_type.clone()),
        source: String::new(),
        row: 0,
    })
}

/// Cents to dollars by moving the decimal point: exact, never rounded.
pub fn cents_to_dollars(cents: Decimal) -> Option<Decimal> {
    let scale = cents.scale() + 2;
    (scale <= 28).then(|| Decimal::from_i128_with_scale(cents.mantissa(), scale))
}

/// A cost report `token_type`.
pub fn report_usage_type(text: &str) -> Option<UsageType> {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "uncached_input_tokens" => Some(UsageType::Input),
        "output_tokens" => Some(UsageType::Output),
        "cache_read_input_tokens" => Some(UsageType::CachedInput),
        _ if t.starts_with("cache_creation") => Some(UsageType::CacheWrite),
        _ => UsageType::parse(&t),
    }
}

/// A console CSV `token_type`.
pub fn console_usage_type(text: &str) -> Option<UsageType> {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "input_no_cache" => Some(UsageType::Input),
        "output" => Some(UsageType::Output),
        "input_cache_read" => Some(UsageType::CachedInput),
        _ if t.starts_with("input_cache_write") => Some(UsageType::CacheWrite),
        _ => report_usage_type(&t),
    }
}

/// The model and token class of a description such as
/// `Claude Opus 5 Usage - Input Tokens`, used when the report leaves
/// `model` and `token_type` out.
fn split_description(text: &str) -> Option<(String, Option<UsageType>)> {
    let (model, kind) = text.split_once(" Usage")?;
    let kind = kind.trim_start_matches([' ', '-']).to_ascii_lowercase();
    let t = if kind.contains("output") {
        Some(UsageType::Output)
    } else if kind.contains("cache read") || kind.contains("cache hit") {
        Some(UsageType::CachedInput)
    } else if kind.contains("cache write") || kind.contains("cache creation") {
        Some(UsageType::CacheWrite)
    } else if kind.contains("input") {
        Some(UsageType::Input)
    } else {
        None
    };
    Some((model.trim().to_string(), t))
}

pub(super) fn cost_csv_from_text(
    url: &str,
    text: &str,
    catalog: &Catalog,
    period: Period,
    fx: &FxTable,
) -> Result<Bill> {
    let table = CsvTable::read(url, text, "an Anthropic console cost CSV", CSV_HEADER)?;
    if !table.has_all(&CSV_REQUIRED) {
        return Err(table.not_this_shape(
            url,
            "not an Anthropic console cost CSV",
            &CSV_REQUIRED,
            CSV_HEADER,
        ));
    }
    bill_rows(
        url,
        table.rows(),
        |record| {
            let v = |c: &str| table.get(record, c);
            match v("usage_date_utc").map(|d| (d, time::utc_day(d))) {
                None => Err(RowError::missing("usage_date_utc")),
                Some((d, None)) => Err(RowError::new(
                    "usage_date_utc",
                    format!("`usage_date_utc` is not a date: `{d}`"),
                )),
                Some((_, Some(day))) if !period.contains(day) => Ok(Some(BillRow::Outside(day))),
                Some((_, Some(day))) => {
                    read_csv_row(&v, day, catalog, fx).map(|l| Some(BillRow::Line(l)))
                }
            }
        },
        |record| record_fields(table.get(record, "cost_usd"), &table.record(record)),
    )
}

fn read_csv_row<'a>(
    v: &dyn Fn(&str) -> Option<&'a str>,
    day: NaiveDate,
    catalog: &Catalog,
    fx: &FxTable,
) -> std::result::Result<BilledLine, RowError> {
    let text = v("cost_usd").ok_or_else(|| RowError::missing("cost_usd"))?;
    let cost = parse_amount(&without_thousands(text))
        .map_err(|e| RowError::new("cost_usd", format!("`cost_usd`: {e}")))?;
    // The console states dollars.
    let (cost, converted) = in_invoice_currency(fx, "cost_usd", "USD", day, cost)?;
    let tokens = v("cost_type")
        .is_none_or(|c| c.eq_ignore_ascii_case("token") || c.eq_ignore_ascii_case("tokens"));
    let usage_type = match (tokens, v("token_type")) {
        (true, Some(t)) => Some(console_usage_type(t).ok_or_else(|| {
            RowError::new(
                "token_type",
                format!(
                    "`token_type` is `{t}`, expected input_no_cache, output, input_cache_read, \
                     input_cache_write_5m or input_cache_write_1h"
                ),
            )
        })?),
        _ => None,
    };
    let model_raw = v("model").map(str::to_string);
    let model = model_raw
        .as_deref()
        .and_then(|m| catalog.resolve(PROVIDER, m))
        .map(|e| e.model.clone());
    let scope = match v("workspace") {
        None => "",
        Some(w) if w.eq_ignore_ascii_case("default") => "",
        Some(w) => w,
    };
    let description = [v("model"), v("token_type").or(v("cost_type"))]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(BilledLine {
        provider: PROVIDER.to_string(),
        scope: scope.to_string(),
        day,
        model,
        model_raw,
        usage_type,
        quantity: None,
        cost,
        currency: fx.currency().to_string(),
        fx: converted.map(Box::new),
        category: ChargeCategory::Usage,
        correction: false,
        description: (!description.is_empty()).then_some(description),
        source: String::new(),
        row: 0,
    })
}

/// `1,234.50` → `1234.50` when the commas group thousands; anything else
/// (a decimal comma such as `0,10`) is left for the parser to refuse.
fn without_thousands(text: &str) -> String {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let whole = digits.split('.').next().unwrap_or("");
    let groups: Vec<&str> = whole.split(',').collect();
    let grouped = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    if grouped {
        t.replace(',', "")
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::parse(
            r#"{"models": [
              {"provider": "anthropic", "model": "claude-sonnet-4-5", "aliases": ["claude-sonnet-4-5-20250929"],
               "prices": [{"effective_from": "2025-01-01", "input": "3.00", "cached_input": "0.30", "cache_write": "3.75", "output": "15.00"}]},
              {"provider": "anthropic", "model": "claude-haiku-4-5", "aliases": ["Claude Haiku 4.5"],
               "prices": [{"effective_from": "2025-01-01", "input": "1.00", "cached_input": "0.10", "cache_write": "1.25", "output": "5.00"}]},
              {"provider": "anthropic", "model": "claude-opus-5",
               "prices": [{"effective_from": "2025-01-01", "input": "5.00", "output": "25.00"}]}
            ]}"#,
            "catalog.json",
        )
        .unwrap()
    }

    fn aug() -> Period {
        "2025-08".parse().unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn report(results: &[&str]) -> String {
        format!(
            r#"{{"data": [{{"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z", "results": [{}]}}], "has_more": false, "next_page": null}}"#,
            results.join(",")
        )
    }

    fn item(amount: &str, token_type: &str) -> String {
        format!(
            r#"{{"amount": {amount}, "context_window": "0-200k", "cost_type": "tokens", "currency": "USD", "description": "Claude Opus 5 Usage - Input Tokens", "inference_geo": "global", "model": "claude-opus-5", "service_tier": "standard", "token_type": "{token_type}", "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"}}"#
        )
    }

    fn load(text: &str) -> Bill {
        report_from_text(
            "report.json",
            text,
            &catalog(),
            aug(),
            &FxTable::none("USD"),
        )
        .unwrap()
    }

    #[test]
    fn cents_become_dollars_exactly() {
        assert_eq!(cents_to_dollars(dec("123.78912")), Some(dec("1.2378912")));
        assert_eq!(cents_to_dollars(dec("123.45")), Some(dec("1.2345")));
        assert_eq!(cents_to_dollars(dec("0.001")), Some(dec("0.00001")));
        assert_eq!(cents_to_dollars(dec("-250")), Some(dec("-2.50")));
        let bill = load(&report(&[
            &item(r#""123.78912""#, "uncached_input_tokens"),
            &item(r#""0.00003""#, "output_tokens"),
        ]));
        let costs: Vec<Decimal> = bill.lines.iter().map(|l| l.cost).collect();
        assert_eq!(costs, [dec("1.2378912"), dec("0.0000003")]);
        // Never rounded per row: the sum keeps every fractional cent.
        assert_eq!(costs.iter().sum::<Decimal>(), dec("1.2378915"));
    }

    #[test]
    fn token_types_map_to_usage_types() {
        assert_eq!(
            report_usage_type("uncached_input_tokens"),
            Some(UsageType::Input)
        );
        assert_eq!(report_usage_type("output_tokens"), Some(UsageType::Output));
        assert_eq!(
            report_usage_type("cache_read_input_tokens"),
            Some(UsageType::CachedInput)
        );
        assert_eq!(
            report_usage_type("cache_creation.ephemeral_5m_input_tokens"),
            Some(UsageType::CacheWrite)
        );
        assert_eq!(
            report_usage_type("cache_creation.ephemeral_1h_input_tokens"),
            Some(UsageType::CacheWrite)
        );
        assert_eq!(console_usage_type("input_no_cache"), Some(UsageType::Input));
        assert_eq!(console_usage_type("output"), Some(UsageType::Output));
        assert_eq!(
            console_usage_type("input_cache_read"),
            Some(UsageType::CachedInput)
        );
        assert_eq!(
            console_usage_type("input_cache_write_5m"),
            Some(UsageType::CacheWrite)
        );
        assert_eq!(
            console_usage_type("input_cache_write_1h"),
            Some(UsageType::CacheWrite)
        );
        assert_eq!(console_usage_type("bogus"), None);
    }

    #[test]
    fn report_lines_carry_scope_model_and_class() {
        let bill = load(&report(&[
            &item(r#""100""#, "cache_creation.ephemeral_1h_input_tokens"),
            r#"{"amount": "50", "currency": "USD", "workspace_id": null, "description": "Web Search Usage", "cost_type": "web_search", "model": null, "token_type": null}"#,
            r#"{"amount": "7.5", "currency": "USD", "workspace_id": null, "description": "Claude Sonnet 4.5 Usage - Output Tokens", "cost_type": "tokens", "model": null, "token_type": null}"#,
        ]));
        let a = &bill.lines[0];
        assert_eq!(a.scope, "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ");
        assert_eq!(a.model.as_deref(), Some("claude-opus-5"));
        assert_eq!(a.usage_type, Some(UsageType::CacheWrite));
        assert_eq!(a.day.to_string(), "2025-08-01");
        assert_eq!(a.cost, dec("1.00"));
        // Web search: a usage line without model or token class.
        let b = &bill.lines[1];
        assert_eq!(
            (b.scope.as_str(), b.model.as_deref(), b.usage_type),
            ("", None, None)
        );
        assert_eq!((b.category, b.cost), (ChargeCategory::Usage, dec("0.50")));
        // Model and class read from the description when left out.
        let c = &bill.lines[2];
        assert_eq!(c.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(c.usage_type, Some(UsageType::Output));
    }

    #[test]
    fn bad_items_are_quarantined_and_other_months_counted() {
        let text = format!(
            r#"{{"data": [
              {{"starting_at": "2025-07-31T00:00:00Z", "ending_at": "2025-08-01T00:00:00Z", "results": [{}]}},
              {{"starting_at": "2025-08-02T00:00:00Z", "ending_at": "2025-08-03T00:00:00Z", "results": []}},
              {{"starting_at": "2025-08-03T00:00:00Z", "ending_at": "2025-08-04T00:00:00Z", "results": [{}, {}, {}]}}
            ], "has_more": false, "next_page": null}}"#,
            item(r#""1""#, "output_tokens"),
            item(r#""1,5""#, "output_tokens"),
            item(r#""1""#, "cache_magic_tokens"),
            r#"{"amount": "1", "currency": "euros"}"#,
        );
        let bill = load(&text);
        assert_eq!((bill.rows_read, bill.outside_period), (4, 1));
        let q: Vec<(u64, &str)> = bill
            .quarantine
            .iter()
            .map(|q| (q.row, q.column.as_str()))
            .collect();
        assert_eq!(q, [(2, "amount"), (3, "token_type"), (4, "currency")]);
    }

    #[test]
    fn not_a_cost_report_names_what_it_found() {
        let err = report_from_text(
            "r.json",
            r#"{"buckets": []}"#,
            &catalog(),
            aug(),
            &FxTable::none("USD"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("r.json") && err.contains("`data`") && err.contains("`buckets`"),
            "{err}"
        );
    }

    const CSV: &str = "\
usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,list_price_usd,cost_type,inference_geo,speed,api_key_id,api_key_status
2025-08-05,Claude Sonnet 4.5,Default,demo-key,message,≤ 200k,input_cache_read,0.10,1.00,token,not_available,,apikey_01AAA,archived
2025-08-05,Claude Haiku 4.5,Research,demo-key,message,≤ 200k,input_no_cache,\"1,234.5678\",1300.00,token,not_available,,apikey_01AAA,active
2025-08-06,Claude Sonnet 4.5,Research,demo-key,message,≤ 200k,input_cache_write_1h,0.000001,,token,global,,apikey_01AAA,active
2025-08-06,Claude Sonnet 4.5,Research,demo-key,message,,,2.00,2.00,web_search,global,,apikey_01AAA,active
2025-09-01,Claude Sonnet 4.5,Default,demo-key,message,≤ 200k,output,5.00,5.00,token,global,,apikey_01AAA,active
2025-08-07,Claude Sonnet 4.5,Default,demo-key,message,≤ 200k,output,\"0,10\",5.00,token,global,,apikey_01AAA,active
";

    #[test]
    fn console_csv_resolves_display_names_and_reads_dollars() {
        let bill =
            cost_csv_from_text("cost.csv", CSV, &catalog(), aug(), &FxTable::none("USD")).unwrap();
        assert_eq!((bill.rows_read, bill.outside_period), (6, 1));
        let got: Vec<(&str, Option<&str>, Option<UsageType>, Decimal)> = bill
            .lines
            .iter()
            .map(|l| (l.scope.as_str(), l.model.as_deref(), l.usage_type, l.cost))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "",
                    Some("claude-sonnet-4-5"),
                    Some(UsageType::CachedInput),
                    dec("0.10")
                ),
                (
                    "Research",
                    Some("claude-haiku-4-5"),
                    Some(UsageType::Input),
                    dec("1234.5678")
                ),
                (
                    "Research",
                    Some("claude-sonnet-4-5"),
                    Some(UsageType::CacheWrite),
                    dec("0.000001")
                ),
                ("Research", Some("claude-sonnet-4-5"), None, dec("2.00")),
            ]
        );
        assert_eq!(
            bill.lines[0].model_raw.as_deref(),
            Some("Claude Sonnet 4.5")
        );
        // A decimal comma is not a thousands separator: refused, not guessed.
        assert_eq!(bill.quarantine.len(), 1);
        assert_eq!(
            (bill.quarantine[0].row, bill.quarantine[0].column.as_str()),
            (6, "cost_usd")
        );
    }

    #[test]
    fn console_csv_dollars_are_converted_into_another_invoice_currency() {
        let err = cost_csv_from_text("cost.csv", CSV, &catalog(), aug(), &FxTable::none("EUR"))
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "cost.csv:1:cost_usd: billed in `USD` on 2025-08-05, but no `[[fx]]` rate from `USD` to `EUR` is in force that day; 3 more rows"
            ),
            "{err}"
        );
        let fx = FxTable::new(
            "EUR",
            [crate::fx::Rate {
                from: "USD".into(),
                rate: "0.9".parse().unwrap(),
                effective_from: "2025-08-01".parse().unwrap(),
            }],
        );
        let bill = cost_csv_from_text("cost.csv", CSV, &catalog(), aug(), &fx).unwrap();
        // 1,234.5678 USD × 0.9 = 1,111.11102 → 1,111.11 EUR; 0.000001 → 0.00.
        let costs: Vec<String> = bill.lines.iter().map(|l| l.cost.to_string()).collect();
        assert_eq!(costs, ["0.09", "1111.11", "0.00", "1.80"]);
        assert!(bill.lines.iter().all(|l| l.currency == "EUR"));
        assert_eq!(bill.lines[1].fx.as_ref().unwrap().cost, dec("1234.5678"));
    }

    #[test]
    fn thousands_separators_only_when_grouped() {
        assert_eq!(without_thousands("1,234.50"), "1234.50");
        assert_eq!(without_thousands("12,345,678"), "12345678");
        assert_eq!(without_thousands("0,10"), "0,10");
        assert_eq!(without_thousands("1234.5"), "1234.5");
    }
}
