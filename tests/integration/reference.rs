//! The pipeline against a deliberately naive reference: read every row,
//! check it, de-duplicate with a `BTreeSet` of full ids, sum. Random small
//! months with duplicates within and across files and bad values in every
//! column must come out the same row for row (used, duplicated,
//! quarantined) and, closed again from the reference's clean rows, cent
//! for cent on every invoice and number for number in the insights (the
//! estimated tokens and the conversations, which follow each row's fate).

use std::collections::{BTreeMap, BTreeSet};

use chargeback::catalog::Catalog;
use chargeback::context::Context;
use chargeback::load::store::Store;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use proptest::prelude::*;

use chargeback::publish::Outputs;

use crate::util::{Closed, close_in_memory, repo_root};

const HEADER: &str = "request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status,tokens_estimated,conversation_id";

fn catalog() -> Catalog {
    let text =
        std::fs::read_to_string(repo_root().join("fixtures/mini/model-catalog.json")).unwrap();
    Catalog::parse(&text, "catalog").unwrap()
}

/// One generated row, every value as CSV text.
#[derive(Debug, Clone)]
struct Row([String; 14]);

const TIMESTAMPS: [&str; 9] = [
    "2025-01-03T10:00:00Z",
    "2025-01-04T23:30:00-02:00", // 2025-01-05 UTC
    "2025-01-31T23:30:00-02:00", // February in UTC: outside
    "2025-01-01T01:00:00+05:00", // December in UTC: outside
    "2025-01-07 08:15:00",       // no offset: UTC
    "2025-01-09",                // a date
    "yesterday",                 // bad
    "2025-02-30T00:00:00Z",      // bad
    "",                          // missing
];
const PROVIDERS: [&str; 4] = ["openai", "OpenAI", "anthropic", ""];
const MODELS: [&str; 6] = [
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "Claude 3.5 Sonnet",
    "gpt-5-ultra", // not in the catalog
    "",
];
const COUNTS: [&str; 7] = ["1000", "250000", "0", " 42 ", "-5", "12x", ""];
const OPTIONAL: [&str; 4] = ["", "NULL", "300", "1.5"];
const TEAMS: [&str; 5] = ["support", "search", "", "NULL", "legal"];
const STATUSES: [&str; 5] = ["ok", "", "error", "SUCCESS", "pending"];
const FLAGS: [&str; 7] = ["", "true", "FALSE", "1", "no", "NULL", "maybe"];
const CONVERSATIONS: [&str; 4] = ["", "c1", " c1 ", "c2"];

fn row_strategy() -> impl Strategy<Value = Row> {
    // Mostly good values, so that most rows are used and bad ones are rare.
    let pick = |n: usize| prop_oneof![8 => Just(0usize), 2 => 0..n];
    (
        (
            pick(TIMESTAMPS.len()),
            0..PROVIDERS.len() - 1,
            pick(PROVIDERS.len()),
        ),
        (0..4usize, pick(MODELS.len())),
        (0..COUNTS.len() - 3, pick(COUNTS.len()), pick(COUNTS.len())),
        (pick(OPTIONAL.len()), pick(OPTIONAL.len())),
        (0..TEAMS.len(), pick(STATUSES.len()), 0..3u32),
        (
            0..FLAGS.len() - 1,
            pick(FLAGS.len()),
            0..CONVERSATIONS.len(),
            0..60u32,
        ),
    )
        .prop_map(
            |(
                (ts, p_good, p_bad),
                (m_good, m_bad),
                (c0, c1, c2),
                (o1, o2),
                (team, st, day),
                (f_good, f_bad, conv, minute),
            )| {
                let ts = if ts == 0 {
                    format!("2025-01-{:02}T12:{minute:02}:00Z", 2 + day * 9)
                } else {
                    TIMESTAMPS[ts].to_string()
                };
                let provider = if p_bad == 0 {
                    PROVIDERS[p_good]
                } else {
                    PROVIDERS[p_bad]
                };
                // The model of the provider, unless a bad one was drawn.
                let model = match (provider.to_ascii_lowercase().as_str(), m_bad) {
                    (_, m) if m > 0 => MODELS[m],
                    ("anthropic", _) => MODELS[3],
                    _ => MODELS[m_good % 3],
                };
                let scope = if provider.eq_ignore_ascii_case("anthropic") {
                    "wrkspc_1"
                } else {
                    "proj_a"
                };
                let input = if c1 == 0 { COUNTS[c0] } else { COUNTS[c1] };
                let output = if c2 == 0 { COUNTS[c0] } else { COUNTS[c2] };
                Row([
                    String::new(),
                    ts,
                    provider.to_string(),
                    model.to_string(),
                    scope.to_string(),
                    TEAMS[team].to_string(),
                    "chat".to_string(),
                    input.to_string(),
                    OPTIONAL[o1].to_string(),
                    OPTIONAL[o2].to_string(),
                    output.to_string(),
                    STATUSES[st].to_string(),
                    if f_bad == 0 {
                        FLAGS[f_good]
                    } else {
                        FLAGS[f_bad]
                    }
                    .to_string(),
                    CONVERSATIONS[conv].to_string(),
                ])
            },
        )
}

