//! Provider bills as they really come (fixtures/openai, fixtures/anthropic):
//! each month billed by one export shape, detected from the file (the
//! policies give no `format`), closed by the real binary, totals checked
//! against the bill summed by hand.
//!
//! OpenAI (dollars as JSON numbers or CSV text):
//! * 2025-01, costs page by project + line item: support 2.0 + 0.3 + 1.0 +
//!   0.25 + 0.15 = 3.70; search 3.0 + 0.45 + 0.3 + 0.06 = 3.81; `Image
//!   models` 0.04 names no model, so stays unattributed; billed 7.55.
//! * 2025-02, two ungrouped pages as JSON lines: 2.2 on 02-10 split by
//!   catalog cost (support gpt-4o 0.65, search gpt-4o-mini 0.45 → 1.30 and
//!   0.90), 1.0 on 02-11 all search; the 9.99 bucket of 01-31 is another
//!   month. Billed 3.20: support 1.30, search 1.90.
//! * 2025-03, dashboard CSV: 5.0 + 5.0 + 1.5 by project and line item and an
//!   org-level 0.003835980000000000000000000000 split by catalog cost
//!   (5 : 6.5); blank rows are empty days; the 04-01 row is another month.
//!   Billed 11.50383598 → 11.50: support 5.00, search 6.50.
//! * 2025-04, costs by project only (no model) with the usage API's pages
//!   by project and model: proj_support 6.30 is cut at catalog cost into
//!   gpt-4o input 0.8M 4.00, cached 0.2M 0.50, output 0.1M 1.50 and
//!   gpt-4o-mini input 2M 0.30; proj_search 0.90 into mini input 4M 0.60
//!   and output 0.5M 0.30. The logs have 0.4M of gpt-4o's 0.8M input:
//!   2.00 stays unattributed. Billed 7.20: support 4.30, search 0.90.
//!
//! Anthropic:
//! * 2025-08, cost report in cents: support 37.0371 + 6 + 3.75 + 30 cents =
//!   $0.767871; research 50 + 50 + 1 (web search) + 30 + 15 (default
//!   workspace) = $1.46; billed 2.227871 → 2.23 = 0.77 + 1.46.
//! * 2025-09, console CSV in dollars with display names: support 3.00 +
//!   1.50 + "1,200.00" = 1204.50; research 2.00 + 0.10 + 0.03 + 0.0075 +
//!   0.015 = 2.1525; billed 1206.6525 → 1206.65 = 1204.50 + 2.15.
//! * 2025-10, cost report by model and token type (no quantities) with the
//!   usage report: support's sonnet input 300 cents is for 1M uncached
//!   tokens, of which the logs have 0.8M → 2.40 attributed, 0.60 not;
//!   output 1.50, cache read 0.15 and 5m cache write 0.75 fully covered.
//!   Billed 8.40: support 4.80, research 3.00, unattributed 0.60.

use serde_json::Value;

use crate::util::{TestDir, usage_cost};

