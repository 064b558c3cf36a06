//! Value-based charging on the mini month, by hand: outcomes from the
//! request logs' `outcome` / `outcome_count` columns and from an outcome
//! source, seats stated and seats counted as distinct users, each
//! following its row's fate (duplicates, quarantined rows, other months
//! and, under `failed_requests = "exclude"`, failed requests count
//! nothing).
//!
//! By hand (the mini month's usage, see mini.rs): support's usage is 6.50
//! (gpt-4o, r01) + 0.15 (gpt-4o-mini, r03, a failed request billed by
//! policy) = 6.65; copilot's 0.90 (r04 and r10, estimated). Support counts
//! `resolved_ticket` 2 (r01) + 5 (r03) from the logs and 2 from the ticket
//! export (T-1 and T-2; T-1's repeat counts once) = 9 × 0.50 = 4.50;
//! `article_draft` has a rate and none counted: 0.00; 40 seats × 2.00 =
//! 80.00; the fixed fee 250.00: 334.50, the usage offset −6.65 taking the
//! usage lines back to what is charged. Margin 84.50 − 6.65 = 77.85; cost
//! per outcome 6.65 / 12 outcomes counted (the 3 unrated escalations too)
//! = 0.5542. Copilot states no seats: its distinct
//! users in January are `dave` (r04) and `erin` (r10; r11 is February,
//! `frank` does not count) = 2 × 2.00 = 4.00.

use serde_json::Value;

use crate::util::TestDir;

const HEADER: &str = "request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status,outcome,outcome_count,user\n";

/// The mini logs with outcomes and users; every row of the fixture kept,
/// so its usage is the mini month's.
const GATEWAY_A: &str = "\
r01,2025-01-03T10:00:00Z,openai,gpt-4o,proj_a,support,tickets,1000000,0,0,100000,ok,resolved_ticket,2,alice
r02,2025-01-03T11:00:00Z,openai,gpt-4o-2024-08-06,proj_a,search,query rewrite,3000000,0,0,300000,ok,query_answered,,bob
r03,2025-01-04T09:00:00Z,openai,gpt-4o-mini,proj_a,support,triage,1000000,0,0,0,error,resolved_ticket,5,carol
r04,2025-01-05T08:00:00Z,anthropic,Claude 3.5 Sonnet,wrkspc_1,copilot,completions,100000,0,0,10000,ok,,,dave
r05,2025-01-06T08:00:00Z,openai,gpt-4o,proj_a,,,10,0,0,10,ok,,,
r06,2025-01-06T09:00:00Z,openai,gpt-4o,proj_a,support,tickets,abc,0,0,10,ok,resolved_ticket,100,eve
";

const GATEWAY_B: &str = "\
r02,2025-01-03T11:00:00Z,openai,gpt-4o-2024-08-06,proj_a,search,query rewrite,3000000,0,0,300000,ok,query_answered,,mallory
r07,yesterday,openai,gpt-4o,proj_a,search,query rewrite,10,0,0,10,ok,,,zed
r08,2025-01-07T10:00:00Z,openai,gpt-5-ultra,proj_a,search,query rewrite,10,0,0,10,ok,,,
r09,2025-01-07T11:00:00Z,openai,gpt-4o,proj_a,search,query rewrite,-5,0,0,10,ok,,,
r10,2025-02-01T00:30:00+01:00,anthropic,claude-3-5-sonnet,wrkspc_1,copilot,completions,100000,0,0,10000,ok,,, erin
r11,2025-02-02T10:00:00Z,anthropic,claude-3-5-sonnet,wrkspc_1,copilot,completions,999999,0,0,999999,ok,,,frank
";

/// The ticket system's export: two tickets, one repeated, one outcome
/// support has no rate for, one of December, two bad rows and a team no
/// invoice is issued to.
const TICKETS: &str = "\
timestamp,team,outcome,count,reference
2025-01-10T09:00:00Z,support,resolved_ticket,1,T-1
2025-01-11T09:00:00Z,support,resolved_ticket,1,T-2
2025-01-12T09:00:00Z,support,resolved_ticket,1,T-1
2025-01-12T10:00:00Z,support,escalation,3,T-3
2024-12-31T23:00:00Z,support,resolved_ticket,1,T-0
2025-01-13T09:00:00Z,support,resolved_ticket,x,T-4
2025-01-14T09:00:00Z,,resolved_ticket,1,T-5
2025-01-15T09:00:00Z,ghost,resolved_ticket,3,
";

