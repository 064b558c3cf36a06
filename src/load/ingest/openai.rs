//! OpenAI bills: `/v1/organization/costs` JSON pages and the dashboard
//! cost CSV, into canonical billed lines.
//!
//! Both carry dollars per UTC day, grouped by whatever the caller asked for
//! (`project_id`, `line_item`, `api_key_id`). `project_id` is the billing
//! scope; `line_item` is a free-form display string that names a model and
//! a token class when it can (`gpt-4o-2024-08-06, input`,
//! `gpt-5-nano, input_tokens`, `input_tokens`, `GPT-4o`); whatever it does
//! not say stays `None`, and the reconciliation matches the line at the
//! coarser grain. `amount.value` is a JSON number: its literal text is
//! parsed as an exact decimal, never through a float.

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::bill::{
    BillFormat, BillRow, ReadBill, RowError, bill_rows, in_invoice_currency, record_fields,
};
use super::csv_table::CsvTable;
use super::detect::{Over, Rule};
use super::focus::tokens_per_unit;
pub use super::pages::PageLink;
use super::pages::read_pages;
use super::{Bill, BilledLine, ChargeCategory, time};
use crate::catalog::{Catalog, UsageType};
use crate::config::BillingFormat;
use crate::error::Result;
use crate::fx::FxTable;
use crate::money::parse_amount;
use crate::period::Period;

/// Our provider id.
pub const PROVIDER: &str = "openai";

/// The `/v1/organization/costs` response shape, for messages.
const COSTS_SHAPE: &str = "`{\"object\": \"page\", \"data\": [{\"object\": \"bucket\", \"start_time\", \
    \"end_time\", \"results\": [{\"object\": \"organization.costs.result\", \"amount\": {\"value\", \
    \"currency\"}, \"line_item\", \"project_id\", \"quantity\", \"quantity_unit\"}]}], \"has_more\", \
    \"next_page\"}`";

/// Dashboard cost CSV columns we need: an amount and a day.
const CSV_REQUIRED: [&str; 2] = ["amount_value", "amount_currency"];
/// The dashboard cost CSV header as exported.
const CSV_HEADER: &str = "start_time,end_time,start_time_iso,end_time_iso,amount_value,\
    amount_currency,quantity,quantity_unit,line_item,user_id,api_key_id,project_id,organization_id,\
    project_name,organization_name,user_email,api_source";

#[derive(Debug, Deserialize)]
struct CostsPage {
    data: Vec<CostsBucket>,
}

