//! A month billed in euros and invoiced in dollars (fixtures/fx): each bill
//! line converted at the `[[fx]]` rate of its charge day and rounded once,
//! the rates printed on the invoice lines they touch and in
//! `reconciliation.csv`; a bill currency without a rate stops the run.
//!
//! By hand (EUR → USD 1.0842 from 2025-01-01, 1.0910 from 2025-01-15):
//!
//! | day | line | EUR | × rate | USD |
//! |---|---|---|---|---|
//! | 01-03 | gpt-4o input 4M | 18.45 | 20.003490 | 20.00 |
//! | 01-03 | gpt-4o output 400k | 5.53 | 5.995626 | 6.00 |
//! | 01-15 | gpt-4o output 200k | 2.75 | 3.000250 | 3.00 |
//! | 01-20 | gpt-4o input 2M | 9.17 | 10.004470 | 10.00 |
//! | 01-20 | gpt-4o-mini input 1M | 0.1375 | 0.15001250 | 0.15 |
//! | 01-31 | VAT | 4.12 | 4.494920 | 4.49 |
//!
//! Support logged 1M/100k of 01-03, all of 01-15 and the mini line: 5.00 +
//! 1.50 + 3.00 = 9.50 on gpt-4o, 0.15 on gpt-4o-mini. Search logged 3M/300k
//! of 01-03 and all of 01-20's gpt-4o: 15.00 + 4.50 + 10.00 = 29.50.

use serde_json::Value;

use crate::explain::{read_allocations, texts};
use crate::pdf::{pdf_text, squash};
use crate::util::TestDir;

const POLICY: &str = "fixtures/fx/chargeback.toml";

fn run(t: &TestDir, config: &str) -> crate::util::Output {
    t.run(&["run", "--config", config, "--period", "2025-01", "-q"])
}

fn invoice<'a>(month: &'a Value, team: &str) -> &'a Value {
    month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["team"] == team)
        .unwrap_or_else(|| panic!("no invoice for {team}"))
}

/// Each line of an invoice: description, amount and the rates it names.
fn lines(inv: &Value) -> Vec<(String, String, Option<String>)> {
    inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["description"].as_str().unwrap().to_string(),
                l["amount"].as_str().unwrap().to_string(),
                l.get("fx").and_then(Value::as_str).map(str::to_string),
            )
        })
        .collect()
}

const BOTH_RATES: &str =
    "converted from EUR at 1.0842 (rate of 2025-01-01) and 1.0910 (rate of 2025-01-15)";
const LATER_RATE: &str = "converted from EUR at 1.0910 (rate of 2025-01-15)";

#[test]
fn a_euro_bill_is_converted_at_the_rate_of_each_charge_day() {
    let t = TestDir::with_fixture("fx");
    let out = run(&t, POLICY);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    assert_eq!(month["currency"], "USD");
    // Σ round(cost × rate) per line: 20.00 + 6.00 + 3.00 + 10.00 + 0.15.
    assert_eq!(month["billed_total"], "39.15");
    assert_eq!(month["unattributed"], "0.00");
    assert_eq!(month["ties_to_bill"], true);
    let support = invoice(&month, "support");
    assert_eq!(
        lines(support),
        [
            (
                "gpt-4o · tickets".into(),
                "9.50".into(),
                Some(BOTH_RATES.into())
            ),
            (
                "gpt-4o-mini · triage".into(),
                "0.15".into(),
                Some(LATER_RATE.into())
            ),
        ]
    );
    assert_eq!(support["total"], "9.65");
    let search = invoice(&month, "search");
    assert_eq!(
        lines(search),
        [(
            "gpt-4o · query rewrite".into(),
            "29.50".into(),
            Some(BOTH_RATES.into())
        )]
    );
    // The tax is converted the same way, and says so on the summary.
    let tax = &month["other_billed_charges"][0];
    assert_eq!(tax["amount"], "4.49");
    assert_eq!(
        tax["fx"],
        "converted from EUR 4.12 at 1.0910 (rate of 2025-01-15)"
    );

    // What the bill stated, per provider × day × model, at the end.
    assert_eq!(
        t.read("out/2025-01/reconciliation.csv"),
        "provider,day,model,billed_cost,billed_tokens,logged_tokens,coverage,attributed,unattributed,estimated,catalog_cost,price_variance,bill_currency,bill_cost,fx_rate,fx_rate_date\n\
         openai,2025-01-03,gpt-4o,26,4400000,4400000,1,26.00,0.00,0.00,26,0,EUR,23.98,1.0842,2025-01-01\n\
         openai,2025-01-15,gpt-4o,3,200000,200000,1,3.00,0.00,0.00,3,0,EUR,2.75,1.0910,2025-01-15\n\
         openai,2025-01-20,gpt-4o,10,2000000,2000000,1,10.00,0.00,0.00,10,0,EUR,9.17,1.0910,2025-01-15\n\
         openai,2025-01-20,gpt-4o-mini,0.15,1000000,1000000,1,0.15,0.00,0.00,0.15,0,EUR,0.1375,1.0910,2025-01-15\n"
    );

    // The rate under the line it touched, in HTML and PDF.
    let html = t.read("out/2025-01/invoices/support.html");
    assert!(
        html.contains(&format!("<div class=\"sub\">{BOTH_RATES}</div>")),
        "{html}"
    );
    let pdf = squash(&pdf_text(
        &t.path().join("out/2025-01/invoices/support.pdf"),
    ));
    // Under its line: the row's cells, then the rates.
    assert!(
        pdf.contains(&format!("tickets openai 2 1,300,000 9.50 {BOTH_RATES}")),
        "{pdf}"
    );
    assert!(
        pdf.contains(&format!("triage openai 1 1,000,000 0.15 {LATER_RATE}")),
        "{pdf}"
    );
    let summary = t.read("out/2025-01/summary.html");
    assert!(summary.contains("converted from EUR 4.12 at 1.0910 (rate of 2025-01-15)"));

    // Each billed part of allocations.parquet names what its line stated.
    let df = read_allocations(&t, "out/2025-01");
    let rows: Vec<[Option<String>; 5]> = {
        let cols = [
            "source",
            "billed_cost",
            "bill_currency",
            "bill_cost",
            "fx_rate",
        ]
        .map(|c| texts(&df, c));
        (0..df.height())
            .map(|i| cols.clone().map(|c| c[i].clone()))
            .collect()
    };
    let s = |v: &str| Some(v.to_string());
    assert!(rows.contains(&[
        s("fixtures/fx/billing/focus-2025-01.csv:1"),
        s("20"),
        s("EUR"),
        s("18.45"),
        s("1.0842")
    ]));
    assert!(rows.contains(&[
        s("fixtures/fx/billing/focus-2025-01.csv:5"),
        s("0.15"),
        s("EUR"),
        s("0.1375"),
        s("1.0910")
    ]));
    assert!(rows.iter().all(|r| r[2].as_deref() == Some("EUR")));
}

