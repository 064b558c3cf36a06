//! One month from three providers and three kinds of bill, with one
//! gateway's logs (fixtures/mixed, 2025-06-10, all hand-checked):
//!
//! * OpenAI costs by project and line item: support gpt-4o input 0.5M 2.50
//!   + output 0.1M 1.50 = 4.00; search gpt-4o-mini 2M 0.30 + 1M 0.60 = 0.90.
//! * Anthropic cost report in cents with its usage report: legal sonnet
//!   1M 3.00 + 0.1M 1.50 = 4.50; support haiku 1M input 1.00, of which the
//!   logs have 0.8M → 0.80, and 0.20 unattributed.
//! * Bedrock in the AWS FOCUS export, scoped by the application inference
//!   profile: search claude-3-5-sonnet 1000 × 1K input 3.00 + 100 × 1K
//!   output 1.50 = 4.50.
//! * LiteLLM SpendLogs, virtual keys mapped to the three providers' scopes.
//!
//! Billed 14.90 = support 4.80 + search 5.40 + legal 4.50 + unattributed 0.20.

use serde_json::Value;

use crate::util::{TestDir, usage_cost};

#[test]
fn three_providers_three_bills_one_gateway() {
    let t = TestDir::with_fixture("mixed");
    let out = t.run(&[
        "run",
        "--config",
        "fixtures/mixed/chargeback.toml",
        "--period",
        "2025-06",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-06/invoices.json")).unwrap();
    assert_eq!(month["billed_total"], "14.90");
    assert_eq!(month["unattributed"], "0.20");
    assert_eq!(month["ties_to_bill"], true);
    let cost = |team: &str| usage_cost(&month, team);
    assert_eq!(cost("support"), "4.80");
    assert_eq!(cost("search"), "5.40");
    assert_eq!(cost("legal"), "4.50");

    // Coverage per source: each provider with what its numbers came from.
    let providers: Vec<(String, String, String, Value)> = month["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap().to_string(),
                p["billed"].as_str().unwrap().to_string(),
                p["coverage"].as_str().unwrap_or("—").to_string(),
                p["sources"].clone(),
            )
        })
        .collect();
    assert_eq!(
        providers,
        [
            (
                "anthropic".into(),
                "5.50".into(),
                "90.5%".into(),
                serde_json::json!(["Anthropic cost report", "Anthropic usage report"])
            ),
            (
                "aws-bedrock".into(),
                "4.50".into(),
                "100%".into(),
                serde_json::json!(["FOCUS export"])
            ),
            (
                "openai".into(),
                "4.90".into(),
                "100%".into(),
                serde_json::json!(["OpenAI costs API page"])
            ),
        ]
    );
    let summary = t.read("out/2025-06/summary.html");
    for source in [
        "Anthropic cost report",
        "FOCUS export",
        "OpenAI costs API page",
    ] {
        assert!(summary.contains(source), "{source} not on the summary");
    }
}
