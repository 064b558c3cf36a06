//! PDF invoices and the summary: the text a reader sees carries every
//! amount of invoices.json, the attached JSON is that data, reruns give the
//! same bytes, long invoices paginate, and template errors point at the
//! template. Text, fonts and attachments are read with poppler-utils
//! (`pdftotext`, `pdfdetach`, `pdfinfo`, `pdffonts`; `.ci/run` installs
//! them).

use std::path::Path;
use std::process::Command;

use chargeback::render::html::group_digits;
use serde_json::Value;

use crate::util::{Output, TestDir};

/// Runs a poppler-utils tool; its stdout.
fn poppler(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "running `{tool}`: {e}\nhint: install poppler-utils (`apt-get install poppler-utils`)"
        )
    });
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub(crate) fn pdf_text(pdf: &Path) -> String {
    poppler("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"])
}

fn page_text(pdf: &Path, page: usize) -> String {
    let p = page.to_string();
    poppler(
        "pdftotext",
        &["-layout", "-f", &p, "-l", &p, pdf.to_str().unwrap(), "-"],
    )
}

fn pages(pdf: &Path) -> usize {
    let info = poppler("pdfinfo", &[pdf.to_str().unwrap()]);
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("pdfinfo prints the page count")
}

/// The attached files of a PDF: (name, bytes).
fn attachments(pdf: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let listing = poppler("pdfdetach", &["-list", pdf.to_str().unwrap()]);
    poppler(
        "pdfdetach",
        &[
            "-saveall",
            "-o",
            dir.path().to_str().unwrap(),
            pdf.to_str().unwrap(),
        ],
    );
    let mut out: Vec<(String, Vec<u8>)> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(_, name)| {
            let name = name.trim().to_string();
            let bytes = std::fs::read(dir.path().join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

/// `pdftotext -layout` keeps words but not the gaps between columns.
pub(crate) fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(t: &TestDir, config: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--config", config, "--period", "2025-01"];
    args.extend_from_slice(extra);
    t.run(&args)
}

fn check_invoice_pdf(pdf: &Path, month: &Value, inv: &Value) {
    let text = squash(&pdf_text(pdf));
    let s = |v: &Value| v.as_str().unwrap().to_string();
    assert!(text.contains(&s(&inv["invoice_number"])), "{text}");
    assert!(text.contains(&s(&inv["team_name"])), "{text}");
    assert!(text.contains(&s(&inv["team"])), "{text}");
    for line in inv["lines"].as_array().unwrap() {
        let amount = group_digits(&s(&line["amount"]));
        assert!(
            text.contains(&amount),
            "line amount {amount} missing: {text}"
        );
    }
    for field in ["usage_cost", "total"] {
        assert!(
            text.contains(&group_digits(&s(&inv[field]))),
            "{field}: {text}"
        );
    }
    // The total is on the last page, after the words that name it.
    let last = squash(&page_text(pdf, pages(pdf)));
    let total = format!(
        "Total due {} {}",
        s(&month["currency"]),
        group_digits(&s(&inv["total"]))
    );
    assert!(
        last.contains(&total),
        "{total} not on the last page: {last}"
    );

    let files = attachments(pdf);
    assert_eq!(files.len(), 1, "one attachment");
    assert_eq!(files[0].0, "invoice.json");
    let attached: Value = serde_json::from_slice(&files[0].1).unwrap();
    assert_eq!(&attached["invoice"], inv, "the attachment is the invoice");
    for k in ["period", "currency", "issue_date", "due_date", "issuer"] {
        assert_eq!(attached["month"][k], month[k]);
    }
    assert!(
        attached["month"].get("invoices").is_none(),
        "an invoice carries no other team's data"
    );
}

#[test]
fn demo_pdfs_show_every_amount_and_carry_their_data() {
    let t = TestDir::with_fixture("demo");
    let out = run(&t, "fixtures/demo/chargeback.toml", &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let dir = t.path().join("out/2025-01");
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let invoices = month["invoices"].as_array().unwrap();
    assert!(!invoices.is_empty());
    for inv in invoices {
        let pdf = dir.join(format!("invoices/{}.pdf", inv["file"].as_str().unwrap()));
        check_invoice_pdf(&pdf, &month, inv);
    }

    let summary = dir.join("summary.pdf");
    let text = squash(&pdf_text(&summary));
    for k in [
        "billed_total",
        "estimated_total",
        "attributed_total",
        "unattributed",
        "charged_total",
    ] {
        let v = group_digits(month[k].as_str().unwrap());
        assert!(text.contains(&v), "{k} {v}: {text}");
    }
    for inv in invoices {
        for k in ["team_name", "invoice_number"] {
            assert!(text.contains(inv[k].as_str().unwrap()), "{k}: {text}");
        }
        assert!(text.contains(&group_digits(inv["total"].as_str().unwrap())));
    }
    for chart in ["cost_by_team", "cost_by_model"] {
        for bar in month[chart].as_array().unwrap() {
            let v = group_digits(bar["amount"].as_str().unwrap());
            assert!(text.contains(&v), "{chart} {v}: {text}");
        }
    }
    assert_eq!(
        month["daily_cost"].as_array().unwrap().len(),
        31,
        "every day of January"
    );
    let files = attachments(&summary);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["insights.json", "invoices.json"]);
    for (name, bytes) in &files {
        assert_eq!(
            *bytes,
            t.read_bytes(&format!("out/2025-01/{name}")),
            "the summary carries {name} byte for byte"
        );
    }

    // The charts are drawn in the HTML too, one SVG bar per bar of the data.
    let html = t.read("out/2025-01/summary.html");
    let bars = month["cost_by_team"].as_array().unwrap().len()
        + month["cost_by_model"].as_array().unwrap().len();
    assert_eq!(html.matches("<svg class=\"hbar\"").count(), bars);
    assert_eq!(html.matches("<div class=\"day\"").count(), 31);

    // PDF/A-3b (typst checks the rules it can while writing; no validator
    // runs here), dated by the issue date, not the clock.
    let meta = poppler("pdfinfo", &["-meta", summary.to_str().unwrap()]);
    assert!(meta.contains("<pdfaid:part>3</pdfaid:part>"), "{meta}");
    assert!(
        meta.contains("<pdfaid:conformance>B</pdfaid:conformance>"),
        "{meta}"
    );
    // What a validator would look at first: every font embedded, an output
    // intent, and the JSON as an associated file of the document.
    let fonts = poppler("pdffonts", &[summary.to_str().unwrap()]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{fonts}");
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let n = cols.len();
        assert_eq!(cols[n - 5..n - 2], ["yes", "yes", "yes"], "{row}");
    }
    let bytes = t.read_bytes("out/2025-01/summary.pdf");
    for needle in ["/OutputIntents", "/AFRelationship /Data", "/AF ["] {
        assert!(
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} missing"
        );
    }
    let info = poppler("pdfinfo", &["-isodates", summary.to_str().unwrap()]);
    assert!(info.contains("2025-02-01T00:00:00"), "{info}");
}

#[test]
fn pdfs_are_byte_identical_across_runs() {
    let a = TestDir::with_fixture("mini");
    let b = TestDir::with_fixture("mini");
    for t in [&a, &b] {
        let out = run(
            t,
            "fixtures/mini/chargeback.toml",
            &["--as-of", "2025-01-20"],
        );
        assert_eq!(out.code, 0, "{}", out.transcript());
    }
    let pdfs: Vec<String> = a
        .files("out/2025-01")
        .into_iter()
        .filter(|f| f.ends_with(".pdf"))
        .collect();
    assert!(pdfs.contains(&"summary.pdf".to_string()));
    assert!(pdfs.contains(&"invoices/support.pdf".to_string()));
    for f in &pdfs {
        let p = format!("out/2025-01/{f}");
        assert_eq!(
            a.read_bytes(&p),
            b.read_bytes(&p),
            "{f} differs between runs"
        );
    }
    // The as-of date is the document's date.
    let info = poppler(
        "pdfinfo",
        &[
            "-isodates",
            a.path().join("out/2025-01/summary.pdf").to_str().unwrap(),
        ],
    );
    assert!(info.contains("2025-01-20T00:00:00"), "{info}");
}

#[test]
fn team_names_with_markup_print_as_text() {
    let t = TestDir::with_fixture("mini");
    // A team id full of typst and HTML markup, seen in the logs only: its
    // id is its name on the invoice.
    let team = r"<b>#x $y$ *z* \w";
    t.write(
        "fixtures/mini/requests/markup.csv",
        &format!(
            "request_id,timestamp,provider,model,team,use_case,input_tokens,output_tokens\n\
             m1,2025-01-09T10:00:00Z,anthropic,claude-3-5-haiku,\"{team}\",<i>#use $case$,1000000,0\n"
        ),
    );
    let out = run(&t, "fixtures/mini/chargeback.toml", &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let inv = month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["team"] == team)
        .expect("an invoice for the markup team");
    let file = inv["file"].as_str().unwrap();
    let pdf = t.path().join(format!("out/2025-01/invoices/{file}.pdf"));
    check_invoice_pdf(&pdf, &month, inv);
    let text = pdf_text(&pdf);
    assert!(text.contains(team), "{text}");
    assert!(text.contains("<i>#use $case$"), "{text}");
    let summary = pdf_text(&t.path().join("out/2025-01/summary.pdf"));
    assert!(summary.contains(team), "{summary}");
    assert!(
        summary.contains("Search <Relevance> & Ranking"),
        "{summary}"
    );

    let html = t.read(&format!("out/2025-01/invoices/{file}.html"));
    assert!(html.contains("&lt;b&gt;#x $y$ *z* \\w"), "{html}");
    assert!(!html.contains("<b>#x"));
}

#[test]
fn two_hundred_lines_paginate_with_the_total_on_the_last_page() {
    let t = TestDir::with_fixture("mini");
    let mut csv = String::from(
        "request_id,timestamp,provider,model,team,use_case,input_tokens,output_tokens\n",
    );
    for i in 0..200 {
        let model = if i % 2 == 0 {
            "claude-3-5-haiku"
        } else {
            "claude-3-5-sonnet"
        };
        csv.push_str(&format!(
            "bulk{i},2025-01-{:02}T10:00:00Z,anthropic,{model},bulk,use case {:03},{},{}\n",
            i % 28 + 1,
            i / 2,
            1000 + i * 7919,
            i * 131
        ));
    }
    t.write("fixtures/mini/requests/bulk.csv", &csv);
    let out = run(&t, "fixtures/mini/chargeback.toml", &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let inv = month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["team"] == "bulk")
        .unwrap();
    let usage = inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "usage")
        .count();
    assert_eq!(usage, 200);
    let pdf = t.path().join("out/2025-01/invoices/bulk.pdf");
    let n = pages(&pdf);
    assert!(n >= 4, "200 lines on {n} pages");
    check_invoice_pdf(&pdf, &month, inv);
    // Every page is numbered and repeats the table header; every use case
    // is on some page.
    let mut seen = 0;
    for p in 1..=n {
        let text = page_text(&pdf, p);
        assert!(
            squash(&text).contains(&format!("Page {p} of {n}")),
            "page {p}: {text}"
        );
        assert!(text.contains("USE CASE"), "header on page {p}");
        seen += (0..100)
            .filter(|u| text.contains(&format!("use case {u:03}")))
            .count();
    }
    assert!(seen >= 100, "every use case appears");
    assert_eq!(
        (1..n)
            .filter(|p| squash(&page_text(&pdf, *p)).contains("Total due"))
            .count(),
        0,
        "the total is only on the last page"
    );
}

#[test]
fn branding_overrides_the_pdf_templates() {
    let t = TestDir::with_fixture("mini");
    let policy = t
        .read("fixtures/mini/chargeback.toml")
        .replace("[output]\n", "[output]\ntemplates = \"branding/\"\n");
    t.write("fixtures/mini/chargeback.toml", &policy);
    t.write(
        "branding/brand.typ",
        "#let accent = rgb(\"#8a1538\")\n#let ink = black\n#let muted = gray\n\
         #let rule = silver\n#let soft = luma(245)\n#let ok = green\n#let warn = orange\n\
         #let crit = red\n#let bar-alt = silver\n#let body-font = \"New Computer Modern\"\n\
         #let mono-font = \"DejaVu Sans Mono\"\n\
         #let logo = text(weight: \"bold\", tracking: 0.2em)[ACME FINANCE]\n",
    );
    let out = run(&t, "fixtures/mini/chargeback.toml", &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let text = pdf_text(&t.path().join("out/2025-01/invoices/support.pdf"));
    assert!(text.contains("ACME FINANCE"), "{text}");
}

#[test]
fn a_template_error_names_the_template_line_and_field() {
    let t = TestDir::with_fixture("mini");
    let policy = t
        .read("fixtures/mini/chargeback.toml")
        .replace("[output]\n", "[output]\ntemplates = \"branding/\"\n");
    t.write("fixtures/mini/chargeback.toml", &policy);
    t.write(
        "branding/invoice.typ",
        "#import \"common.typ\": *\n\n#data.invoice.purchase_order\n",
    );
    let out = run(&t, "fixtures/mini/chargeback.toml", &[]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("branding/invoice.typ:3:"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("purchase_order"), "{}", out.stderr);
    assert!(!t.exists("out/2025-01/manifest.json"));
    // `validate` compiles the template against the same data (typesetting
    // no PDF) and stops on the same error.
    let checked = t.run(&[
        "validate",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(checked.code, 1, "{}", checked.transcript());
    assert_eq!(checked.stderr, out.stderr);
}
