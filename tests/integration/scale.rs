//! A generated month of half a million requests (`examples/generate_month.rs`,
//! the benchmark's generator) closed end to end by the real binary: every
//! distinct request is counted once and every duplicate dropped (against
//! the generator's own totals), money is conserved to the cent, and a rerun
//! gives the same bytes. How fast is measured by `bench/`, never asserted;
//! the benchmark's 1M–100M months are where size is exercised, so the size
//! here is what the month needs to span several files and streaming
//! morsels (Polars' are 100,000 rows), twice over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde_json::Value;

use crate::util::TestDir;

#[allow(dead_code)]
#[path = "../../examples/generate_month.rs"]
mod generate_month;

const ROWS: usize = 500_000;

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn amount(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("an amount string, got {v}"))
        .parse()
        .unwrap()
}

#[test]
fn a_generated_month_of_half_a_million_requests_closes_exactly_and_reproducibly() {
    let t = TestDir::new();
    let month = t.path().join("month");
    let generated = generate_month::generate(&generate_month::Args {
        rows: ROWS,
        files: 4,
        policy: true,
        ..generate_month::Args::new(&month)
    })
    .expect("generating the month");
    assert_eq!(generated.rows, ROWS);
    assert_eq!(generated.rows, generated.requests + generated.duplicates);
    assert!(generated.duplicates > 0);

    let policy = month.join("chargeback.toml");
    let policy = policy.to_str().unwrap();
    let first = t.run(&["run", "-c", policy, "-p", "2025-01", "-o", "first"]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    let again = t.run(&["run", "-c", policy, "-p", "2025-01", "-o", "again", "-q"]);
    assert_eq!(again.code, 0, "{}", again.transcript());

    // Same inputs, same bytes: every output, the manifest included.
    let (a, b) = (
        files(&t.path().join("first")),
        files(&t.path().join("again")),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs between runs", path.display());
    }

    let m: Value = serde_json::from_slice(&a[Path::new("invoices.json")]).unwrap();
    // Exact de-duplication: each distinct request counted once, each copy
    // dropped, nothing else lost.
    let inputs = &m["inputs"];
    assert_eq!(inputs["request_rows"], ROWS as u64);
    assert_eq!(inputs["duplicates_dropped"], generated.duplicates as u64);
    assert_eq!(inputs["quarantined_requests"], 0);
    assert_eq!(inputs["outside_period"], 0);
    assert_eq!(inputs["requests_used"], generated.requests as u64);
    let duplicates = String::from_utf8(a[Path::new("quarantine/duplicates.csv")].clone()).unwrap();
    assert_eq!(duplicates.lines().count(), generated.duplicates + 1);
    let invoices = m["invoices"].as_array().unwrap();
    let tokens: u64 = invoices.iter().map(|i| i["tokens"].as_u64().unwrap()).sum();
    let requests: u64 = invoices
        .iter()
        .map(|i| i["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(tokens, generated.tokens.iter().sum::<u64>());
    assert_eq!(requests, generated.requests as u64);

    // Conservation, to the cent: every team's usage cost plus the
    // unattributed bucket is the bill plus the estimate.
    let teams: Decimal = invoices.iter().map(|i| amount(&i["usage_cost"])).sum();
    assert_eq!(
        teams + amount(&m["unattributed"]),
        amount(&m["billed_total"]) + amount(&m["estimated_total"])
    );
    let billed = amount(&m["billed_total"]);
    assert!(
        (billed - generated.usage_total).abs() <= Decimal::new(5, 3),
        "billed {billed}, the bill's usage lines {}",
        generated.usage_total
    );
    assert_eq!(m["ties_to_bill"], true);
    let charged: Decimal = invoices.iter().map(|i| amount(&i["total"])).sum();
    assert_eq!(charged, amount(&m["charged_total"]));

    // The same rows cut into other files close to the same month: only
    // where the duplicates were found (file, row) may differ.
    generate_month::generate(&generate_month::Args {
        rows: ROWS,
        files: 7,
        policy: true,
        ..generate_month::Args::new(&month)
    })
    .expect("generating the month again");
    let split = t.run(&["run", "-c", policy, "-p", "2025-01", "-o", "split", "-q"]);
    assert_eq!(split.code, 0, "{}", split.transcript());
    let c = files(&t.path().join("split"));
    for name in [
        "invoices.json",
        "ledger.csv",
        "reconciliation.csv",
        "budgets.json",
        "exceptions.csv",
        "summary.html",
    ] {
        assert!(
            a[Path::new(name)] == c[Path::new(name)],
            "{name} depends on the file split"
        );
    }
}