const TEAMS: &str = r#"
[teams.support]
name = "Customer Support"
cost_center = "CC-4100"
model = "value_based"
fixed_fee = "250.00"
seats = 40
seat_rate = "2.00"

[teams.support.outcome_rates]
resolved_ticket = "0.50"
article_draft = "0.10"

[teams.search]
name = "Search <Relevance> & Ranking"
cost_center = "CC-4200"
budget = "100.00"

[teams.copilot]
name = "Developer Copilot"
cost_center = "CC-4300"
model = "value_based"
seat_rate = "2.00"
"#;

/// The mini fixture with the logs above, the ticket export as an outcome
/// source and value-based terms for support and copilot; `failed` is the
/// `failed_requests` policy.
fn value_month(failed: &str) -> TestDir {
    let t = TestDir::with_fixture("mini");
    t.write(
        "fixtures/mini/requests/gateway-a.csv",
        &format!("{HEADER}{GATEWAY_A}"),
    );
    t.write(
        "fixtures/mini/requests/gateway-b.csv",
        &format!("{HEADER}{GATEWAY_B}"),
    );
    t.write("tickets/tickets-2025-01.csv", TICKETS);
    let policy = t.read("fixtures/mini/chargeback.toml");
    let head = policy.split("[teams.support]").next().unwrap().replace(
        "catalog = \"fixtures/mini/model-catalog.json\"\n",
        "catalog = \"fixtures/mini/model-catalog.json\"\noutcomes = [\"tickets/tickets-{period}.csv\"]\n",
    );
    let head = head.replace(
        "failed_requests = \"bill\"",
        &format!("failed_requests = \"{failed}\""),
    );
    t.write("value.toml", &format!("{head}{TEAMS}"));
    t
}

const RUN: [&str; 6] = ["run", "--config", "value.toml", "--period", "2025-01", "-q"];

fn invoice<'a>(month: &'a Value, team: &str) -> &'a Value {
    month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["team"] == team)
        .unwrap_or_else(|| panic!("no invoice for {team}"))
}

