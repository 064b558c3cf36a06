//! What the documents say to the reader of an invoice (issue #17): the
//! issuer's cost centre and the "Questions and disputes" block from
//! `[organization]`, in HTML and PDF alike and nowhere when the policy has
//! none of it; the invoice number in the HTML invoice box as in the PDF;
//! and a budget figure that says "actual" once the month is closed,
//! "projected" inside it; the same block on credit and debit notes, and
//! the estimate note in a currency without minor units.

use serde_json::Value;

use crate::pdf::{pdf_text, squash};
use crate::util::TestDir;

/// The mini month with `keys` added to its `[organization]`, closed with
/// `extra` arguments.
fn run_mini(keys: &str, extra: &[&str]) -> TestDir {
    let t = TestDir::with_fixture("mini");
    let policy = t.read("fixtures/mini/chargeback.toml").replacen(
        "payment_terms_days = 30\n",
        &format!("payment_terms_days = 30\n{keys}"),
        1,
    );
    t.write("policy.toml", &policy);
    let mut args = vec!["run", "--config", "policy.toml", "--period", "2025-01"];
    args.extend_from_slice(extra);
    let out = t.run(&args);
    assert_eq!(out.code, 0, "{}", out.transcript());
    t
}

/// Every invoice of the month: (file stem, HTML, PDF text squashed).
fn invoices(t: &TestDir) -> Vec<(String, String, String)> {
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let file = i["file"].as_str().unwrap().to_string();
            let html = t.read(&format!("out/2025-01/invoices/{file}.html"));
            let pdf = squash(&pdf_text(
                &t.path().join(format!("out/2025-01/invoices/{file}.pdf")),
            ));
            (file, html, pdf)
        })
        .collect()
}

/// The block's heading in a PDF's text: letter-spaced capitals, which
/// `pdftotext` may break inside a word.
fn kicker(pdf: &str) -> bool {
    pdf.replace(' ', "").contains("QUESTIONSANDDISPUTES")
}

const ORGANIZATION: &str = "contact = \"ai-finance@example.com\"\n\
    dispute = \"Reply within 10 working days to <ai-finance@example.com> & quote the invoice number\"\n\
    cost_center = \"CC-9000\"\n";

#[test]
fn every_invoice_says_whom_to_ask_and_how_to_dispute() {
    let t = run_mini(ORGANIZATION, &[]);
    let all = invoices(&t);
    assert_eq!(all.len(), 4);
    for (file, html, pdf) in &all {
        // Escaped like every value, in a block of its own.
        assert!(html.contains("<h2>Questions and disputes</h2>"), "{file}");
        assert!(
            html.contains("<dt>Contact</dt><dd>ai-finance@example.com</dd>"),
            "{file}"
        );
        assert!(
            html.contains("<dt>To dispute this invoice</dt><dd>Reply within 10 working days to &lt;ai-finance@example.com&gt; &amp; quote the invoice number</dd>"),
            "{file}: {html}"
        );
        assert!(html.contains("Cost centre CC-9000"), "{file}");
        assert!(kicker(pdf), "{file}: {pdf}");
        assert!(
            pdf.contains("Contact ai-finance@example.com"),
            "{file}: {pdf}"
        );
        assert!(
            pdf.contains("To dispute this invoice Reply within 10 working days to <ai-finance@example.com> & quote the invoice number"),
            "{file}: {pdf}"
        );
        assert!(
            pdf.contains("Springfield Cost centre CC-9000"),
            "{file}: {pdf}"
        );
        // The number in the box, as the PDF's box shows it.
        let number = format!("MC-2025-01-{file}");
        assert!(
            html.contains(&format!(
                "<dt>Invoice number</dt><dd class=\"mono\">{number}</dd>"
            )),
            "{file}"
        );
        assert!(
            pdf.contains(&format!("Invoice number {number}")),
            "{file}: {pdf}"
        );
    }
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    assert_eq!(month["issuer"]["contact"], "ai-finance@example.com");
    assert_eq!(month["issuer"]["cost_center"], "CC-9000");
    // The summary names the issuer's cost centre too.
    assert!(
        t.read("out/2025-01/summary.html")
            .contains("Cost centre CC-9000")
    );
}