#[derive(Debug, Deserialize)]
struct CostsBucket {
    /// Unix seconds, inclusive; buckets are UTC days (the first may be
    /// partial, starting at the query's `start_time`).
    start_time: i64,
    #[serde(default)]
    results: Vec<CostsResult>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct CostsResult {
    object: Option<String>,
    amount: Option<CostsAmount>,
    line_item: Option<String>,
    project_id: Option<String>,
    quantity: Option<Box<RawValue>>,
    quantity_unit: Option<String>,
}

impl CostsResult {
    /// The amount's literal text, for the quarantine.
    fn cost_text(&self) -> Option<&str> {
        self.amount.as_ref()?.value.as_deref().map(RawValue::get)
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct CostsAmount {
    /// A JSON number of dollars, kept as its literal text.
    value: Option<Box<RawValue>>,
    currency: Option<String>,
}

/// Costs results say what they are; a page whose buckets are all empty is
/// told by its shape, unless it says it is a usage page. A costs page saved
/// as one JSON document is told by the same marker among its keys.
pub(super) const COSTS: BillFormat = BillFormat {
    format: BillingFormat::OpenaiCosts,
    rules: &[
        Rule {
            over: Over::Pages,
            rank: 10,
            test: |s| s.text_has(COSTS_RESULT),
        },
        Rule {
            over: Over::Pages,
            rank: 40,
            test: |s| {
                s.has(&["data", "start_time", "end_time", "results"])
                    && !s.text_has("organization.usage.")
            },
        },
        Rule {
            over: Over::Names,
            rank: 40,
            test: |s| s.text_has(COSTS_RESULT),
        },
    ],
    read: ReadBill::Text(costs_from_text),
};

/// The dashboard CSV is told by its amount and line item columns.
pub(super) const COST_CSV: BillFormat = BillFormat {
    format: BillingFormat::OpenaiCostCsv,
    rules: &[Rule {
        over: Over::Names,
        rank: 20,
        test: |s| s.has(&["amount_value", "line_item"]),
    }],
    read: ReadBill::Text(cost_csv_from_text),
};

/// What every costs result says it is.
const COSTS_RESULT: &str = "organization.costs.result";

pub(super) fn costs_from_text(
    url: &str,
    text: &str,
    catalog: &Catalog,
    period: Period,
    fx: &FxTable,
) -> Result<Bill> {
    let pages: Vec<CostsPage> = read_pages(url, text, "OpenAI costs pages", COSTS_SHAPE)?;
    // Records are numbered across buckets and pages.
    let results = pages
        .iter()
        .flat_map(|p| &p.data)
        .flat_map(|bucket| bucket.results.iter().map(move |r| page_result(bucket, r)))
        .enumerate()
        .map(|(i, r)| ((i + 1) as u64, r));
    bill_rows(
        url,
        results,
        |r| {
            let rec = r.record()?;
            read_cost(&JSON_FIELDS, &rec, catalog, period, fx)
        },
        |r| match r.record() {
            Ok(rec) => record_fields(rec.amount, &rec),
            Err(_) => record_fields(r.result.cost_text(), r.result),
        },
    )
}

/// One result of a costs page, with its bucket's start and its numbers'
/// literal text (or why they are no numbers, or no costs result).
struct PageResult<'a> {
    start_time: i64,
    day: Option<NaiveDate>,
    result: &'a CostsResult,
    /// `quantity` and `amount.value` as text.
    numbers: std::result::Result<(Option<String>, Option<String>), RowError>,
}

fn page_result<'a>(bucket: &CostsBucket, result: &'a CostsResult) -> PageResult<'a> {
    let numbers = (|| {
        let quantity = match result.quantity.as_deref().map(json_number_text) {
            Some(q) => q.map_err(|e| RowError::new("quantity", e))?,
            None => None,
        };
        let value = match result.amount.as_ref().and_then(|a| a.value.as_deref()) {
            Some(v) => json_number_text(v).map_err(|e| RowError::new("amount.value", e))?,
            None => None,
        };
        let kind = result.object.as_deref();
        if kind.is_some_and(|k| k != "organization.costs.result") {
            return Err(RowError::new(
                "object",
                format!(
                    "`{}` is not a costs result; expected `organization.costs.result`",
                    kind.unwrap_or_default()
                ),
            ));
        }
        Ok((quantity, value))
    })();
    PageResult {
        start_time: bucket.start_time,
        day: unix_day(bucket.start_time),
        result,
        numbers,
    }
}

impl PageResult<'_> {
    /// The result as a cost record, once its numbers are read.
    fn record(&self) -> std::result::Result<CostRecord<'_>, RowError> {
        let (quantity, value) = self.numbers.as_ref().map_err(Clone::clone)?;
        Ok(CostRecord {
            day: self.day.ok_or_else(|| {
                RowError::new(
                    "start_time",
                    format!("`{}` is not a unix time in seconds", self.start_time),
                )
            }),
            amount: value.as_deref(),
            currency: self
                .result
                .amount
                .as_ref()
                .and_then(|a| a.currency.as_deref()),
            line_item: self.result.line_item.as_deref(),
            project_id: self.result.project_id.as_deref(),
            quantity: quantity.as_deref(),
            quantity_unit: self.result.quantity_unit.as_deref(),
        })
    }
}

