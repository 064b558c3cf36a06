//! `insights.json` and the summary's Insights section, by hand, on
//! `fixtures/insights/` (March 2025; see its README): every number below
//! is worked out in the comments from the fixture's rows and
//! `fixtures/insights/model-catalog.json` (gpt-4o 5.00 / 2.50 cached /
//! 15.00 out, gpt-4o-mini 0.15 / 0.60, claude-3-5-sonnet 3.00 / 0.30
//! cached / 3.75 cache write / 15.00 out, mistral-large 2.00 / 6.00, per
//! 1M tokens). The OpenAI bill is at exactly those prices, Anthropic and
//! Mistral are priced from the catalog, so each cost is a product.

use serde_json::Value;

use crate::pdf::pdf_text;
use crate::util::TestDir;

const POLICY: &str = "fixtures/insights/chargeback.toml";

fn close(t: &TestDir, policy: &str, period: &str) -> Value {
    let out = t.run(&["run", "--config", policy, "--period", period, "--quiet"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    serde_json::from_str(&t.read(&format!("out/{period}/insights.json"))).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// `teams[]` of a section as (team, the named fields as text).
fn rows(section: &Value, key: &str, fields: &[&str]) -> Vec<(String, Vec<String>)> {
    section[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let id = r["team"].as_str().unwrap_or_default().to_string();
            let values = fields
                .iter()
                .map(|f| match &r[*f] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            (id, values)
        })
        .collect()
}

fn row(team: &str, values: &[&str]) -> (String, Vec<String>) {
    (
        team.to_string(),
        values.iter().map(ToString::to_string).collect(),
    )
}

#[test]
fn the_fixture_month_by_hand() {
    let t = TestDir::with_fixture("insights");
    let ins = close(&t, POLICY, "2025-03");
    assert_eq!(s(&ins["period"]), "2025-03");
    assert_eq!(s(&ins["currency"]), "USD");

    // Cost per outcome: support's usage is 32.00 (its conversation, below)
    // + 2.00 (sup-07, 0.4M in) + 0.65 (sup-08, 0.1M in, 10k out) = 34.65,
    // over 1 + 2 resolved tickets and 1 escalation: 8.6625. Copilot's 12.60
    // over its one accepted completion. Search and data logged none.
    let o = &ins["cost_per_outcome"];
    assert!(o["empty"].is_null());
    assert_eq!(
        rows(o, "teams", &["usage_cost", "outcomes", "cost_per_outcome"]),
        [
            row("copilot", &["12.60", "1", "12.6000"]),
            row("support", &["34.65", "4", "8.6625"]),
        ]
    );
    assert_eq!(
        o["teams"][1]["by_outcome"],
        serde_json::json!({ "escalation": 1, "resolved_ticket": 3 })
    );

    // Failed requests: sup-07 (2.00, alone on its bill line), srch-a2
    // (2M of the 12M in on 5 March: 1.80 × 2/12 = 0.30, and 0.1M of the
    // 0.3M out: 0.06) and srch-x1 (2M in, 0.30): 3 of 26, 11.5%, 2.66.
    let f = &ins["failed_requests"];
    assert!(f["empty"].is_null());
    assert_eq!((n(&f["requests"]), n(&f["failed_requests"])), (26, 3));
    assert_eq!(
        (s(&f["error_rate"]), s(&f["failed_cost"])),
        ("11.5%", "2.66")
    );
    assert_eq!(n(&f["excluded"]), 0);
    assert_eq!(
        rows(
            f,
            "teams",
            &["requests", "failed_requests", "error_rate", "failed_cost"]
        ),
        [
            row("copilot", &["6", "0", "0%", "0.00"]),
            row("data", &["3", "0", "0%", "0.00"]),
            row("search", &["9", "2", "22.2%", "0.66"]),
            row("support", &["8", "1", "12.5%", "2.00"]),
        ]
    );

    // Estimated counts: support's sup-01 (`true`, 1.05M tokens, 5.75 of
    // its cell's 32.00 at catalog prices) and sup-07 (`Yes`, 0.4M, 2.00);
    // search's srch-a1 (`yes`, 4.1M, 0.66) and srch-a3 (`1`, 6.1M, 0.96)
    // of 5 March and srch-c3 (`TRUE`, 1.05M, 0.18); copilot's cop-01 and
    // cop-02 (Parquet `true`: 1.11M for 4.20 and 1.31M for 1.50). Every
    // `FALSE`, `False`, `No`, `no`, `0`, empty, `NULL` and the Parquet
    // null count as reported.
    let e = &ins["estimated_tokens"];
    assert!(e["empty"].is_null());
    assert_eq!(
        (n(&e["tokens"]), n(&e["estimated_tokens"])),
        (44_770_000, 15_120_000)
    );
    assert_eq!((s(&e["share"]), s(&e["cost"])), ("33.8%", "15.25"));
    assert_eq!(
        rows(e, "teams", &["tokens", "estimated_tokens", "share", "cost"]),
        [
            row("copilot", &["10660000", "2420000", "22.7%", "5.70"]),
            row("search", &["20450000", "11250000", "55%", "1.80"]),
            row("support", &["9810000", "1450000", "14.8%", "7.75"]),
        ]
    );

    // Context growth. Support's conversation, in UTC order (sup-02 is
    // written 10:01+01:00): inputs 1.0M, 1.2M, … 2.0M, each 0.2M uncached
    // after the first and the rest cached reads, 50k out: 5.75 + 4.25 +
    // 4.75 + 5.25 + 5.75 + 6.25 = 32.00. Summarised every 5, sup-06 sends
    // the first request's 1.0M instead of 2.0M: half its input cost of
    // 1.00 + 4.50, 2.75. Copilot's session: 1.1M (1M cache write), then
    // 1.3M … 2.5M (0.1M in, growing cache reads, 0.2M cache writes), 10k
    // out: 4.20 + 1.50 + 1.59 + 1.68 + 1.77 + 1.86 = 12.60; cop-06 sends
    // 1.1M of 2.5M: 1.4/2.5 of its input cost 0.30 + 0.66 + 0.75 = 0.9576.
    // Search's conversations fall (4M, 2M, 6M), stay flat (1M × 3) or have
    // two requests.
    let g = &ins["context_growth"];
    assert!(g["empty"].is_null());
    assert_eq!(n(&g["summarise_every"]), 5);
    assert_eq!(
        [
            n(&g["conversations"]),
            n(&g["long_conversations"]),
            n(&g["growing"]),
            n(&g["unpriced"]),
            n(&g["requests"]),
        ],
        [5, 4, 2, 0, 12]
    );
    assert_eq!((s(&g["cost"]), s(&g["saving"])), ("44.60", "3.71"));
    assert_eq!(
        rows(g, "teams", &["growing", "requests", "cost", "saving"]),
        [
            row("copilot", &["1", "6", "12.60", "0.96"]),
            row("support", &["1", "6", "32.00", "2.75"]),
        ]
    );
    let largest: Vec<Vec<String>> = g["largest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            [
                "team",
                "conversation_id",
                "requests",
                "first_input",
                "last_input",
                "first_request",
                "last_request",
                "cost",
            ]
            .iter()
            .map(|k| match &c[*k] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect()
        })
        .collect();
    assert_eq!(
        largest,
        [
            [
                "support",
                "conv_8fJ2kQ1mZx0aL7pTe3RbWn4c",
                "6",
                "1000000",
                "2000000",
                "sup-01",
                "sup-06",
                "32.00"
            ],
            [
                "copilot",
                "3f1d2c9a-5b1e-4c0e-9a53-1f2e3d4c5b6a",
                "6",
                "1100000",
                "2500000",
                "cop-01",
                "cop-06",
                "12.60"
            ],
        ]
    );

    // Model sprawl. gpt-4o: support 34.65 + data 13.00 (2M in, 0.2M
    // out); claude-3-5-sonnet: copilot 12.60 + data 4.50; gpt-4o-mini:
    // search's 20M in and 0.45M out, 3.27; mistral-large: 1.30.
    let m = &ins["model_sprawl"];
    assert!(m["empty"].is_null());
    let models: Vec<(String, String, String, u64, u64, String)> = m["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                s(&u["model"]).to_string(),
                u["tier"].as_str().unwrap_or("—").to_string(),
                u["teams"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| s(t).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                n(&u["requests"]),
                n(&u["tokens"]),
                s(&u["cost"]).to_string(),
            )
        })
        .collect();
    let model = |name: &str, tier: &str, teams: &str, r: u64, tok: u64, cost: &str| {
        (
            name.to_string(),
            tier.to_string(),
            teams.to_string(),
            r,
            tok,
            cost.to_string(),
        )
    };
    assert_eq!(
        models,
        [
            model("gpt-4o", "general", "data,support", 9, 12_010_000, "47.65"),
            model(
                "claude-3-5-sonnet",
                "general",
                "copilot,data",
                7,
                11_760_000,
                "17.10"
            ),
            model("gpt-4o-mini", "throughput", "search", 9, 20_450_000, "3.27"),
            model("mistral-large", "—", "data", 1, 550_000, "1.30"),
        ]
    );
    // Per team and tier, at the cheapest model of the tier for its own
    // mix. Support's 2.5M in, 7M cached, 0.31M out: 34.65 on gpt-4o, 7.50
    // + 2.10 + 4.65 = 14.25 on claude. Data's general traffic (3M in, 0.3M
    // out): 13.00 + 4.50 now, 9.00 + 4.50 all on claude. Copilot is on the
    // cheaper one already (gpt-4o would be 33.90 for its cache-heavy mix),
    // and search's model is alone in its tier.
    assert_eq!(
        rows(
            m,
            "tiers",
            &[
                "tier",
                "catalog_cost",
                "cheapest",
                "cheapest_cost",
                "saving"
            ]
        ),
        [
            row(
                "copilot",
                &[
                    "general",
                    "12.60",
                    "anthropic/claude-3-5-sonnet",
                    "12.60",
                    "0.00"
                ]
            ),
            row(
                "data",
                &[
                    "general",
                    "17.50",
                    "anthropic/claude-3-5-sonnet",
                    "13.50",
                    "4.00"
                ]
            ),
            row(
                "search",
                &["throughput", "3.27", "openai/gpt-4o-mini", "3.27", "0.00"]
            ),
            row(
                "support",
                &[
                    "general",
                    "34.65",
                    "anthropic/claude-3-5-sonnet",
                    "14.25",
                    "20.40"
                ]
            ),
        ]
    );
    assert_eq!(s(&m["saving"]), "24.40");
    assert_eq!(
        m["tiers"][1]["models"],
        serde_json::json!(["anthropic/claude-3-5-sonnet", "openai/gpt-4o"])
    );
    assert_eq!(
        m["not_comparable"],
        serde_json::json!([{ "provider": "mistral", "model": "mistral-large", "teams": ["data"], "reason": "the catalog gives it no tier" }])
    );
    // Every insight says how it was computed.
    for k in [
        "cost_per_outcome",
        "failed_requests",
        "estimated_tokens",
        "context_growth",
        "model_sprawl",
    ] {
        assert!(s(&ins[k]["method"]).ends_with('.'), "{k}");
    }
    assert!(s(&m["saving_method"]).starts_with("Per team and catalog tier"));

    // The rows that count nothing: the bad flag quarantined with its
    // reason and the row as read; both duplicates dropped.
    let q = t.read("out/2025-03/quarantine/requests.csv");
    assert!(
        q.starts_with("source,row,column,reason,request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status,tokens_estimated,conversation_id\n"),
        "{q}"
    );
    assert!(q.contains("fixtures/insights/requests/gateway-2025-03.csv,9,tokens_estimated,\"`tokens_estimated` must be true or false (also 1/0, yes/no, empty), not `maybe`\",sup-09,"), "{q}");
    let d = t.read("out/2025-03/quarantine/duplicates.csv");
    assert!(
        d.contains("copilot-2025-03.parquet,7,request_id,duplicate `request_id` `cop-03`"),
        "{d}"
    );
    assert!(
        d.contains("gateway-2025-03.csv,20,request_id,duplicate `request_id` `srch-b2`"),
        "{d}"
    );
    // insights.json is an output like the others, hashed in the manifest.
    let manifest: Value = serde_json::from_str(&t.read("out/2025-03/manifest.json")).unwrap();
    assert!(
        manifest["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["path"] == "insights.json")
    );
    // invoices.json holds no insights.
    let month: Value = serde_json::from_str(&t.read("out/2025-03/invoices.json")).unwrap();
    assert!(month.get("insights").is_none());
}

/// What Handlebars makes of a text.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('`', "&#x60;")
        .replace('=', "&#x3D;")
}

#[test]
fn the_summary_shows_each_number_beside_its_method() {
    let t = TestDir::with_fixture("insights");
    let ins = close(&t, POLICY, "2025-03");
    let html = t.read("out/2025-03/summary.html");
    let at = html.find("<h2>Insights</h2>").expect("an Insights section");
    // After the teams, before the charts.
    assert!(html.find("<h2>Teams</h2>").unwrap() < at);
    assert!(at < html.find("<h2>Cost by team (usage cost)</h2>").unwrap());
    let section = &html[at..];
    for k in [
        "cost_per_outcome",
        "failed_requests",
        "estimated_tokens",
        "context_growth",
        "model_sprawl",
    ] {
        let method = escaped(s(&ins[k]["method"]));
        assert!(section.contains(&method), "{k}: {method}");
    }
    assert!(section.contains(&escaped(s(&ins["model_sprawl"]["saving_method"]))));
    for figure in [
        "3 of 26 requests failed (11.5%), costing USD 2.66 of the usage cost.",
        "15,120,000 of 44,770,000 tokens (33.8%) were counted by a tokenizer, not reported by the provider; they carry USD 15.25 of the cost.",
        "2 of 4 conversations of 3 or more requests keep growing (12 requests), costing USD 44.60 at catalog prices; summarising every 5 requests would have saved USD 3.71.",
        "Moving each team's traffic to the cheapest model of its catalog tier would save USD 24.40 at catalog prices.",
    ] {
        assert!(section.contains(figure), "{figure}");
    }
    for cell in [
        "<td class=\"num\">8.6625</td>",
        "<td class=\"num\">12.6000</td>",
        "conv_8fJ2kQ1mZx0aL7pTe3RbWn4c",
        "1,000,000 → 2,000,000",
        "the catalog gives it no tier",
        "<td class=\"num\">20.40</td>",
    ] {
        assert!(section.contains(cell), "{cell}");
    }

    // The PDF prints the same numbers and sentences.
    let text = pdf_text(&t.path().join("out/2025-03/summary.pdf"));
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for figure in [
        "INSIGHTS",
        "3 of 26 requests failed (11.5%), costing USD 2.66",
        "8.6625",
        "conv_8fJ2kQ1mZx0aL7pTe3RbWn4c",
        "would save USD 24.40 at catalog prices",
        "the summaries’ own cost not counted",
    ] {
        let figure = figure.replace('’', "'");
        assert!(flat.replace('’', "'").contains(&figure), "{figure}: {flat}");
    }
}

#[test]
fn failed_requests_excluded_by_the_policy_count_nowhere() {
    let t = TestDir::with_fixture("insights");
    let policy = t.read(POLICY).replace(
        "failed_requests = \"bill\"",
        "failed_requests = \"exclude\"",
    );
    t.write("exclude.toml", &policy);
    let ins = close(&t, "exclude.toml", "2025-03");
    let f = &ins["failed_requests"];
    assert_eq!((n(&f["requests"]), n(&f["failed_requests"])), (23, 0));
    assert_eq!(n(&f["excluded"]), 3);
    assert_eq!(
        s(&f["empty"]),
        "3 failed requests were excluded by the policy (`failed_requests = \"exclude\"`): they cost no team anything"
    );
    // srch-a2 is no turn of its conversation any more: two requests left.
    let g = &ins["context_growth"];
    assert_eq!(
        [
            n(&g["conversations"]),
            n(&g["long_conversations"]),
            n(&g["growing"])
        ],
        [5, 3, 2]
    );
    // sup-07 (estimated, failed) is gone from support's estimated tokens.
    assert_eq!(
        rows(&ins["estimated_tokens"], "teams", &["estimated_tokens"])[2],
        row("support", &["1050000"])
    );
}

#[test]
fn a_log_without_the_optional_columns_says_so() {
    let t = TestDir::with_fixture("mini");
    let ins = close(&t, "fixtures/mini/chargeback.toml", "2025-01");
    assert_eq!(
        s(&ins["context_growth"]["empty"]),
        "no request of the month carries a `conversation_id`"
    );
    assert_eq!(
        s(&ins["estimated_tokens"]["empty"]),
        "no request's token counts are marked estimated (`tokens_estimated`)"
    );
    assert_eq!(
        s(&ins["cost_per_outcome"]["empty"]),
        "no request and no outcome source counted a business outcome this month"
    );
    // The mini month has a failed request and three models.
    assert!(ins["failed_requests"]["empty"].is_null());
    assert!(ins["model_sprawl"]["empty"].is_null());
    let html = t.read("out/2025-01/summary.html");
    assert!(html.contains("no request of the month carries a &#x60;conversation_id&#x60;"));
    // The quarantine keeps the columns it always had.
    assert!(
        t.read("out/2025-01/quarantine/requests.csv")
            .lines()
            .next()
            .unwrap()
            .ends_with(",output_tokens,status")
    );
}

#[test]
fn an_empty_month_has_nothing_to_say_in_one_line_each() {
    let t = TestDir::new();
    t.copy_fixture("empty");
    t.copy_fixture("mini");
    t.write(
        "empty.toml",
        "[organization]\nname = \"Empty\"\n[sources]\n\
         requests = [\"fixtures/empty/canonical_header-only.csv\"]\n\
         billing = [{ url = \"fixtures/empty/focus_header-only.csv\", format = \"focus\" }]\n\
         catalog = \"fixtures/mini/model-catalog.json\"\n",
    );
    let ins = close(&t, "empty.toml", "2025-01");
    for (k, line) in [
        (
            "cost_per_outcome",
            "no request and no outcome source counted a business outcome this month",
        ),
        ("failed_requests", "no request failed this month"),
        (
            "estimated_tokens",
            "no request's token counts are marked estimated (`tokens_estimated`)",
        ),
        (
            "context_growth",
            "no request of the month carries a `conversation_id`",
        ),
        ("model_sprawl", "no usage this month"),
    ] {
        assert_eq!(s(&ins[k]["empty"]), line, "{k}");
    }
    assert_eq!(s(&ins["model_sprawl"]["saving"]), "0.00");
    assert!(ins["estimated_tokens"]["share"].is_null());
    let html = t.read("out/2025-01/summary.html");
    assert!(html.contains("<p class=\"figure\">no usage this month</p>"));
}
