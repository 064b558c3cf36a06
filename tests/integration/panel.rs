//! The summary's what-if panel in a real browser (headless Chromium, see
//! browser.rs): choices made as a user makes them, the numbers read back
//! from the page and compared with the spec's arithmetic done by hand.
//!
//! The page is the mini month's summary rendered by the built-in templates
//! through the run's own renderer, with `whatif/hand.json` as its what-if
//! data. That blob, by hand (cents; round = half away from zero, LR =
//! largest remainder, ties to the lower index; parties copilot, support,
//! unattributed):
//!
//! * No change: parties 100.005, 200.005, 10.00 to round(300.010) +
//!   round(10.00) = 310.01; floors 100.00 + 200.00 + 10.00 leave 1 cent,
//!   the remainders of copilot and support tie at 0.005 and the lower
//!   index, copilot, takes it: copilot 100.01, support 200.00.
//!   The pool of 120.00 over copilot and support by usage: 120 × 100.01 /
//!   300.01 = 40.00266…, 120 × 200 / 300.01 = 79.99733…; floors 119.99, the
//!   cent to support's .997: copilot 40.00, support 80.00.
//!   Support, cost-plus 20%: 200.00 + 40.00 + fixed 15.00 + pool 80.00 = 335.00.
//!   Copilot, graduated tiers 0–10M at 30 %, the rest at 10 %, 30M tokens:
//!   round(100.01 × 1/3 × 0.30) = 10.00, round(100.01 × 2/3 × 0.10) =
//!   round(6.6673…) = 6.67, fee round(100.01 × 0.15) = 15.00, pool 40.00:
//!   171.68.
//! * Support moves gpt-4o → gpt-4o-mini (moved 150.004 billed, new 9.001
//!   estimated): support 200.005 − 150.004 + 9.001 = 59.002; target
//!   round(150.006) + round(19.001) = 150.01 + 19.00 = 169.01; floors
//!   169.00, the cent to copilot's .005: support 59.00. Markup 11.80; pool
//!   by 100.01 : 59.00 = 75.473… : 44.526…, the cent to support's .0067:
//!   44.53. Total 59.00 + 11.80 + 15.00 + 44.53 = 130.33, delta −204.67,
//!   −204.67 / 335.00 = −61.09…% → −61.1 %.
//! * The same move and 30 % cache: save_b = 40 − 30 = 10, save_e = 0 − 0 +
//!   2 = 2; support 59.002 − 0.3 × 12 = 55.402; target round(150.006 − 3) +
//!   round(19.001 − 0.6) = 147.01 + 18.40 = 165.41; floors 165.40, the
//!   cent to copilot: 55.40. Markup 11.08; pool 100.01 : 55.40 → support
//!   42.777… takes the cent: 42.78. Total 124.26, delta −210.74, −62.9 %.
//! * The move to claude-3-5-haiku instead (new 12.5): support 62.501,
//!   target 150.01 + 22.50; 62.50, markup 12.50, pool 46.151… (the cent
//!   goes to copilot's 73.848…): 46.15. Total 136.15, delta −198.85, −59.4 %.
//! * Support on tiered (volume; 45M tokens is past 10M: "large", 10 %):
//!   200.00 + 20.00 + fee 5 % 10.00 + fixed fee 25.00 + 15.00 + 80.00 =
//!   350.00, delta +15.00, +4.5 %.
//! * Support value-based: 200.00 − 200.00 (offset) + 617.00 + 15.00 +
//!   80.00 = 712.00, delta +377.00, +112.5 %. Pass-through: 295.00, −40.00,
//!   −11.9 %.
//! * Copilot at 50 % cache: 100.005 − 0.5 × 20 = 90.005; target 290.01 +
//!   10.00; floors leave 1 cent, copilot and support tie at .005 again and
//!   copilot takes it: 90.01. Bands round(9.001) = 9.00, round(6.0006…) =
//!   6.00, fee round(13.5015) = 13.50; pool 120 × 90.01 / 290.01 = 37.244…
//!   (support's .0057 takes the cent): 37.24. Total 155.75, delta −15.93,
//!   −9.3 %. Copilot on cost-plus 20 %: 100.01 + 20.00 + 40.00 = 160.01.

