//! Stage three: every output of a month, made from the computed month
//! alone — the documents (HTML and PDF, one template resolver for both)
//! from the view model, the ledgers from the rows that own them. Nothing
//! here reads an input or recomputes money.

pub mod allocations;
pub mod html;
pub mod pdf;
pub mod templates;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::compute::insights::Insights;
use crate::compute::invoice::{Invoice, Issuer, MonthView, ledger_csv};
use crate::compute::journal::journal_csv;
use crate::compute::reconcile::{exceptions_csv, reconciliation_csv};
use crate::compute::{Month, Quarantine};
use crate::error::Result;
use crate::load::ingest::quarantine_csv;
use crate::load::notes::NotesFile;
use crate::progress::Progress;
use crate::publish::Outputs;
use crate::schema;
use allocations::allocations_parquet;
use html::HtmlRenderer;
use pdf::PdfRenderer;
use templates::Templates;

/// What the finance summary renders: the keys of `invoices.json` at the
/// top, as they always were, and the month's insights (`insights.json`)
/// under `insights`. `invoices.json` itself holds no insights.
#[derive(Debug, Serialize)]
pub struct SummaryView<'a> {
    #[serde(flatten)]
    pub month: &'a MonthView,
    pub insights: &'a Insights,
    /// The what-if panel's data, ready to inline ([`html::whatif_json`]).
    pub whatif_json: Option<String>,
}

impl<'a> SummaryView<'a> {
    pub fn of(month: &'a Month<'_>) -> SummaryView<'a> {
        SummaryView {
            month: &month.view,
            insights: &month.insights,
            whatif_json: month.panel.as_ref().map(html::whatif_json),
        }
    }
}

/// Every output of `month`: invoices and the summary as HTML and PDF, then
/// the data and ledgers of [`data_outputs`].
pub fn render(month: &Month<'_>, templates: &Templates, progress: &Progress) -> Result<Outputs> {
    let stage = progress.stage("render invoices (HTML, PDF)");
    let view = &month.view;
    let html = HtmlRenderer::new(templates)?;
    let pdf = PdfRenderer::new(templates);
    // Every document on the cores there are, added in the same order (and
    // the first error in that order) as one by one.
    stage.set_total(view.invoices.len() as u64 + 1);
    let done = stage.counter();
    let invoice = |inv: &Invoice| -> Result<(Vec<u8>, Vec<u8>)> {
        let v = view.invoice_view(inv);
        let page = html.invoice(&v)?.into_bytes();
        let doc = pdf.invoice(&v)?;
        done.inc(1);
        Ok((page, doc))
    };
    let summary_view = SummaryView::of(month);
    let summary = || -> Result<(Vec<u8>, Vec<u8>)> {
        let page = html.summary(&summary_view)?.into_bytes();
        let doc = pdf.summary(&summary_view)?;
        done.inc(1);
        Ok((page, doc))
    };
    // Typesetting recurses deeply: threads get a large stack.
    let (invoices, summary): (Vec<_>, _) =
        match rayon::ThreadPoolBuilder::new().stack_size(64 << 20).build() {
            Ok(pool) => pool.join(|| view.invoices.par_iter().map(invoice).collect(), summary),
            Err(_) => (view.invoices.iter().map(invoice).collect(), summary()),
        };
    let mut outputs = data_outputs(month);
    for (inv, rendered) in view.invoices.iter().zip(invoices) {
        let (page, doc) = rendered?;
        outputs.add(format!("invoices/{}.html", inv.file), page);
        outputs.add(format!("invoices/{}.pdf", inv.file), doc);
    }
    let (page, doc) = summary?;
    outputs.add("summary.html", page);
    outputs.add("summary.pdf", doc);
    stage.done();
    Ok(outputs)
}