#[test]
fn a_policy_without_the_keys_prints_no_block() {
    let t = run_mini("", &[]);
    for (file, html, pdf) in invoices(&t) {
        for text in [&html, &pdf] {
            assert!(
                !text.to_lowercase().contains("questions and disputes"),
                "{file}"
            );
            assert!(!text.contains("Cost centre CC-9000"), "{file}");
        }
        assert!(html.contains("<dt>Invoice number</dt>"), "{file}");
    }
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let issuer = month["issuer"].as_object().unwrap();
    assert_eq!(
        issuer.keys().collect::<Vec<_>>(),
        ["name", "address"],
        "absent keys are left out of the data"
    );

    // A cost centre alone: beside the issuer, and still no block.
    let t = run_mini("cost_center = \"CC-9000\"\n", &[]);
    for (file, html, pdf) in invoices(&t) {
        assert!(html.contains("Cost centre CC-9000"), "{file}");
        assert!(pdf.contains("Cost centre CC-9000"), "{file}");
        assert!(!html.contains("Questions and disputes"), "{file}");
        assert!(!kicker(&pdf), "{file}");
    }
    // The dispute route alone: the block without a contact row.
    let t = run_mini("dispute = \"Write to the platform team\"\n", &[]);
    for (file, html, pdf) in invoices(&t) {
        assert!(html.contains("<h2>Questions and disputes</h2>"), "{file}");
        assert!(!html.contains("<dt>Contact</dt>"), "{file}");
        assert!(kicker(&pdf), "{file}: {pdf}");
        assert!(
            pdf.contains("To dispute this invoice Write to the platform team"),
            "{file}: {pdf}"
        );
        assert!(!pdf.contains("Contact"), "{file}: {pdf}");
    }
}

#[test]
fn a_bad_contact_stops_the_run_at_its_line() {
    let t = TestDir::with_fixture("mini");
    let policy = t.read("fixtures/mini/chargeback.toml").replacen(
        "payment_terms_days = 30\n",
        "payment_terms_days = 30\ncontact = \"Finance team\"\n",
        1,
    );
    t.write("policy.toml", &policy);
    let out = t.run(&["run", "--config", "policy.toml", "--period", "2025-01"]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("policy.toml:8:1: `organization.contact` is `Finance team`, expected an e-mail address such as `finance@example.com`"),
        "{}",
        out.stderr
    );
    assert!(!t.exists("out/2025-01/manifest.json"));
}

/// The budget note of support's invoice (budget 300.00, 257.98 spent), in
/// HTML and PDF, and its budget cell in the summary.
fn budget_words(t: &TestDir) -> (String, String, String) {
    let html = t.read("out/2025-01/invoices/support.html");
    let note = html
        .lines()
        .find(|l| l.contains("<li>Monthly budget"))
        .expect("a budget note")
        .to_string();
    let pdf = squash(&pdf_text(
        &t.path().join("out/2025-01/invoices/support.pdf"),
    ));
    let summary = squash(&pdf_text(&t.path().join("out/2025-01/summary.pdf")));
    (note, pdf, summary)
}

#[test]
fn a_closed_month_budget_is_actual_spend_and_mid_month_projected() {
    let t = run_mini("", &[]);
    let (note, pdf, summary) = budget_words(&t);
    assert!(
        note.contains("Monthly budget USD 300.00; actual spend USD 257.98 (86% of budget)"),
        "{note}"
    );
    assert!(!note.contains("projected"), "{note}");
    assert!(
        pdf.contains("Monthly budget USD 300.00; actual spend USD 257.98 (86% of budget)"),
        "{pdf}"
    );
    assert!(summary.contains("86% spent"), "{summary}");
    assert!(!summary.contains("projected"), "{summary}");
    assert!(t.read("out/2025-01/summary.html").contains("86% spent"));
    let budgets: Value = serde_json::from_str(&t.read("out/2025-01/budgets.json")).unwrap();
    assert_eq!(budgets["support"]["basis"], "actual");

    // As of the last day the month is closed too.
    let t = run_mini("", &["--as-of", "2025-01-31"]);
    assert!(budget_words(&t).0.contains("actual spend USD 257.98"));

    let t = run_mini("", &["--as-of", "2025-01-15"]);
    let (note, pdf, summary) = budget_words(&t);
    let budgets: Value = serde_json::from_str(&t.read("out/2025-01/budgets.json")).unwrap();
    let support = &budgets["support"];
    assert_eq!(support["basis"], "projected");
    let projected = support["projected"].as_str().unwrap();
    let used = support["used"].as_str().unwrap();
    let words = format!("projected month-end spend USD {projected} ({used} of budget)");
    assert!(note.contains(&words), "{note}");
    assert!(!note.contains("actual"), "{note}");
    assert!(pdf.contains(&words), "{pdf}");
    assert!(summary.contains(&format!("{used} projected")), "{summary}");
}

