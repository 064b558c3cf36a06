//! `chargeback compare` on the demo month: a model move, caching, other
//! terms, a hypothetical team's draft invoice, and scenarios that are
//! wrong, each error word for word.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::util::{Output, TestDir};

const POLICY: &str = "fixtures/demo/chargeback.toml";

fn ok(out: Output) -> Output {
    assert_eq!(out.code, 0, "{}", out.transcript());
    out
}

fn d(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a string"))
        .parse()
        .unwrap()
}

fn demo() -> TestDir {
    let t = TestDir::with_fixture("demo");
    t.copy_fixture("scenarios");
    t
}

fn compare(t: &TestDir, scenario: &str) -> (Output, Value) {
    let out = ok(t.run(&[
        "compare", "-c", POLICY, "-p", "2025-01", "-s", scenario, "-o", "cmp/", "-q",
    ]));
    let v = serde_json::from_str(&t.read("cmp/compare.json")).unwrap();
    (out, v)
}

fn teams(v: &Value) -> BTreeMap<String, Value> {
    v["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["team"].as_str().unwrap().to_string(), t.clone()))
        .collect()
}

fn round2(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

#[test]
fn support_moving_from_gpt_4o_to_gpt_4o_mini() {
    let t = demo();
    let out = ok(t.run(&[
        "compare",
        "-c",
        POLICY,
        "-p",
        "2025-01",
        "-s",
        "fixtures/scenarios/support-gpt-4o-to-mini.toml",
    ]));
    assert_eq!(
        out.stdout,
        "compared 2025-01 under `fixtures/scenarios/support-gpt-4o-to-mini.toml` → out/2025-01/compare/support-gpt-4o-to-mini/\n  support             338.19 →       296.25 USD  (-41.94 -12.4%)\n  all                 725.66 →       683.72 USD  (-41.94 -5.8%)\n"
    );
    let v: Value =
        serde_json::from_str(&t.read("out/2025-01/compare/support-gpt-4o-to-mini/compare.json"))
            .unwrap();
    let by = teams(&v);
    let s = &by["support"];
    assert_eq!(s["current_cost"], "338.19");
    assert_eq!(s["calculated_monthly_cost"], "296.25");
    assert_eq!(s["comparison_delta"]["amount"], "-41.94");
    assert_eq!(s["comparison_delta"]["percent"], "-12.4");
    // By hand from the demo's logs (pyarrow, deduplicated by request id):
    // support sent 1,058 requests to gpt-4o and its dated alias, 5,238,261
    // uncached input, 1,606,656 cached input and 392,082 output tokens;
    // at gpt-4o-mini's 0.15 / 0.075 / 0.60 per Mtok that is 1.14148755.
    assert_eq!(
        s["user_selections"],
        serde_json::json!([
            "move gpt-4o → gpt-4o-mini: 1,058 requests, 7,236,999 tokens; USD 36.09 as attributed → USD 1.14 at catalog prices"
        ])
    );
    // Cost-plus 20% and the fixed fee of 250.00, on the new usage cost.
    let usage = d(&s["calculated_usage_cost"]);
    assert_eq!(usage, Decimal::new(3854, 2));
    assert_eq!(
        d(&s["calculated_monthly_cost"]),
        usage + round2(usage * Decimal::new(20, 2)) + Decimal::new(25000, 2)
    );
    for (id, team) in &by {
        if id != "support" {
            assert_eq!(team["comparison_delta"]["amount"], "0.00", "{id}");
            assert_eq!(team["user_selections"], serde_json::json!([]), "{id}");
        }
    }
    // The bill would have been lower by the moved share; the moved
    // traffic is estimated; every cent still ties.
    let tot = &v["totals"];
    assert_eq!(tot["current_billed"], "373.74");
    assert_eq!(tot["calculated_billed"], "337.65");
    assert_eq!(tot["calculated_estimated"], "7.39");
    let usage_sum: Decimal = by.values().map(|t| d(&t["calculated_usage_cost"])).sum();
    assert_eq!(
        usage_sum + d(&tot["unattributed"]),
        d(&tot["calculated_billed"]) + d(&tot["calculated_estimated"])
    );
    let html = t.read("out/2025-01/compare/support-gpt-4o-to-mini/compare.html");
    assert!(html.contains("What if support moved from gpt-4o to gpt-4o-mini?"));
    assert!(html.contains("296.25"));
    // The month itself was not published by compare.
    assert!(!t.exists("out/2025-01/manifest.json"));
}

#[test]
fn the_same_scenario_gives_the_same_bytes() {
    let t = demo();
    compare(&t, "fixtures/scenarios/support-gpt-4o-to-mini.toml");
    let first = (t.read("cmp/compare.json"), t.read("cmp/compare.html"));
    compare(&t, "fixtures/scenarios/support-gpt-4o-to-mini.toml");
    assert_eq!(
        first,
        (t.read("cmp/compare.json"), t.read("cmp/compare.html"))
    );
}

#[test]
fn an_empty_scenario_is_the_month_as_run() {
    let t = demo();
    t.write("none.toml", "description = \"nothing changes\"\n");
    ok(t.run(&["run", "-c", POLICY, "-p", "2025-01", "-q"]));
    let (_, v) = compare(&t, "none.toml");
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let by = teams(&v);
    for inv in month["invoices"].as_array().unwrap() {
        let c = &by[inv["team"].as_str().unwrap()];
        assert_eq!(c["current_cost"], inv["total"]);
        assert_eq!(c["calculated_monthly_cost"], inv["total"]);
        assert_eq!(c["calculated_usage_cost"], inv["usage_cost"]);
    }
    assert_eq!(
        v["totals"]["calculated_monthly_cost"],
        month["charged_total"]
    );
    assert_eq!(v["totals"]["calculated_billed"], month["billed_total"]);
}

#[test]
fn caching_and_other_terms() {
    let t = demo();
    let (_, v) = compare(&t, "fixtures/scenarios/cache-and-terms.toml");
    let by = teams(&v);
    let s = &by["support"];
    let sel: Vec<&str> = s["user_selections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(sel.len(), 2, "{sel:?}");
    assert_eq!(sel[1], "terms: platform fee 15% → 10%");
    assert!(
        sel[0].starts_with("cache hit rate 30% on ") && sel[0].ends_with(" less at catalog prices"),
        "{sel:?}"
    );
    assert!(d(&s["calculated_usage_cost"]) < d(&s["current_usage_cost"]));
    // search on cost-plus at the organisation's default markup (none)
    // and every tiered team's platform fee at 10% instead of 15%.
    let search = &by["search"];
    assert_eq!(search["calculated_model"], "cost-plus");
    assert_eq!(
        search["user_selections"],
        serde_json::json!([
            "terms: chargeback model tiered → cost-plus",
            "terms: platform fee 15% → 10%"
        ])
    );
    assert_eq!(
        search["calculated_monthly_cost"], search["calculated_usage_cost"],
        "cost-plus without a markup charges the usage"
    );
    let legal = &by["legal"];
    assert_eq!(
        legal["user_selections"],
        serde_json::json!(["terms: platform fee 15% → 10%"])
    );
    // marketing sets its own platform fee: the default does not touch it.
    assert_eq!(by["marketing"]["user_selections"], serde_json::json!([]));
    assert_eq!(by["marketing"]["comparison_delta"]["amount"], "0.00");
}

#[test]
fn a_hypothetical_team_gets_a_draft_invoice() {
    let t = demo();
    let (out, v) = compare(&t, "fixtures/scenarios/new-team-voice.toml");
    let by = teams(&v);
    let voice = &by["voice"];
    assert_eq!(voice["hypothetical"], true);
    assert_eq!(voice["current_cost"], "0.00");
    assert_eq!(voice["comparison_delta"]["percent"], Value::Null);
    assert_eq!(voice["draft_invoice"], "invoices/voice-DRAFT.html");
    // 120M input, 40M cached input, 30M output tokens of gpt-4o-mini at
    // 0.15 / 0.075 / 0.60 per Mtok: 18.00 + 3.00 + 18.00 = 39.00; and
    // 2M input + 0.5M output of claude-3-5-haiku at 1.25 / 5.00: 5.00.
    assert_eq!(voice["calculated_usage_cost"], "44.00");
    // Cost-plus 15% and the platform's fixed fee of 100.00.
    assert_eq!(voice["calculated_monthly_cost"], "150.60");
    assert!(out.stdout.is_empty());
    let html = t.read("cmp/invoices/voice-DRAFT.html");
    assert!(
        html.contains("CB-2025-01-voice-DRAFT"),
        "the draft's number"
    );
    assert!(html.contains("DRAFT · Internal invoice"));
    assert!(html.contains("Voice Assistant"));
    let pdf = t.path().join("cmp/invoices/voice-DRAFT.pdf");
    let text = std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("DRAFT"), "{text}");
    assert!(text.contains("CB-2025-01-voice-DRAFT"), "{text}");
    // Existing teams do not get drafts.
    assert_eq!(
        t.files("cmp/invoices"),
        vec!["voice-DRAFT.html", "voice-DRAFT.pdf"]
    );
}

#[test]
fn scenarios_that_are_wrong_stop_with_the_line_to_fix() {
    let t = demo();
    let cases = [
        (
            "[[move]]\nteam = \"suport\"\nfrom = \"gpt-4o\"\nto = \"gpt-4o-mini\"\n",
            "error: s.toml: team `suport` is not in the policy, the month's logs or a [[plan]] of the scenario\nhint: check the team id; a hypothetical team needs a [[plan]] with its monthly tokens\n",
        ),
        (
            "[[move]]\nteam = \"support\"\nfrom = \"gpt-4o\"\nto = \"gpt-5-mini\"\n",
            "error: s.toml:1:1: model `gpt-5-mini` is not in the catalog\nhint: the catalog has anthropic/claude-3-5-haiku, anthropic/claude-3-5-sonnet, mistral/mistral-large, openai/gpt-4o, openai/gpt-4o-mini\n",
        ),
        (
            "[teams.support]\nmarkp = \"0.1\"\n",
            "error: s.toml:1:1: [teams.support]: unknown field `markp`, expected one of `name`, `cost_center`, `model`, `markup`, `fixed_fee`, `platform_fee_rate`, `tier_mode`, `tiers`, `budget`, `alert_threshold`, `budget_basis`, `gl_account`, `outcome_rates`, `seats`, `seat_rate`\n",
        ),
        (
            "[[cache]]\nhit_rate = \"1.5\"\n",
            "error: s.toml:1:1: `hit_rate` is `1.5`, not between 0 and 1\nhint: a hit rate is a fraction: `\"0.30\"` is 30%\n",
        ),
        (
            "[teams.voice]\nmodel = \"cost_plus\"\n",
            "error: s.toml: [teams.voice] is not a team of the policy or the month's logs, and has no [[plan]]\nhint: check the team id; a hypothetical team needs a [[plan]] with its monthly tokens\n",
        ),
    ];
    for (scenario, stderr) in cases {
        t.write("s.toml", scenario);
        let out = t.run(&["compare", "-c", POLICY, "-p", "2025-01", "-s", "s.toml"]);
        assert_eq!((out.code, out.stderr.as_str()), (1, stderr), "{scenario}");
    }
    let out = t.run(&["compare", "-c", POLICY, "-p", "2025-01", "-s", "nope.toml"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "error: nope.toml: no such file\nhint: check the `--scenario` path; fixtures/scenarios/ has worked examples\n"
        )
    );
    assert!(!t.exists("out"), "nothing written");
}

#[test]
fn one_use_case_moves_alone() {
    let t = demo();
    t.write(
        "s.toml",
        "[[move]]\nteam = \"support\"\nuse_case = \"thread-summary\"\nfrom = \"gpt-4o\"\nto = \"gpt-4o-mini\"\n",
    );
    ok(t.run(&["run", "-c", POLICY, "-p", "2025-01", "-q"]));
    let (_, v) = compare(&t, "s.toml");
    let s = &teams(&v)["support"];
    let sel = s["user_selections"][0].as_str().unwrap();
    assert!(
        sel.starts_with("move gpt-4o → gpt-4o-mini (use case `thread-summary`): "),
        "{sel}"
    );
    // Only that line's share leaves the bill: its 15.74 as invoiced, give
    // or take the cent rounding hands out.
    let moved: Decimal = sel
        .split("; USD ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (moved - Decimal::new(1574, 2)).abs() <= Decimal::new(1, 2),
        "{sel}"
    );
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let inv = month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["team"] == "support")
        .unwrap();
    assert_eq!(s["current_usage_cost"], inv["usage_cost"]);
    assert!(d(&s["calculated_usage_cost"]) > d(&inv["usage_cost"]) - Decimal::new(3609, 2));
}