fn lines(inv: &Value) -> Vec<(String, String, String)> {
    inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["description"].as_str().unwrap().to_string(),
                l["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn d(v: &Value) -> chargeback::money::Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn outcomes_and_seats_are_charged_by_hand() {
    let t = value_month("bill");
    let out = t.run(&RUN);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();

    let support = invoice(&month, "support");
    let l = |k: &str, desc: &str, a: &str| (k.to_string(), desc.to_string(), a.to_string());
    assert_eq!(
        lines(support),
        vec![
            l("usage", "gpt-4o · tickets", "6.50"),
            l("usage", "gpt-4o-mini · triage", "0.15"),
            l(
                "usage_offset",
                "Usage cost not charged: priced by outcomes and seats",
                "-6.65"
            ),
            l("outcome_charge", "Outcome article_draft: 0 × 0.10", "0.00"),
            l(
                "outcome_charge",
                "Outcome resolved_ticket: 9 × 0.50",
                "4.50"
            ),
            l("seat_charge", "40 seats × 2.00", "80.00"),
            l("fixed_fee", "Fixed platform fee", "250.00"),
        ]
    );
    assert_eq!(support["chargeback_model"], "value-based");
    assert_eq!(support["usage_cost"], "6.65");
    assert_eq!(support["outcome_charges"], "4.50");
    assert_eq!(support["total"], "334.50");
    let value = &support["value"];
    assert_eq!(
        value["outcomes"],
        serde_json::json!([
            {"outcome": "article_draft", "count": 0, "rate": "0.10", "amount": "0.00"},
            {"outcome": "escalation", "count": 3, "rate": null, "amount": null},
            {"outcome": "resolved_ticket", "count": 9, "rate": "0.50", "amount": "4.50"},
        ])
    );
    assert_eq!(value["outcome_count"], 12);
    assert_eq!(
        value["seats"],
        serde_json::json!({"seats": 40, "basis": "policy", "rate": "2.00", "amount": "80.00"})
    );
    // alice and carol: r06's eve was quarantined.
    assert_eq!(value["users"], 2);
    assert_eq!(value["value_charges"], "84.50");
    assert_eq!(value["usage_cost"], "6.65");
    assert_eq!(value["margin"], "77.85");
    // 6.65 over all 12 outcomes counted, the unrated ones too.
    assert_eq!(value["cost_per_outcome"], "0.5542");

    let copilot = invoice(&month, "copilot");
    assert_eq!(
        lines(copilot)[1..],
        [
            l(
                "usage_offset",
                "Usage cost not charged: priced by outcomes and seats",
                "-0.90"
            ),
            l(
                "seat_charge",
                "2 seats (distinct users in the month) × 2.00",
                "4.00"
            ),
        ]
    );
    assert_eq!(copilot["total"], "4.00");
    assert_eq!(copilot["value"]["margin"], "3.10");
    assert_eq!(copilot["value"]["cost_per_outcome"], Value::Null);
    // Other models' invoices carry no value view.
    assert!(invoice(&month, "search").get("value").is_none());

    // The money rules hold: usage is attributed as before, and every
    // invoice totals its lines.
    assert_eq!(month["attributed_total"], "27.05");
    assert_eq!(month["unattributed"], "0.15");
    for inv in month["invoices"].as_array().unwrap() {
        let sum: chargeback::money::Decimal = inv["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| d(&l["amount"]))
            .sum();
        assert_eq!(sum, d(&inv["total"]), "{}", inv["team"]);
    }
    assert_eq!(month["inputs"]["outcome_rows"], 8, "{}", month["inputs"]);
    assert_eq!(month["inputs"]["outcomes_counted"], 4);
    assert_eq!(month["inputs"]["quarantined_outcome_rows"], 2);
    assert_eq!(month["inputs"]["duplicate_outcome_rows"], 1);
    assert_eq!(month["inputs"]["outcome_rows_outside_period"], 1);

    // Outcomes without a rate are exceptions, each once.
    let exceptions = t.read("out/2025-01/exceptions.csv");
    let unpriced: Vec<&str> = exceptions
        .lines()
        .filter(|l| l.starts_with("outcome_without_rate"))
        .collect();
    assert_eq!(
        unpriced,
        [
            "outcome_without_rate,,,,ghost,,\"3 outcomes `resolved_ticket` counted for team `ghost`, which has no invoice this month (not in [teams], no usage): charged nothing\"",
            "outcome_without_rate,,,,search,,\"team `search` counted 1 outcome `query_answered`, but is charged tiered, not value-based: charged nothing\"",
            "outcome_without_rate,,,,support,,\"team `support` counted 3 outcomes `escalation`, which [teams.support.outcome_rates] has no rate for: charged nothing\"",
        ]
    );
    assert!(exceptions.contains(
        "quarantined_rows,,,,,tickets/tickets-2025-01.csv,2 rows of `tickets/tickets-2025-01.csv` quarantined"
    ));
    assert_eq!(
        t.read("out/2025-01/quarantine/outcomes.csv"),
        "source,row,column,reason,timestamp,team,outcome,count,reference\n\
         tickets/tickets-2025-01.csv,3,reference,duplicate `reference` `T-1` of outcome `resolved_ticket`; the first row with it was counted,2025-01-12T09:00:00Z,support,resolved_ticket,1,T-1\n\
         tickets/tickets-2025-01.csv,6,count,`count` is not a whole number 0 or more: `x`,2025-01-13T09:00:00Z,support,resolved_ticket,x,T-4\n\
         tickets/tickets-2025-01.csv,7,team,missing `team`,2025-01-14T09:00:00Z,,resolved_ticket,1,T-5\n"
    );
    // A quarantine file of rows with value columns keeps them.
    let dup = t.read("out/2025-01/quarantine/duplicates.csv");
    assert!(
        dup.starts_with("source,row,column,reason,request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status,outcome,outcome_count,user\n"),
        "{dup}"
    );
    assert!(dup.ends_with(",ok,query_answered,,mallory\n"), "{dup}");

    // ledger.csv: the same lines, with a price per unit as the rate.
    let ledger = t.read("out/2025-01/ledger.csv");
    assert!(ledger.contains(
        "MC-2025-01-support,support,CC-4100,5,outcome_charge,,,,,,false,0.50,4.50,USD,Outcome resolved_ticket: 9 × 0.50\n"
    ), "{ledger}");
    assert!(ledger.contains(
        "MC-2025-01-support,support,CC-4100,3,usage_offset,,,,,,false,,-6.65,USD,Usage cost not charged: priced by outcomes and seats\n"
    ), "{ledger}");
}

#[test]
fn excluded_failed_requests_count_no_outcome_and_no_user() {
    let t = value_month("exclude");
    let out = t.run(&RUN);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let support = invoice(&month, "support");
    // r03's 5 outcomes and `carol` are gone with it: 2 + 2 tickets.
    assert_eq!(support["value"]["outcomes"][2]["count"], 4);
    assert_eq!(support["value"]["users"], 1);
    assert_eq!(support["outcome_charges"], "2.00");
    assert_eq!(support["usage_cost"], "6.50");
    assert_eq!(support["total"], "332.00");
}