pub(super) fn cost_csv_from_text(
    url: &str,
    text: &str,
    catalog: &Catalog,
    period: Period,
    fx: &FxTable,
) -> Result<Bill> {
    let table = CsvTable::read(url, text, "an OpenAI dashboard cost CSV", CSV_HEADER)?;
    let has_day = table.has("start_time_iso") || table.has("start_time");
    if !table.has_all(&CSV_REQUIRED) || !has_day {
        return Err(table.not_this_shape(
            url,
            "not an OpenAI dashboard cost CSV",
            &["start_time_iso", "amount_value", "amount_currency"],
            CSV_HEADER,
        ));
    }
    bill_rows(
        url,
        table.rows(),
        |record| match csv_record(&table, record) {
            // An empty bucket: a day with no spend, exported as a blank row.
            None => Ok(None),
            Some(rec) => read_cost(&CSV_FIELDS, &rec, catalog, period, fx),
        },
        // Only rows with an amount are read, so only they are set aside.
        |record| {
            csv_record(&table, record).map_or_else(Vec::new, |rec| record_fields(rec.amount, &rec))
        },
    )
}

/// A dashboard CSV row as a cost record; `None` for a row without amount.
fn csv_record<'r>(table: &CsvTable, record: &'r csv::StringRecord) -> Option<CostRecord<'r>> {
    let v = |c: &str| table.get(record, c);
    let amount = v("amount_value")?;
    let day = match (v("start_time_iso"), v("start_time")) {
        (Some(iso), _) => time::utc_day(iso).ok_or_else(|| {
            RowError::new(
                "start_time_iso",
                format!("`start_time_iso` is not an ISO 8601 time: `{iso}`"),
            )
        }),
        (None, Some(secs)) => secs.parse::<i64>().ok().and_then(unix_day).ok_or_else(|| {
            RowError::new(
                "start_time",
                format!("`start_time` is not a unix time in seconds: `{secs}`"),
            )
        }),
        (None, None) => Err(RowError::new("start_time_iso", "missing `start_time_iso`")),
    };
    Some(CostRecord {
        day,
        amount: Some(amount),
        currency: v("amount_currency"),
        line_item: v("line_item"),
        project_id: v("project_id"),
        quantity: v("quantity"),
        quantity_unit: v("quantity_unit"),
    })
}

/// Where each value comes from, for quarantine reasons.
struct Fields {
    amount: &'static str,
    currency: &'static str,
    quantity: &'static str,
}

const JSON_FIELDS: Fields = Fields {
    amount: "amount.value",
    currency: "amount.currency",
    quantity: "quantity",
};

const CSV_FIELDS: Fields = Fields {
    amount: "amount_value",
    currency: "amount_currency",
    quantity: "quantity",
};

/// One costs result, from a page or a CSV row, as text.
#[derive(Serialize)]
struct CostRecord<'a> {
    #[serde(skip)]
    day: std::result::Result<NaiveDate, RowError>,
    amount: Option<&'a str>,
    currency: Option<&'a str>,
    line_item: Option<&'a str>,
    project_id: Option<&'a str>,
    quantity: Option<&'a str>,
    quantity_unit: Option<&'a str>,
}

fn read_cost(
    fields: &Fields,
    rec: &CostRecord<'_>,
    catalog: &Catalog,
    period: Period,
    fx: &FxTable,
) -> std::result::Result<Option<BillRow>, RowError> {
    let day = rec.day.clone()?;
    if !period.contains(day) {
        return Ok(Some(BillRow::Outside(day)));
    }
    read_record(fields, rec, day, catalog, fx).map(|line| Some(BillRow::Line(line)))
}