use std::path::PathBuf;

use chargeback::context::Context;
use chargeback::load::store::Store;
use chargeback::render::html::HtmlRenderer;
use chargeback::render::templates::Templates;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::util::{TestDir, repo_root};

/// The hand-made what-if blob (see the module header).
fn hand_blob() -> Value {
    let path = repo_root().join("tests/integration/whatif/hand.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The mini month's `invoices.json` and its insights: the data the
/// summary is made from.
fn mini_month(t: &TestDir) -> Value {
    t.copy_fixture("mini");
    let out = t.run(&[
        "run",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    // The summary's data: invoices.json's keys, and the month's insights.
    let mut month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    month["insights"] = serde_json::from_str(&t.read("out/2025-01/insights.json")).unwrap();
    month
}

/// The summary of `month` with `blob` as its what-if data (none: without
/// the field), by `templates` and the run's renderer.
fn render_summary(month: &Value, blob: Option<&Value>, templates: &Templates) -> String {
    let mut data = month.clone();
    if let Some(b) = blob {
        // As the spec writes it: every `<` escaped, so no `</script>` in it.
        data["whatif_json"] = json!(b.to_string().replace('<', "\\u003c"));
    }
    HtmlRenderer::new(templates)
        .unwrap()
        .render("summary.html", &data)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn builtin_templates() -> Templates {
    Templates::load(&Context::new(Store::new()), None).unwrap()
}

/// The summary page with `blob`, written into `t`; its path.
fn panel_page(t: &TestDir, blob: &Value) -> PathBuf {
    page_of(t, &mini_month(t), blob, "summary.html")
}

/// The page of `month` with `blob`, as `t/<name>`; its path.
fn page_of(t: &TestDir, month: &Value, blob: &Value, name: &str) -> PathBuf {
    t.write(
        name,
        &render_summary(month, Some(blob), &builtin_templates()),
    );
    t.path().join(name)
}

/// A user's choice in the panel.
struct Choice<'a> {
    team: &'a str,
    /// `(from, to)` model keys; `None` is "no change".
    moved: Option<(&'a str, &'a str)>,
    terms: &'a str,
    cache_pct: u32,
}

/// Sets the controls in order, each with the event a user's choice fires.
fn choose(b: &mut Browser, c: &Choice) {
    let (from, to) = c.moved.unwrap_or(("", ""));
    for (id, value, event) in [
        ("whatif-team", c.team.to_string(), "change"),
        ("whatif-from", from.to_string(), "change"),
        ("whatif-to", to.to_string(), "change"),
        ("whatif-terms", c.terms.to_string(), "change"),
        ("whatif-cache", c.cache_pct.to_string(), "input"),
    ] {
        let set = b.eval(&format!(
            "(() => {{ const el = document.getElementById({id}); el.value = {value}; \
             el.dispatchEvent(new Event({event}, {{ bubbles: true }})); return el.value; }})()",
            id = json!(id),
            value = json!(value),
            event = json!(event),
        ));
        assert_eq!(set, json!(value), "`{id}` has no option `{value}`");
    }
}

/// The shown numbers: `(text, data-value)` of each output, by id.
fn shown(b: &mut Browser) -> Value {
    b.eval(
        "Object.fromEntries(['whatif-current', 'whatif-usage', 'whatif-total', 'whatif-delta', \
         'whatif-delta-pct', 'whatif-error'].map(id => { const el = document.getElementById(id); \
         return [id, [el.textContent, el.dataset.value === undefined ? null : el.dataset.value]]; }))",
    )
}

/// The plain values shown: current, usage, total, delta, delta %.
fn values(b: &mut Browser) -> [String; 5] {
    let s = shown(b);
    assert_eq!(s["whatif-error"][0], "", "the panel reports an error");
    [
        "whatif-current",
        "whatif-usage",
        "whatif-total",
        "whatif-delta",
        "whatif-delta-pct",
    ]
    .map(|id| s[id][1].as_str().unwrap_or("").to_string())
}

#[test]
fn the_panel_shows_the_hand_computed_numbers() {
    let t = TestDir::new();
    let page = panel_page(&t, &hand_blob());
    let mut b = Browser::launch();
    b.open(&page);
    let mini = "openai/gpt-4o-mini";
    let haiku = "anthropic/claude-3-5-haiku";
    let cases = [
        // (team, move, terms, cache %) → current, usage, total, delta, delta %
        (
            ("support", None, "current", 0),
            ["335.00", "200.00", "335.00", "0.00", "0.0"],
        ),
        (
            ("support", Some(("openai/gpt-4o", mini)), "current", 0),
            ["335.00", "59.00", "130.33", "-204.67", "-61.1"],
        ),
        (
            ("support", Some(("openai/gpt-4o", mini)), "current", 30),
            ["335.00", "55.40", "124.26", "-210.74", "-62.9"],
        ),
        (
            ("support", Some(("openai/gpt-4o", haiku)), "current", 0),
            ["335.00", "62.50", "136.15", "-198.85", "-59.4"],
        ),
        (
            ("support", None, "tiered", 0),
            ["335.00", "200.00", "350.00", "15.00", "4.5"],
        ),
        (
            ("support", None, "value_based", 0),
            ["335.00", "200.00", "712.00", "377.00", "112.5"],
        ),
        (
            ("support", None, "pass_through", 0),
            ["335.00", "200.00", "295.00", "-40.00", "-11.9"],
        ),
        (
            ("support", None, "cost_plus", 0),
            ["335.00", "200.00", "335.00", "0.00", "0.0"],
        ),
        (
            ("copilot", None, "current", 0),
            ["171.68", "100.01", "171.68", "0.00", "0.0"],
        ),
        (
            ("copilot", None, "current", 50),
            ["171.68", "90.01", "155.75", "-15.93", "-9.3"],
        ),
        (
            ("copilot", None, "cost_plus", 0),
            ["171.68", "100.01", "160.01", "-11.67", "-6.8"],
        ),
    ];
    for ((team, moved, terms, cache_pct), want) in cases {
        let c = Choice {
            team,
            moved,
            terms,
            cache_pct,
        };
        choose(&mut b, &c);
        assert_eq!(
            values(&mut b),
            want,
            "{team} {moved:?} {terms} {cache_pct}%"
        );
    }
    // As shown: signed, with separators, the hit rate beside its slider.
    choose(
        &mut b,
        &Choice {
            team: "support",
            moved: Some(("openai/gpt-4o", mini)),
            terms: "current",
            cache_pct: 30,
        },
    );
    let s = shown(&mut b);
    assert_eq!(s["whatif-delta"][0], "-210.74");
    assert_eq!(s["whatif-delta-pct"][0], "-62.9%");
    assert_eq!(
        b.eval("document.getElementById('whatif-cache-shown').textContent"),
        "30%"
    );
    choose(
        &mut b,
        &Choice {
            team: "support",
            moved: None,
            terms: "value_based",
            cache_pct: 0,
        },
    );
    let s = shown(&mut b);
    assert_eq!(s["whatif-delta"][0], "+377.00");
    assert_eq!(s["whatif-delta-pct"][0], "+112.5%");
    assert_eq!(b.errors(), Vec::<String>::new());
}

#[test]
fn the_controls_offer_the_teams_moves_and_models() {
    let t = TestDir::new();
    let page = panel_page(&t, &hand_blob());
    let mut b = Browser::launch();
    b.open(&page);
    let options = |b: &mut Browser, id: &str| {
        b.eval(&format!(
            "[...document.getElementById('{id}').options].map(o => [o.value, o.textContent])"
        ))
    };
    assert_eq!(
        options(&mut b, "whatif-team"),
        json!([
            ["copilot", "Developer Copilot"],
            ["support", "Customer Support"]
        ])
    );
    // The first team is chosen, with no change: its numbers are its invoice's.
    assert_eq!(
        values(&mut b),
        ["171.68", "100.01", "171.68", "0.00", "0.0"]
    );
    assert_eq!(options(&mut b, "whatif-from"), json!([["", "no change"]]));
    assert_eq!(
        b.eval("document.getElementById('whatif-to').disabled"),
        true
    );
    choose(
        &mut b,
        &Choice {
            team: "support",
            moved: None,
            terms: "current",
            cache_pct: 0,
        },
    );
    assert_eq!(
        options(&mut b, "whatif-from"),
        json!([["", "no change"], ["openai/gpt-4o", "openai gpt-4o"]])
    );
    assert_eq!(
        options(&mut b, "whatif-terms"),
        json!([
            ["current", "cost-plus 20% (current)"],
            ["pass_through", "pass-through"],
            ["cost_plus", "cost-plus 20%"],
            ["tiered", "tiered, volume"],
            ["value_based", "value-based"]
        ])
    );
    choose(
        &mut b,
        &Choice {
            team: "support",
            moved: Some(("openai/gpt-4o", "openai/gpt-4o-mini")),
            terms: "current",
            cache_pct: 0,
        },
    );
    assert_eq!(
        options(&mut b, "whatif-to"),
        json!([
            [
                "anthropic/claude-3-5-haiku",
                "anthropic claude-3-5-haiku (throughput)"
            ],
            ["openai/gpt-4o-mini", "openai gpt-4o-mini (throughput)"]
        ])
    );
    assert_eq!(
        b.eval("document.getElementById('whatif-to').disabled"),
        false
    );
    // Another team starts again from no change and its current terms.
    choose(
        &mut b,
        &Choice {
            team: "copilot",
            moved: None,
            terms: "current",
            cache_pct: 0,
        },
    );
    assert_eq!(b.eval("document.getElementById('whatif-from').value"), "");
    assert_eq!(
        values(&mut b),
        ["171.68", "100.01", "171.68", "0.00", "0.0"]
    );
    // The no-script note is hidden once the script runs; print hides the panel.
    assert_eq!(
        b.eval("getComputedStyle(document.querySelector('.whatif-noscript')).display"),
        "none"
    );
    b.media("print");
    assert_eq!(
        b.eval("getComputedStyle(document.getElementById('whatif-panel')).display"),
        "none"
    );
    assert_eq!(b.errors(), Vec::<String>::new());
}

#[test]
fn the_page_works_from_a_file_and_requests_nothing() {
    let t = TestDir::new();
    // A team name that would close the script if the blob were not escaped.
    let mut blob = hand_blob();
    blob["teams"][1]["name"] = json!("Support </script><b>&");
    let page = panel_page(&t, &blob);
    let html = t.read("summary.html");
    for outside in [
        "src=",
        "href=",
        "<link",
        "@import",
        "url(",
        "http:",
        "https:",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(!html.contains(outside), "the page holds `{outside}`");
    }
    assert!(html.contains(r#"Support \u003c/script>\u003cb>&"#));
    let mut b = Browser::launch();
    b.open(&page);
    choose(
        &mut b,
        &Choice {
            team: "support",
            moved: Some(("openai/gpt-4o", "openai/gpt-4o-mini")),
            terms: "tiered",
            cache_pct: 30,
        },
    );
    assert_eq!(
        b.eval("document.getElementById('whatif-team').selectedOptions[0].textContent"),
        "Support </script><b>&"
    );
    let url = url::Url::from_file_path(&page).unwrap().to_string();
    assert_eq!(
        b.requests(),
        vec![url],
        "the page requested more than itself"
    );
    assert_eq!(b.errors(), Vec::<String>::new());
}

/// The demo month run, its summary (with the panel the run renders) in
/// `t/out/2025-01/summary.html`.
fn demo_month(t: &TestDir) -> PathBuf {
    t.copy_fixture("demo");
    let out = t.run(&[
        "run",
        "-c",
        "fixtures/demo/chargeback.toml",
        "-p",
        "2025-01",
        "-q",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    t.path().join("out/2025-01/summary.html")
}

/// The scenario file `compare` reads for the panel's choice.
fn scenario_of(c: &Choice) -> String {
    let mut s = String::new();
    if let Some((from, to)) = c.moved {
        let (fp, fm) = from.split_once('/').unwrap();
        let (tp, tm) = to.split_once('/').unwrap();
        s.push_str(&format!(
            "[[move]]\nteam = \"{}\"\nfrom = \"{fm}\"\nfrom_provider = \"{fp}\"\nto = \"{tm}\"\nto_provider = \"{tp}\"\n",
            c.team
        ));
    }
    if c.cache_pct > 0 {
        let rate = rust_decimal::Decimal::new(i64::from(c.cache_pct), 2);
        s.push_str(&format!(
            "[[cache]]\nteam = \"{}\"\nhit_rate = \"{rate}\"\n",
            c.team
        ));
    }
    if c.terms != "current" {
        s.push_str(&format!("[teams.{}]\nmodel = \"{}\"\n", c.team, c.terms));
    }
    s
}

/// The panel and `compare` agree, on the demo month as run: the same
/// choice made in the browser and written as a scenario gives the same
/// usage cost, monthly cost, delta and delta percent.
#[test]
fn the_panel_and_compare_give_the_same_numbers_on_the_demo_month() {
    let t = TestDir::new();
    let page = demo_month(&t);
    let mut b = Browser::launch();
    b.open(&page);
    let cases = [
        (
            "support",
            Some(("openai/gpt-4o", "openai/gpt-4o-mini")),
            "current",
            0,
        ),
        (
            "support",
            Some(("openai/gpt-4o", "anthropic/claude-3-5-haiku")),
            "tiered",
            30,
        ),
        ("search", None, "cost_plus", 50),
        (
            "legal",
            Some(("anthropic/claude-3-5-sonnet", "mistral/mistral-large")),
            "pass_through",
            10,
        ),
        (
            "data-science",
            Some(("openai/gpt-4o", "openai/gpt-4o-mini")),
            "current",
            100,
        ),
        (
            "marketing",
            Some(("mistral/mistral-large", "openai/gpt-4o-mini")),
            "cost_plus",
            0,
        ),
        (
            "finance-ops",
            Some(("openai/gpt-4o-mini", "anthropic/claude-3-5-haiku")),
            "current",
            25,
        ),
        ("copilot", None, "current", 0),
    ];
    for (n, (team, moved, terms, cache_pct)) in cases.into_iter().enumerate() {
        let c = Choice {
            team,
            moved,
            terms,
            cache_pct,
        };
        choose(&mut b, &c);
        let shown = values(&mut b);
        let file = format!("s{n}.toml");
        t.write(&file, &scenario_of(&c));
        let out = t.run(&[
            "compare",
            "-c",
            "fixtures/demo/chargeback.toml",
            "-p",
            "2025-01",
            "-s",
            &file,
            "-o",
            &format!("cmp{n}/"),
            "-q",
        ]);
        assert_eq!(out.code, 0, "{}", out.transcript());
        let v: Value = serde_json::from_str(&t.read(&format!("cmp{n}/compare.json"))).unwrap();
        let row = v["teams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["team"] == team)
            .unwrap();
        let from_compare = [
            row["current_cost"].as_str().unwrap().to_string(),
            row["calculated_usage_cost"].as_str().unwrap().to_string(),
            row["calculated_monthly_cost"].as_str().unwrap().to_string(),
            row["comparison_delta"]["amount"]
                .as_str()
                .unwrap()
                .to_string(),
            row["comparison_delta"]["percent"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ];
        assert_eq!(
            shown, from_compare,
            "case {n}: {team} {moved:?} {terms} {cache_pct}%"
        );
    }
    assert_eq!(b.errors(), Vec::<String>::new());
}

/// `CHARGEBACK_WRITE_SCREENSHOT=1` writes the README's image of the panel:
/// the demo month, support moved from gpt-4o to gpt-4o-mini.
#[test]
fn a_screenshot_of_the_panel() {
    let t = TestDir::new();
    let page = demo_month(&t);
    let mut b = Browser::launch();
    b.open(&page);
    choose(
        &mut b,
        &Choice {
            team: "support",
            moved: Some(("openai/gpt-4o", "openai/gpt-4o-mini")),
            terms: "current",
            cache_pct: 0,
        },
    );
    assert_eq!(
        values(&mut b),
        ["338.19", "38.54", "296.25", "-41.94", "-12.4"].map(String::from),
        "README › What-if shows these numbers"
    );
    let png = b.screenshot("#whatif-panel", 24);
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    if std::env::var_os("CHARGEBACK_WRITE_SCREENSHOT").is_some() {
        std::fs::write(repo_root().join("docs/img/whatif.png"), &png).unwrap();
    }
}

#[test]
fn without_whatif_json_the_summary_renders_without_the_panel() {
    let t = TestDir::new();
    let month = mini_month(&t);
    assert!(month.get("whatif_json").is_none());
    // Strict mode: `{{#if whatif_json}}` on a missing field is not an error.
    let html = render_summary(&month, None, &builtin_templates());
    assert!(!html.contains("whatif"), "{html}");
    assert!(html.contains("<h2>Teams</h2>"));
    let with = render_summary(&month, Some(&hand_blob()), &builtin_templates());
    assert!(with.contains(r#"<script type="application/json" id="whatif-data">{"version":1,"#));
    // The script is inlined from templates/whatif.js, as written.
    let js = std::fs::read_to_string(repo_root().join("templates/whatif.js")).unwrap();
    assert!(with.contains(&js));
    // A run's summary has the month's own.
    assert!(
        t.read("out/2025-01/summary.html")
            .contains(r#"<script type="application/json" id="whatif-data">{"version":1,"#)
    );
}

#[test]
fn whatif_js_is_a_template_an_override_replaces() {
    let js = std::fs::read_to_string(repo_root().join("templates/whatif.js")).unwrap();
    // Inlined by Handlebars into a script element: no mustache, no end tag.
    assert!(
        !js.contains("{{"),
        "whatif.js must not hold two opening braces"
    );
    assert!(!js.to_lowercase().contains("</script"));
    let store = Store::new();
    store.put_memory("brand/whatif.js", b"console.log('branded panel');".to_vec());
    let templates = Templates::load(&Context::new(store), Some("memory://brand")).unwrap();
    assert_eq!(
        templates.file("whatif.js").unwrap().unwrap().uri,
        "memory://brand/whatif.js"
    );
    let t = TestDir::new();
    let html = render_summary(&mini_month(&t), Some(&hand_blob()), &templates);
    assert!(html.contains("console.log('branded panel');"));
    assert!(!html.contains(&js));
}

#[test]
fn a_blob_the_panel_cannot_read_is_said_so() {
    let t = TestDir::new();
    let month = mini_month(&t);
    let mut b = Browser::launch();
    // A decimal with an exponent is no decimal of the spec: no numbers shown.
    let mut blob = hand_blob();
    blob["teams"][1]["fixed"] = json!("1.5e1");
    b.open(&page_of(&t, &month, &blob, "exponent.html"));
    assert_eq!(values(&mut b)[0], "171.68", "copilot's numbers are fine");
    choose(
        &mut b,
        &Choice {
            team: "support",
            moved: None,
            terms: "current",
            cache_pct: 0,
        },
    );
    let s = shown(&mut b);
    assert_eq!(
        s["whatif-error"][0],
        "The what-if data of this page cannot be read: not an exact decimal: 1.5e1"
    );
    assert_eq!(s["whatif-total"], json!(["—", ""]));
    // No team at all: the panel says there is nothing to choose.
    let mut blob = hand_blob();
    blob["teams"] = json!([]);
    b.open(&page_of(&t, &month, &blob, "no-team.html"));
    assert_eq!(
        b.eval("document.querySelector('.whatif-noscript').textContent"),
        "No team was invoiced this month: there is nothing to choose."
    );
    assert_eq!(
        b.eval("getComputedStyle(document.querySelector('.whatif-live')).display"),
        "none"
    );
    assert_eq!(b.errors(), Vec::<String>::new());
}