/// Every template compiled against the month's data, nothing typeset
/// into a file: each HTML document, and each PDF template once (the
/// summary, and the invoice with the most lines). What `validate` checks.
pub fn check(month: &Month<'_>, templates: &Templates, progress: &Progress) -> Result<()> {
    let stage = progress.stage("check templates (HTML, PDF)");
    let view = &month.view;
    let html = HtmlRenderer::new(templates)?;
    let pdf = PdfRenderer::new(templates);
    for inv in &view.invoices {
        html.invoice(&view.invoice_view(inv))?;
    }
    html.summary(&SummaryView::of(month))?;
    // The first of the longest, so the check does not depend on sorting.
    let longest = view.invoices.iter().rev().max_by_key(|inv| inv.lines.len());
    if let Some(inv) = longest {
        pdf.check_invoice(&view.invoice_view(inv))?;
    }
    pdf.check_summary(&SummaryView::of(month))?;
    stage.done();
    Ok(())
}

/// The documents of an amendment's notes: `notes/<team>.html` and
/// `notes/<team>.pdf` each, under the file stems of the month's invoices.
pub fn notes(
    file: &NotesFile,
    issuer: &Issuer,
    stems: &BTreeMap<String, String>,
    templates: &Templates,
) -> Result<Outputs> {
    let html = HtmlRenderer::new(templates)?;
    let pdf = PdfRenderer::new(templates);
    let mut outputs = Outputs::default();
    for note in &file.notes {
        let view = file.view(issuer, note);
        let stem = stems
            .get(&note.team)
            .cloned()
            .unwrap_or_else(|| crate::compute::invoice::file_stem(&note.team));
        outputs.add(format!("notes/{stem}.html"), html.note(&view)?.into_bytes());
        outputs.add(format!("notes/{stem}.pdf"), pdf.note(&view)?);
    }
    Ok(outputs)
}

/// The month as data: `invoices.json`, `budgets.json`, `insights.json`,
/// the ledgers (with `allocations.parquet`, the lineage of every usage
/// line, and the GL journal when the policy has `[gl]`) and the quarantine
/// files.
pub fn data_outputs(month: &Month<'_>) -> Outputs {
    let view = &month.view;
    let mut outputs = Outputs::default();
    outputs.add_json("invoices.json", view);
    outputs.add_json(
        "budgets.json",
        &view
            .invoices
            .iter()
            .map(|i| (i.team.clone(), &i.budget))
            .collect::<BTreeMap<_, _>>(),
    );
    outputs.add_json("insights.json", &month.insights);
    outputs.add("ledger.csv", ledger_csv(view));
    outputs.add(
        "reconciliation.csv",
        reconciliation_csv(&month.reconciliation, month.scale, &month.view.currency),
    );
    outputs.add("exceptions.csv", exceptions_csv(&month.exceptions));
    outputs.add("allocations.parquet", allocations_parquet(month));
    if let Some(journal) = &month.journal {
        outputs.add("journal.csv", journal_csv(journal));
    }
    add_quarantine(&mut outputs, &month.quarantine);
    outputs
}

fn add_quarantine(outputs: &mut Outputs, q: &Quarantine<'_>) {
    let files = [
        (
            "quarantine/requests.csv",
            &q.requests,
            &schema::request::ALL[..],
        ),
        (
            "quarantine/duplicates.csv",
            &q.duplicates,
            &schema::request::ALL[..],
        ),
        (
            "quarantine/billing.csv",
            &q.billing,
            &schema::quarantine::BILL_FIELDS[..],
        ),
        (
            "quarantine/outcomes.csv",
            &q.outcomes,
            &schema::outcome::ALL[..],
        ),
    ];
    for (path, rows, fields) in files {
        if rows.is_empty() {
            continue;
        }
        // The value-based and insight columns only when a row set aside
        // holds one: logs without them keep the quarantine columns they
        // always had.
        let mut fields = fields.to_vec();
        if fields == schema::request::ALL {
            let optional: [&[&str]; 2] = [
                &schema::request::VALUE_COLUMNS,
                &schema::request::INSIGHT_COLUMNS,
            ];
            for columns in optional {
                if rows
                    .iter()
                    .any(|q| columns.iter().any(|c| !q.field(c).is_empty()))
                {
                    fields.extend(columns);
                }
            }
        }
        outputs.add(path, quarantine_csv(rows, &fields));
    }
}