fn read_record(
    f: &Fields,
    rec: &CostRecord<'_>,
    day: NaiveDate,
    catalog: &Catalog,
    fx: &FxTable,
) -> std::result::Result<BilledLine, RowError> {
    let amount = rec.amount.ok_or_else(|| RowError::missing(f.amount))?;
    let cost = parse_amount(amount)
        .map_err(|e| RowError::new(f.amount, format!("`{}`: {e}", f.amount)))?;
    let cur = rec.currency.ok_or_else(|| RowError::missing(f.currency))?;
    let (cost, converted) = in_invoice_currency(fx, f.currency, cur, day, cost)?;
    let (model_raw, usage_type) = match rec.line_item {
        Some(item) => parse_line_item(catalog, item),
        None => (None, None),
    };
    let model = model_raw
        .as_deref()
        .and_then(|m| catalog.resolve(PROVIDER, m))
        .map(|e| e.model.clone());
    let quantity = match rec.quantity {
        None => None,
        Some(q) => {
            let q = parse_amount(q)
                .map_err(|e| RowError::new(f.quantity, format!("`{}`: {e}", f.quantity)))?;
            match rec.quantity_unit {
                Some(unit) => tokens_per_unit(&unit.replace('_', " ")).map(|per| q * per),
                // Older pages carry no unit: a token class says it is tokens.
                None => usage_type.map(|_| q),
            }
        }
    };
    Ok(BilledLine {
        provider: PROVIDER.to_string(),
        scope: rec.project_id.unwrap_or("").to_string(),
        day,
        model,
        model_raw,
        usage_type,
        quantity,
        cost,
        currency: fx.currency().to_string(),
        fx: converted.map(Box::new),
        category: ChargeCategory::Usage,
        correction: false,
        description: rec.line_item.map(str::to_string),
        source: String::new(),
        row: 0,
    })
}

/// The model (as written) and token class a `line_item` names, when it
/// does: `gpt-4o-2024-08-06, input` → (`gpt-4o-2024-08-06`, input);
/// `input_tokens` → (none, input); `GPT-4o` → (`GPT-4o`, none);
/// `GPT-4o mini cached input` → (`GPT-4o mini`, cached input) when the
/// catalog knows `GPT-4o mini`. Anything else is kept whole as the model
/// name, which the reconciliation reports when the catalog does not know it.
pub fn parse_line_item(catalog: &Catalog, item: &str) -> (Option<String>, Option<UsageType>) {
    let item = item.trim();
    if item.is_empty() {
        return (None, None);
    }
    let named = |m: &str| (!m.trim().is_empty()).then(|| m.trim().to_string());
    if let Some((model, kind)) = item.rsplit_once(',') {
        return (named(model), line_item_usage_type(kind));
    }
    if let Some(t) = line_item_usage_type(item) {
        return (None, Some(t));
    }
    // `GPT-4o mini input`, `gpt-4o cached input`: the longest known model
    // followed by a token class.
    let words: Vec<&str> = item.split_whitespace().collect();
    for cut in (1..words.len()).rev() {
        let (model, kind) = (words[..cut].join(" "), words[cut..].join(" "));
        if let Some(t) = line_item_usage_type(&kind)
            && catalog.resolve(PROVIDER, &model).is_some()
        {
            return (Some(model), Some(t));
        }
    }
    (Some(item.to_string()), None)
}

/// A token class as OpenAI spells it in line items and usage fields.
pub fn line_item_usage_type(text: &str) -> Option<UsageType> {
    let t = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    match t.as_str() {
        "cached"
        | "cached_input"
        | "input_cached"
        | "input_cached_tokens"
        | "cached_tokens"
        | "cached_input_tokens"
        | "cache_read"
        | "cache_read_input_tokens" => Some(UsageType::CachedInput),
        "input_cache_write_tokens" | "cache_write" | "cache_write_tokens" | "cache_creation" => {
            Some(UsageType::CacheWrite)
        }
        "input"
        | "input_tokens"
        | "uncached_input"
        | "input_uncached_tokens"
        | "uncached_input_tokens"
        | "prompt_tokens" => Some(UsageType::Input),
        "output" | "output_tokens" | "completion_tokens" => Some(UsageType::Output),
        _ => UsageType::parse(&t),
    }
}

/// The UTC day a unix time in seconds falls on.
fn unix_day(secs: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp(secs, 0).map(|t| t.date_naive())
}