#[test]
fn an_estimate_is_noted_in_a_currency_without_minor_units_too() {
    // JPY has no minor units: a team with nothing estimated has
    // `estimated_cost` "0", which is zero all the same.
    let t = TestDir::with_fixture("mini");
    // The bills stay in USD, converted at 150; the catalog's list prices
    // are written in yen.
    let mut catalog: Value =
        serde_json::from_str(&t.read("fixtures/mini/model-catalog.json")).unwrap();
    catalog["currency"] = "JPY".into();
    for model in catalog["models"].as_array_mut().unwrap() {
        for price in model["prices"].as_array_mut().unwrap() {
            for (key, v) in price.as_object_mut().unwrap() {
                if key != "effective_from" {
                    let usd: rust_decimal::Decimal = v.as_str().unwrap().parse().unwrap();
                    *v = (usd * rust_decimal::Decimal::from(150)).to_string().into();
                }
            }
        }
    }
    t.write("catalog-jpy.json", &catalog.to_string());
    let policy = t
        .read("fixtures/mini/chargeback.toml")
        .replacen("currency = \"USD\"", "currency = \"JPY\"", 1)
        .replacen("fixtures/mini/model-catalog.json", "catalog-jpy.json", 1)
        + "\n[[fx]]\nfrom = \"USD\"\nto = \"JPY\"\nrate = \"150\"\neffective_from = \"2025-01-01\"\n";
    t.write("policy.toml", &policy);
    let out = t.run(&["run", "--config", "policy.toml", "--period", "2025-01"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let estimated: std::collections::BTreeMap<String, bool> = month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let cost = i["estimated_cost"].as_str().unwrap();
            assert!(!cost.contains('.'), "{cost}");
            (i["file"].as_str().unwrap().to_string(), cost != "0")
        })
        .collect();
    assert!(estimated.values().any(|e| *e) && estimated.values().any(|e| !e));
    for (file, html, pdf) in invoices(&t) {
        assert_eq!(
            html.contains("of the usage cost is an <strong>estimate</strong>"),
            estimated[&file],
            "{file}"
        );
        assert_eq!(
            pdf.contains("of the usage cost is an estimate"),
            estimated[&file],
            "{file}: {pdf}"
        );
    }
}

#[test]
fn credit_and_debit_notes_say_whom_to_ask_too() {
    let t = TestDir::with_fixture("demo");
    let policy = t.read("fixtures/demo/chargeback.toml").replacen(
        "payment_terms_days = 30\n",
        &format!("payment_terms_days = 30\n{ORGANIZATION}"),
        1,
    );
    t.write("policy.toml", &policy);
    let run = t.run(&["run", "-c", "policy.toml", "-p", "2025-01", "-q"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    std::fs::copy(
        t.path().join("fixtures/demo/late/late-2025-01.parquet"),
        t.path()
            .join("fixtures/demo/requests/2025-01/late-2025-01.parquet"),
    )
    .unwrap();
    let out = t.run(&[
        "amend",
        "--config",
        "policy.toml",
        "--period",
        "2025-01",
        "--as-of",
        "2025-02-10",
        "--reason",
        "late log shipments",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let notes: Value =
        serde_json::from_str(&t.read("out/2025-01/amendments/1/notes.json")).unwrap();
    let notes = notes["notes"].as_array().unwrap();
    assert!(!notes.is_empty());
    let month: Value =
        serde_json::from_str(&t.read("out/2025-01/amendments/1/invoices.json")).unwrap();
    let stem_of = |team: &Value| {
        month["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["team"] == *team)
            .map(|i| i["file"].as_str().unwrap().to_string())
            .unwrap()
    };
    for n in notes {
        let stem = stem_of(&n["team"]);
        let dir = "out/2025-01/amendments/1/notes";
        let html = t.read(&format!("{dir}/{stem}.html"));
        assert!(html.contains("<h2>Questions and disputes</h2>"), "{stem}");
        // The box carries the number, as the PDF's does.
        let number = n["note_number"].as_str().unwrap();
        assert!(
            html.contains(&format!(
                "<dt>Note number</dt><dd class=\"mono\">{number}</dd>"
            )),
            "{stem}"
        );
        assert!(
            html.contains("<dt>To dispute this note</dt><dd>Reply within 10 working days to &lt;ai-finance@example.com&gt; &amp; quote the invoice number</dd>"),
            "{stem}"
        );
        let pdf = squash(&pdf_text(&t.path().join(format!("{dir}/{stem}.pdf"))));
        assert!(kicker(&pdf), "{stem}: {pdf}");
        assert!(
            pdf.contains(&format!("Note number {number}")),
            "{stem}: {pdf}"
        );
        assert!(
            pdf.contains("Contact ai-finance@example.com"),
            "{stem}: {pdf}"
        );
        assert!(pdf.contains("To dispute this note Reply"), "{stem}: {pdf}");
        assert!(!pdf.contains("string of it"), "{stem}: {pdf}");
    }
}