/// A month: files of rows, ids assigned, with duplicates: exact copies of
/// earlier rows and reused ids with other values, within and across files.
fn month_strategy() -> impl Strategy<Value = Vec<Vec<Row>>> {
    (
        prop::collection::vec(row_strategy(), 1..40),
        prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..12),
        prop::collection::vec(0..3usize, 1..80),
        prop::collection::vec(prop_oneof![9 => Just(false), 1 => Just(true)], 1..80),
    )
        .prop_map(|(mut rows, dups, file_of, blank_id)| {
            for (i, r) in rows.iter_mut().enumerate() {
                r.0[0] = if blank_id[i % blank_id.len()] {
                    String::new()
                } else {
                    format!("req-{i:03}")
                };
            }
            for (at, exact) in dups {
                let orig = rows[at.index(rows.len())].clone();
                let copy = if exact {
                    orig
                } else {
                    let mut r = orig;
                    r.0[7] = "7".into();
                    r
                };
                rows.push(copy);
            }
            let mut files = vec![Vec::new(), Vec::new(), Vec::new()];
            for (i, r) in rows.into_iter().enumerate() {
                files[file_of[i % file_of.len()]].push(r);
            }
            files.retain(|f| !f.is_empty());
            files
        })
}

fn csv_text(rows: &[Row]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        let cells: Vec<String> =
            r.0.iter()
                .map(|c| {
                    if c.contains(',') || c.contains('"') {
                        format!("\"{}\"", c.replace('"', "\"\""))
                    } else {
                        c.clone()
                    }
                })
                .collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

/// What the reference makes of a month.
#[derive(Debug, Default)]
struct Reference {
    /// (file, row) of rows quarantined for a bad value, and of duplicates.
    quarantined: BTreeSet<(String, u64)>,
    duplicates: BTreeSet<(String, u64)>,
    outside: u64,
    /// The rows that count, in file order.
    used: Vec<Row>,
    tokens_by_team: BTreeMap<String, u64>,
    /// Tokens of rows whose counts are estimated, by team.
    estimated_by_team: BTreeMap<String, u64>,
    /// (team, conversation) → the rows that count.
    conversations: BTreeMap<(String, String), Vec<Turn>>,
}

/// A row of a conversation: instant, request id, input tokens.
type Turn = (i64, String, u64);

/// The instant of a timestamp the reference reads, in microseconds.
fn instant(t: &str) -> i64 {
    let t = t.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return d.timestamp_micros();
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return d.and_utc().timestamp_micros();
        }
    }
    let d = NaiveDate::parse_from_str(t, "%Y-%m-%d").unwrap();
    d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros()
}

fn blank(v: &str) -> bool {
    let t = v.trim();
    t.is_empty() || t == "NULL" || t == "null" || t == "None"
}

fn utc_day(t: &str) -> Option<NaiveDate> {
    let t = t.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.naive_utc().date());
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d.date());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()
}