/// The literal text of a JSON number (or a numeric string); `None` for
/// `null`. Never goes through a float.
fn json_number_text(raw: &RawValue) -> std::result::Result<Option<String>, String> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
        return Ok(Some(s));
    }
    if text.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        return Ok(Some(text.to_string()));
    }
    Err(format!("`{text}` is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Decimal;

    fn catalog() -> Catalog {
        Catalog::parse(
            r#"{"models": [
              {"provider": "openai", "model": "gpt-4o", "aliases": ["gpt-4o-2024-08-06", "GPT-4o"],
               "prices": [{"effective_from": "2024-01-01", "input": "2.50", "cached_input": "1.25", "output": "10.00"}]},
              {"provider": "openai", "model": "gpt-4o-mini", "aliases": ["GPT-4o mini"],
               "prices": [{"effective_from": "2024-01-01", "input": "0.15", "output": "0.60"}]},
              {"provider": "openai", "model": "gpt-5-nano",
               "prices": [{"effective_from": "2024-01-01", "input": "0.05", "output": "0.40"}]}
            ]}"#,
            "catalog.json",
        )
        .unwrap()
    }

    fn jan() -> Period {
        "2025-01".parse().unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// 2025-01-03T00:00:00Z.
    const JAN3: i64 = 1_735_862_400;

    fn page(results: &str) -> String {
        format!(
            r#"{{"object": "page", "data": [{{"object": "bucket", "start_time": {JAN3}, "end_time": {}, "results": [{results}]}}], "has_more": false, "next_page": null}}"#,
            JAN3 + 86_400
        )
    }

    fn result(value: &str, line_item: &str) -> String {
        format!(
            r#"{{"object": "organization.costs.result", "amount": {{"value": {value}, "currency": "usd"}}, "line_item": {line_item}, "project_id": "proj_a", "quantity": null, "quantity_unit": null}}"#
        )
    }

    fn load(text: &str) -> Bill {
        costs_from_text("costs.json", text, &catalog(), jan(), &FxTable::none("USD")).unwrap()
    }

    #[test]
    fn amount_literal_is_parsed_exactly() {
        let text = page(
            &[
                result("0.1", "null"),
                result("0.003835980000000000000000000000", "null"),
                result("1.2E-5", "null"),
                result("20", "null"),
            ]
            .join(","),
        );
        let bill = load(&text);
        let costs: Vec<Decimal> = bill.lines.iter().map(|l| l.cost).collect();
        assert_eq!(
            costs,
            [dec("0.1"), dec("0.00383598"), dec("0.000012"), dec("20")]
        );
        assert_eq!(costs[0].to_string(), "0.1");
        let sum: Decimal = costs.iter().sum();
        assert_eq!(sum, dec("20.10384798"));
    }

    #[test]
    fn bucket_start_is_the_utc_charge_day_and_scope_is_the_project() {
        let bill = load(&page(&result("1.5", "null")));
        let l = &bill.lines[0];
        assert_eq!(l.day.to_string(), "2025-01-03");
        assert_eq!(l.scope, "proj_a");
        assert_eq!(l.provider, "openai");
        assert_eq!(l.category, ChargeCategory::Usage);
        assert_eq!((l.model.as_deref(), l.usage_type), (None, None));
        assert_eq!((l.source.as_str(), l.row), ("costs.json", 1));
    }

    #[test]
    fn line_items_name_model_and_token_class() {
        let c = catalog();
        let p = |s: &str| {
            let (raw, t) = parse_line_item(&c, s);
            let model = raw
                .as_deref()
                .and_then(|m| c.resolve(PROVIDER, m))
                .map(|e| e.model.clone());
            (raw, model, t)
        };
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            p("gpt-4o-2024-08-06, input"),
            (s("gpt-4o-2024-08-06"), s("gpt-4o"), Some(UsageType::Input))
        );
        assert_eq!(
            p("gpt-4o-2024-08-06, output"),
            (s("gpt-4o-2024-08-06"), s("gpt-4o"), Some(UsageType::Output))
        );
        assert_eq!(
            p("gpt-5-nano, input_tokens"),
            (s("gpt-5-nano"), s("gpt-5-nano"), Some(UsageType::Input))
        );
        assert_eq!(
            p("gpt-4o, cached_input"),
            (s("gpt-4o"), s("gpt-4o"), Some(UsageType::CachedInput))
        );
        assert_eq!(
            p("gpt-4o, input_cached_tokens").2,
            Some(UsageType::CachedInput)
        );
        assert_eq!(p("gpt-4o, cached").2, Some(UsageType::CachedInput));
        assert_eq!(p("gpt-4o, output_tokens").2, Some(UsageType::Output));
        assert_eq!(p("input_tokens"), (None, None, Some(UsageType::Input)));
        assert_eq!(p("output_tokens"), (None, None, Some(UsageType::Output)));
        assert_eq!(p("GPT-4o"), (s("GPT-4o"), s("gpt-4o"), None));
        assert_eq!(p("GPT-4o mini"), (s("GPT-4o mini"), s("gpt-4o-mini"), None));
        assert_eq!(
            p("GPT-4o mini cached input"),
            (
                s("GPT-4o mini"),
                s("gpt-4o-mini"),
                Some(UsageType::CachedInput)
            )
        );
        // Not a model we know: kept as written, no model, no class.
        assert_eq!(p("Image models"), (s("Image models"), None, None));
    }

    #[test]
    fn quantity_units_become_tokens() {
        let r = |q: &str, unit: &str, item: &str| {
            format!(
                r#"{{"object": "organization.costs.result", "amount": {{"value": 0.06, "currency": "usd"}}, "line_item": "{item}", "project_id": "proj_abc", "quantity": {q}, "quantity_unit": {unit}}}"#
            )
        };
        let bill = load(&page(
            &[
                r("10000", r#""tokens""#, "input_tokens"),
                r("2.5", r#""1000_tokens""#, "gpt-4o, output"),
                r("3", r#""images""#, "Image models"),
                r("700", "null", "gpt-4o, input"),
                r("5", "null", "GPT-4o"),
            ]
            .join(","),
        ));
        let q: Vec<Option<Decimal>> = bill.lines.iter().map(|l| l.quantity).collect();
        assert_eq!(
            q,
            [
                Some(dec("10000")),
                Some(dec("2500")),
                None,
                Some(dec("700")),
                None
            ]
        );
    }

    #[test]
    fn one_page_an_array_of_pages_or_json_lines() {
        let one = page(&result("1", r#""GPT-4o""#));
        assert_eq!(load(&one).lines.len(), 1);
        assert_eq!(load(&format!("[{one}, {one}]")).lines.len(), 2);
        assert_eq!(load(&format!("{one}\n{one}\n{one}\n")).lines.len(), 3);
        // Records are numbered across pages.
        let rows: Vec<u64> = load(&format!("{one}\n{one}"))
            .lines
            .iter()
            .map(|l| l.row)
            .collect();
        assert_eq!(rows, [1, 2]);
    }

    #[test]
    fn empty_buckets_other_months_and_bad_records() {
        let text = format!(
            r#"{{"object": "page", "data": [
              {{"object": "bucket", "start_time": {JAN3}, "end_time": 0, "results": []}},
              {{"object": "bucket", "start_time": 1738368000, "end_time": 0, "results": [{}]}},
              {{"object": "bucket", "start_time": {JAN3}, "end_time": 0, "results": [{}, {}, {}]}}
            ], "has_more": false, "next_page": null}}"#,
            result("9", "null"),
            r#"{"object": "organization.costs.result", "amount": {"value": 1, "currency": "euro"}}"#,
            r#"{"object": "organization.costs.result", "amount": {"value": null, "currency": "usd"}}"#,
            r#"{"object": "organization.usage.completions.result", "input_tokens": 5}"#,
        );
        let bill = load(&text);
        assert_eq!(bill.rows_read, 4);
        assert_eq!(bill.outside_period, 1);
        assert!(bill.lines.is_empty());
        let q: Vec<(u64, &str)> = bill
            .quarantine
            .iter()
            .map(|q| (q.row, q.column.as_str()))
            .collect();
        assert_eq!(
            q,
            [(2, "amount.currency"), (3, "amount.value"), (4, "object")]
        );
        assert_eq!(
            bill.quarantine[0].reason,
            "`amount.currency` is `euro`, expected a three-letter ISO 4217 code such as `USD`"
        );
    }

    #[test]
    fn not_a_costs_page_names_what_it_found() {
        let err = costs_from_text(
            "x.json",
            r#"{"rows": [{"cost": 1}]}"#,
            &catalog(),
            jan(),
            &FxTable::none("USD"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("x.json"), "{err}");
        assert!(err.contains("`data`") && err.contains("`rows`"), "{err}");
        let err = costs_from_text(
            "x.json",
            "{not json",
            &catalog(),
            jan(),
            &FxTable::none("USD"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    const CSV: &str = "\
start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,quantity,quantity_unit,line_item,user_id,api_key_id,project_id,organization_id,project_name,organization_name,user_email,api_source
1735776000,1735862400,2025-01-02T00:00:00+00:00,2025-01-03T00:00:00+00:00,,,,,,,,,,,,,
1735862400,1735948800,2025-01-03T00:00:00,2025-01-04T00:00:00,0.003835980000000000000000000000,usd,,,,,,,org-fixture,,Fixture Org,someone@example.com,
1735862400,1735948800,2025-01-03T00:00:00,2025-01-04T00:00:00,0.5,usd,1000,tokens,\"gpt-5-nano, input_tokens\",,key_1,proj_a,org-fixture,Proj A,someone@example.com,
1738368000,1738454400,2025-02-01T00:00:00+00:00,2025-02-02T00:00:00+00:00,0.25,usd,,,GPT-4o,,,proj_a,org-fixture,Proj A,,,
1735862400,1735948800,2025-01-03T00:00:00+00:00,2025-01-04T00:00:00+00:00,abc,usd,,,GPT-4o,,,proj_a,org-fixture,Proj A,,,
";

    #[test]
    fn dashboard_csv_skips_empty_buckets_and_reads_exact_amounts() {
        let bill =
            cost_csv_from_text("cost.csv", CSV, &catalog(), jan(), &FxTable::none("USD")).unwrap();
        assert_eq!(bill.rows_read, 5);
        assert_eq!(bill.outside_period, 1);
        assert_eq!(bill.lines.len(), 2);
        let a = &bill.lines[0];
        assert_eq!(
            (a.row, a.cost, a.scope.as_str()),
            (2, dec("0.00383598"), "")
        );
        assert_eq!(a.day.to_string(), "2025-01-03");
        let b = &bill.lines[1];
        assert_eq!(b.cost, dec("0.5"));
        assert_eq!(b.model.as_deref(), Some("gpt-5-nano"));
        assert_eq!(b.usage_type, Some(UsageType::Input));
        assert_eq!(b.quantity, Some(dec("1000")));
        assert_eq!(b.scope, "proj_a");
        // The blank row is skipped, not quarantined; the bad amount is.
        assert_eq!(bill.quarantine.len(), 1);
        assert_eq!(
            (bill.quarantine[0].row, bill.quarantine[0].column.as_str()),
            (5, "amount_value")
        );
    }

    #[test]
    fn a_csv_of_another_shape_is_refused_with_the_columns() {
        let err = cost_csv_from_text(
            "c.csv",
            "date,cost\n2025-01-01,1\n",
            &catalog(),
            jan(),
            &FxTable::none("USD"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.csv"), "{err}");
        assert!(
            err.contains("missing `start_time_iso`, `amount_value`, `amount_currency`"),
            "{err}"
        );
        assert!(err.contains("found `date`, `cost`"), "{err}");
    }
}