#[test]
fn a_bill_currency_without_a_rate_on_its_day_stops_the_run() {
    let t = TestDir::with_fixture("fx");
    let policy = t.read(POLICY);
    let first = policy.find("[[fx]]").unwrap();
    let second = first + 1 + policy[first + 1..].find("[[fx]]").unwrap();
    // Only the rate from 2025-01-15: the rows of 01-03 have none.
    t.write(
        "late.toml",
        &format!("{}{}", &policy[..first], &policy[second..]),
    );
    let out = run(&t, "late.toml");
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        "error: fixtures/fx/billing/focus-2025-01.csv:1:BillingCurrency: billed in `EUR` on 2025-01-03, but no `[[fx]]` rate from `EUR` to `USD` is in force that day (the first is in force from 2025-01-15); 1 more row of the file has no rate on its day either (row 2)\n\
         hint: add the rate in force from that day to the policy, such as\n  \
         [[fx]]\n  from = \"EUR\"\n  to = \"USD\"\n  rate = \"…\"\n  effective_from = \"2025-01-03\"\n"
    );
    assert!(!t.exists("out"), "nothing is published");

    // No rate at all: every row is named.
    t.write("none.toml", &policy[..first]);
    let out = run(&t, "none.toml");
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.starts_with(
            "error: fixtures/fx/billing/focus-2025-01.csv:1:BillingCurrency: billed in `EUR` on 2025-01-03, but no `[[fx]]` rate from `EUR` to `USD` is in force that day; 5 more rows of the file have no rate on their day either (rows 2, 3, 4, 5, 6)\n"
        ),
        "{}",
        out.stderr
    );
    assert!(!t.exists("out"), "nothing is published");
}

#[test]
fn explain_shows_each_line_as_billed_and_its_rate() {
    let t = TestDir::with_fixture("fx");
    let out = t.run(&[
        "explain", "--config", POLICY, "--period", "2025-01", "--team", "support", "--line", "1",
        "-q",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains(
            "  line costs converted from the bill's currency at the `[[fx]]` rate of the charge day, rounded once:\n\
             \x20    fixtures/fx/billing/focus-2025-01.csv:1  EUR 18.45 × 1.0842 (rate of 2025-01-01) = 20.00\n\
             \x20    fixtures/fx/billing/focus-2025-01.csv:2  EUR 5.53 × 1.0842 (rate of 2025-01-01) = 6.00\n\
             \x20    fixtures/fx/billing/focus-2025-01.csv:3  EUR 2.75 × 1.0910 (rate of 2025-01-15) = 3.00\n"
        ),
        "{}",
        out.stdout
    );
}