fn count(v: &str) -> Result<Option<u64>, ()> {
    if blank(v) {
        return Ok(None);
    }
    v.trim().parse::<u64>().map(Some).map_err(|_| ())
}

/// Read every row, check it, drop later ids already seen, resolve the
/// model, keep what is in January 2025.
fn reference(files: &[(String, Vec<Row>)], catalog: &Catalog) -> Reference {
    let mut out = Reference::default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let first = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let last = NaiveDate::from_ymd_opt(2025, 1, 31).unwrap();
    for (url, rows) in files {
        for (i, r) in rows.iter().enumerate() {
            let at = (url.clone(), i as u64 + 1);
            let v = &r.0;
            let day = utc_day(&v[1]);
            let counts: Vec<Result<Option<u64>, ()>> =
                [7, 8, 9, 10].iter().map(|&c| count(&v[c])).collect();
            let status = v[11].trim().to_ascii_lowercase();
            let flag = v[12].trim().to_ascii_lowercase();
            let checks_fail = blank(&v[0])
                || day.is_none()
                || blank(&v[2])
                || blank(&v[3])
                || counts.iter().any(Result::is_err)
                || matches!(counts[0], Ok(None))
                || matches!(counts[3], Ok(None))
                || !["", "null", "ok", "success", "error", "failure", "failed"]
                    .contains(&status.as_str())
                || !["", "null", "none", "true", "yes", "1", "false", "no", "0"]
                    .contains(&flag.as_str());
            if checks_fail {
                out.quarantined.insert(at);
                continue;
            }
            if !seen.insert(v[0].trim().to_string()) {
                out.duplicates.insert(at);
                continue;
            }
            if catalog
                .resolve(&v[2].trim().to_ascii_lowercase(), v[3].trim())
                .is_none()
            {
                out.quarantined.insert(at);
                continue;
            }
            let day = day.unwrap();
            if day < first || day > last {
                out.outside += 1;
                continue;
            }
            let team = if blank(&v[5]) {
                "untagged"
            } else {
                v[5].trim()
            };
            let tokens: u64 = counts.iter().map(|c| c.unwrap().unwrap_or(0)).sum();
            *out.tokens_by_team.entry(team.to_string()).or_default() += tokens;
            if ["true", "yes", "1"].contains(&flag.as_str()) {
                *out.estimated_by_team.entry(team.to_string()).or_default() += tokens;
            }
            if !blank(&v[13]) {
                let input: u64 = counts[..3].iter().map(|c| c.unwrap().unwrap_or(0)).sum();
                out.conversations
                    .entry((team.to_string(), v[13].trim().to_string()))
                    .or_default()
                    .push((instant(&v[1]), v[0].trim().to_string(), input));
            }
            out.used.push(r.clone());
        }
    }
    out
}

const BILL: &str = "BilledCost,BillingCurrency,ChargePeriodStart,ChargeCategory,ProviderName,SubAccountId,x_Model,x_UsageType\n\
    12.34,USD,2025-01-02T00:00:00Z,Usage,OpenAI,proj_a,gpt-4o,input\n\
    1.01,USD,2025-01-11T00:00:00Z,Usage,OpenAI,proj_a,gpt-4o-mini,output\n\
    3.33,USD,2025-01-20T00:00:00Z,Usage,Anthropic,wrkspc_1,claude-3-5-sonnet,input\n";

fn close(files: &[(String, Vec<Row>)]) -> Closed {
    let store = Store::new();
    for (url, rows) in files {
        store.put_memory(
            url.trim_start_matches("memory://"),
            csv_text(rows).into_bytes(),
        );
    }
    store.put_memory("bill/focus.csv", BILL.as_bytes().to_vec());
    store.put_memory(
        "catalog.json",
        std::fs::read(repo_root().join("fixtures/mini/model-catalog.json")).unwrap(),
    );
    let policy = "[organization]\nname = \"P\"\n[sources]\nrequests = [\"memory://logs/*.csv\"]\n\
        billing = [{ url = \"memory://bill/focus.csv\", format = \"focus\" }]\ncatalog = \"memory://catalog.json\"\n";
    store.put_memory("policy.toml", policy.as_bytes().to_vec());
    let ctx = Context::new(store);
    close_in_memory(&ctx, "2025-01")
}