fn close(fixture: &str, period: &str) -> (TestDir, Value) {
    let t = TestDir::with_fixture(fixture);
    let config = format!("fixtures/{fixture}/chargeback.toml");
    let out = t.run(&["run", "--config", &config, "--period", period]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value =
        serde_json::from_str(&t.read(&format!("out/{period}/invoices.json"))).unwrap();
    (t, month)
}

fn assert_month(month: &Value, billed: &str, unattributed: &str, teams: &[(&str, &str)]) {
    assert_eq!(month["billed_total"], billed, "{month:#}");
    assert_eq!(month["unattributed"], unattributed);
    assert_eq!(month["estimated_total"], "0.00");
    assert_eq!(month["ties_to_bill"], true);
    assert_eq!(month["inputs"]["quarantined_billing_rows"], 0);
    for (team, cost) in teams {
        assert_eq!(usage_cost(month, team), *cost, "{team}");
    }
}

#[test]
fn openai_costs_page_by_project_and_line_item() {
    let (t, month) = close("openai", "2025-01");
    assert_month(
        &month,
        "7.55",
        "0.04",
        &[("support", "3.70"), ("search", "3.81")],
    );
    // The line item that names no model is reported, not guessed.
    let exceptions = t.read("out/2025-01/exceptions.csv");
    assert!(
        exceptions.contains("billed_model_unknown") && exceptions.contains("Image models"),
        "{exceptions}"
    );
}

#[test]
fn openai_ungrouped_pages_as_json_lines() {
    let (_t, month) = close("openai", "2025-02");
    assert_month(
        &month,
        "3.20",
        "0.00",
        &[("support", "1.30"), ("search", "1.90")],
    );
}

#[test]
fn openai_dashboard_cost_csv() {
    let (_t, month) = close("openai", "2025-03");
    assert_month(
        &month,
        "11.50",
        "0.00",
        &[("support", "5.00"), ("search", "6.50")],
    );
}

#[test]
fn anthropic_cost_report_in_cents() {
    let (_t, month) = close("anthropic", "2025-08");
    assert_month(
        &month,
        "2.23",
        "0.00",
        &[("support", "0.77"), ("research", "1.46")],
    );
}

#[test]
fn anthropic_console_cost_csv() {
    let (_t, month) = close("anthropic", "2025-09");
    assert_month(
        &month,
        "1206.65",
        "0.00",
        &[("support", "1204.50"), ("research", "2.15")],
    );
}

#[test]
fn openai_costs_by_project_cut_by_the_usage_api() {
    let (t, month) = close("openai", "2025-04");
    assert_month(
        &month,
        "7.20",
        "2.00",
        &[("support", "4.30"), ("search", "0.90")],
    );
    // The provider's token counts are the billed quantities.
    let recon = t.read("out/2025-04/reconciliation.csv");
    assert!(
        recon.contains("openai,2025-04-02,gpt-4o,6,1100000,700000,0.6364,4.00,2.00,"),
        "{recon}"
    );
    assert!(
        recon.contains("openai,2025-04-02,gpt-4o-mini,1.2,6500000,6500000,1,1.20,0.00,"),
        "{recon}"
    );
}

#[test]
fn anthropic_cost_report_with_the_usage_report() {
    let (t, month) = close("anthropic", "2025-10");
    assert_month(
        &month,
        "8.40",
        "0.60",
        &[("support", "4.80"), ("research", "3.00")],
    );
    let exceptions = t.read("out/2025-10/exceptions.csv");
    assert!(
        exceptions.contains("logs cover 1600000 of 1800000 billed tokens (88.9%)"),
        "{exceptions}"
    );
}

/// The fixture's policy with `format` given for its billing source.
fn with_format(t: &TestDir, fixture: &str, format: &str) {
    let path = format!("fixtures/{fixture}/chargeback.toml");
    let policy = t.read(&path);
    let from = format!("billing = [{{ url = \"fixtures/{fixture}/billing/{{period}}/*\" }}]");
    let to = format!(
        "billing = [{{ url = \"fixtures/{fixture}/billing/{{period}}/*\", format = \"{format}\" }}]"
    );
    assert!(policy.contains(&from), "{policy}");
    t.write(&path, &policy.replace(&from, &to));
}

#[test]
fn a_file_that_is_not_a_costs_page_is_refused() {
    let t = TestDir::with_fixture("openai");
    let bill = "fixtures/openai/billing/2025-01/costs_2025-01_by_project_line_item.json";
    t.write(
        bill,
        "{\"object\": \"list\", \"rows\": [{\"cost\": 1.5}]}\n",
    );

    // Undetectable without a format.
    let out = t.run(&[
        "run",
        "-c",
        "fixtures/openai/chargeback.toml",
        "-p",
        "2025-01",
    ]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains(bill), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot tell what bill this is"),
        "{}",
        out.stderr
    );

    // Said to be costs pages: the message names the file, what it found
    // and what a page holds.
    with_format(&t, "openai", "openai_costs");
    let out = t.run(&[
        "run",
        "-c",
        "fixtures/openai/chargeback.toml",
        "-p",
        "2025-01",
    ]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    let err = &out.stderr;
    assert!(err.contains(bill), "{err}");
    assert!(
        err.contains("not OpenAI costs pages: missing field `data`"),
        "{err}"
    );
    assert!(err.contains("found `object`, `rows`, `cost`"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("organization.costs.result"),
        "{err}"
    );
    assert!(!t.exists("out/2025-01/manifest.json"));
}

#[test]
fn a_csv_that_is_not_a_console_cost_export_is_refused() {
    let t = TestDir::with_fixture("anthropic");
    let bill = "fixtures/anthropic/billing/2025-09/claude_api_cost_2025-09.csv";
    t.write(bill, "date,model,cost\n2025-09-04,Claude Sonnet 4.5,3.00\n");
    with_format(&t, "anthropic", "anthropic_cost_csv");
    let out = t.run(&[
        "run",
        "-c",
        "fixtures/anthropic/chargeback.toml",
        "-p",
        "2025-09",
    ]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    let err = &out.stderr;
    assert!(err.contains(bill), "{err}");
    assert!(
        err.contains("not an Anthropic console cost CSV: missing `usage_date_utc`, `cost_usd`; found `date`, `model`, `cost`"),
        "{err}"
    );
    assert!(
        err.contains("hint: expected the header `usage_date_utc,model,workspace"),
        "{err}"
    );
}