/// (file, row) of every row of a quarantine CSV output.
fn listed(closed: &Outputs, path: &str) -> BTreeSet<(String, u64)> {
    let Some(bytes) = closed.get(path) else {
        return BTreeSet::new();
    };
    let mut r = csv::Reader::from_reader(bytes);
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].to_string(), rec[1].parse().unwrap())
        })
        .collect()
}

fn insights(closed: &Outputs) -> serde_json::Value {
    serde_json::from_slice(closed.get("insights.json").unwrap()).unwrap()
}

fn invoices(closed: &Outputs) -> serde_json::Value {
    let month: serde_json::Value =
        serde_json::from_slice(closed.get("invoices.json").unwrap()).unwrap();
    month["invoices"].clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_pipeline_agrees_with_a_naive_reference(files in month_strategy()) {
        let files: Vec<(String, Vec<Row>)> = files
            .into_iter()
            .enumerate()
            .map(|(i, rows)| (format!("memory://logs/part-{i}.csv"), rows))
            .collect();
        let want = reference(&files, &catalog());
        let got = close(&files);
        let m = &got.view;
        prop_assert_eq!(listed(&got.outputs, "quarantine/requests.csv"), want.quarantined.clone());
        prop_assert_eq!(listed(&got.outputs, "quarantine/duplicates.csv"), want.duplicates.clone());
        prop_assert_eq!(m.inputs.quarantined_requests, want.quarantined.len() as u64);
        prop_assert_eq!(m.inputs.duplicates_dropped, want.duplicates.len() as u64);
        prop_assert_eq!(m.inputs.outside_period, want.outside);
        prop_assert_eq!(m.inputs.requests_used, want.used.len() as u64);
        let tokens: BTreeMap<String, u64> = m
            .invoices
            .iter()
            .filter(|i| i.tokens > 0)
            .map(|i| (i.team.clone(), i.tokens))
            .collect();
        let want_tokens: BTreeMap<String, u64> = want
            .tokens_by_team
            .iter()
            .filter(|(_, t)| **t > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        prop_assert_eq!(tokens, want_tokens);
        // The reference's clean rows, closed again, in one file.
        let clean = close(&[("memory://logs/clean.csv".to_string(), want.used.clone())]);
        prop_assert_eq!(invoices(&got.outputs), invoices(&clean.outputs));
        prop_assert_eq!(&m.billed_total, &clean.view.billed_total);
        prop_assert_eq!(&m.unattributed, &clean.view.unattributed);
        // Insights follow the rows' fate: the same as the clean rows give,
        // and as the reference counts them.
        let ins = insights(&got.outputs);
        prop_assert_eq!(&ins, &insights(&clean.outputs));
        let estimated: BTreeMap<String, u64> = ins["estimated_tokens"]["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["team"].as_str().unwrap().to_string(), t["estimated_tokens"].as_u64().unwrap()))
            .collect();
        let want_estimated: BTreeMap<String, u64> = want
            .estimated_by_team
            .iter()
            .filter(|(_, t)| **t > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        prop_assert_eq!(estimated, want_estimated);
        let g = &ins["context_growth"];
        let mut growing = 0u64;
        for turns in want.conversations.values() {
            let mut turns = turns.clone();
            turns.sort();
            let inputs: Vec<u64> = turns.iter().map(|t| t.2).collect();
            if inputs.len() >= 3 && inputs.windows(2).all(|w| w[0] <= w[1]) && inputs.last() > inputs.first() {
                growing += 1;
            }
        }
        prop_assert_eq!(g["conversations"].as_u64(), Some(want.conversations.len() as u64));
        let long = want.conversations.values().filter(|t| t.len() >= 3).count() as u64;
        prop_assert_eq!(g["long_conversations"].as_u64(), Some(long));
        prop_assert_eq!(g["growing"].as_u64(), Some(growing));
    }
}
