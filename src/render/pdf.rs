//! PDF invoices and the finance summary, typeset in-process by typst from
//! `templates/*.typ`. The templates read the same view model as the HTML
//! (`/data.json`, a part of `invoices.json`), and that JSON is attached to
//! the PDF (PDF/A-3b, relationship `Data`: the Factur-X idea), so a machine
//! can check every number the page shows. PDF/A-3, not 2: PDF/A-2 admits
//! only PDF/A files as attachments, and typst 0.13 refuses any under it.
//!
//! Deterministic: fonts are compiled into the binary (typst-assets), no
//! file outside the templates folder is visible, packages and the network
//! are not, `datetime.today()` is the issue date, and the PDF's dates and
//! document id come from the issue date and the document's number.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use typst::diag::{FileError, FileResult, Severity, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Smart};
use typst::layout::PagedDocument;
use typst::syntax::{FileId, Source, VirtualPath};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, World};
use typst_pdf::{PdfOptions, PdfStandard, PdfStandards, Timestamp};

use super::SummaryView;
use super::templates::Templates;
use crate::compute::amend::NoteView;
use crate::compute::invoice::{InvoiceView, MonthView};
use crate::error::{Error, Location, Result};

/// The virtual file the templates read their data from.
const DATA: &str = "/data.json";

/// The virtual file `summary.typ` reads the month's insights from
/// (`insights.json`); the other templates have none.
const INSIGHTS: &str = "/insights.json";

/// The folder of the generated main files: each includes a template and
/// attaches its data, so an overriding template cannot drop the attachment.
const WRAPPER_DIR: &str = "/__chargeback__/";

/// The standard library and the bundled fonts, loaded once per process.
struct Assets {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let fonts: Vec<Font> = typst_assets::fonts()
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .collect();
        Assets {
            library: LazyHash::new(Library::builder().build()),
            book: LazyHash::new(FontBook::from_fonts(&fonts)),
            fonts,
        }
    })
}

pub struct PdfRenderer<'t> {
    templates: &'t Templates,
    /// Parsed template sources, by file, with the URI each came from.
    sources: Mutex<HashMap<FileId, (String, Source)>>,
    /// Documents compiled so far, for `evict_now_and_then`.
    compiled: AtomicU64,
}

impl<'t> PdfRenderer<'t> {
    /// The PDF templates, and the files they include or show
    /// (`logo.png`), as `templates` finds them.
    pub fn new(templates: &'t Templates) -> PdfRenderer<'t> {
        PdfRenderer {
            templates,
            sources: Mutex::new(HashMap::new()),
            compiled: AtomicU64::new(0),
        }
    }

    /// `invoices/<team>.pdf`; the attached `invoice.json` is exactly the data
    /// the template rendered.
    pub fn invoice(&self, view: &InvoiceView) -> Result<Vec<u8>> {
        let (template, data, date) = invoice_job(view);
        let document = self.compile(template, data, date)?;
        let ident = format!("llm-chargeback/invoice/{}", view.invoice.invoice_number);
        self.export(template, &document, date, &ident)
    }

    /// `summary.pdf`; the attached `invoices.json` is the whole view
    /// model, and `insights.json` the month's insights, each byte for byte
    /// the run's file.
    pub fn summary(&self, view: &SummaryView) -> Result<Vec<u8>> {
        let (template, data, date) = summary_job(view.month);
        let document = self.compile_with(template, data, Some(json_bytes(view.insights)), date)?;
        let ident = format!("llm-chargeback/summary/{}", view.month.period);
        self.export(template, &document, date, &ident)
    }

    /// `notes/<team>.pdf` of an amendment; the attached `note.json` is the
    /// note as in `notes.json`, with the header it was printed under.
    pub fn note(&self, view: &NoteView) -> Result<Vec<u8>> {
        let template = "note.typ";
        let date = issue_datetime(view.month.issue_date);
        let document = self.compile(template, json_bytes(view), date)?;
        let ident = format!("llm-chargeback/note/{}", view.note.note_number);
        self.export(template, &document, date, &ident)
    }

    /// Whether `invoice.typ` compiles against this invoice's data: every
    /// error a PDF would stop on, without writing it.
    pub fn check_invoice(&self, view: &InvoiceView) -> Result<()> {
        let (template, data, date) = invoice_job(view);
        self.compile(template, data, date).map(drop)
    }

    /// Whether `summary.typ` compiles against the month's data.
    pub fn check_summary(&self, view: &SummaryView) -> Result<()> {
        let (template, data, date) = summary_job(view.month);
        self.compile_with(template, data, Some(json_bytes(view.insights)), date)
            .map(drop)
    }

    fn compile(
        &self,
        template: &str,
        data: Vec<u8>,
        date: Option<Datetime>,
    ) -> Result<PagedDocument> {
        self.compile_with(template, data, None, date)
    }

    /// A compilation whose `/insights.json` is `insights` (the summary).
    fn compile_with(
        &self,
        template: &str,
        data: Vec<u8>,
        insights: Option<Vec<u8>>,
        date: Option<Datetime>,
    ) -> Result<PagedDocument> {
        let world = RenderWorld {
            renderer: self,
            main: FileId::new(None, VirtualPath::new(format!("{WRAPPER_DIR}{template}"))),
            data: Bytes::new(data),
            insights: insights.map(Bytes::new),
            today: date,
        };
        let document = typst::compile::<PagedDocument>(&world).output;
        self.evict_now_and_then();
        document.map_err(|diags| self.template_error(template, &diags))
    }

    fn export(
        &self,
        template: &str,
        document: &PagedDocument,
        date: Option<Datetime>,
        ident: &str,
    ) -> Result<Vec<u8>> {
        let standards = PdfStandards::new(&[PdfStandard::A_3b])
            .map_err(|e| Error::policy(Location::file(template), e.to_string()))?;
        let options = PdfOptions {
            ident: Smart::Custom(ident),
            timestamp: date.map(Timestamp::new_utc),
            page_ranges: None,
            standards,
        };
        typst_pdf::pdf(document, &options).map_err(|diags| self.template_error(template, &diags))
    }

    /// Typst memoises layout across compilations in a process-wide cache.
    /// Every invoice has other data, so most entries are never hit again:
    /// unevicted, the cache held 3 GB after 1,000 invoices and each lookup
    /// got slower. Evicting what the last few documents did not use keeps
    /// what they share (fonts, shaped headings) at a fraction of the cost
    /// of evicting after every document.
    fn evict_now_and_then(&self) {
        const EVERY: u64 = 10;
        if self.compiled.fetch_add(1, Ordering::Relaxed) % EVERY == EVERY - 1 {
            typst::comemo::evict(1);
        }
    }

    /// The first error, as `uri:line:column: template error: …` with
    /// typst's hints.
    fn template_error(&self, template: &str, diags: &[SourceDiagnostic]) -> Error {
        let Some(d) = diags
            .iter()
            .find(|d| d.severity == Severity::Error)
            .or(diags.first())
        else {
            return Error::policy(Location::file(template), "template error");
        };
        let mut at = Location::file(self.uri_of(template));
        if let Some((uri, source)) = d.span.id().and_then(|id| self.source_of(id).ok()) {
            at.uri = uri;
            if let Some(range) = source.range(d.span) {
                at.row = source.byte_to_line(range.start).map(|l| l as u64 + 1);
                at.column = source
                    .byte_to_column(range.start)
                    .map(|c| (c + 1).to_string());
            }
        }
        let mut message = format!("template error: {}", d.message);
        for h in &d.hints {
            message.push_str("; ");
            message.push_str(h);
        }
        Error::policy(at, message)
            .with_hint("the fields a template may use are the keys of its data: invoices.json for summary.typ (and insights.json, as `json(\"/insights.json\")`), `{ month, invoice }` for invoice.typ, `{ month, amendment, reason, note }` for note.typ")
    }

    fn uri_of(&self, name: &str) -> String {
        match self.templates.file(name) {
            Ok(Some(f)) => f.uri,
            _ => format!("templates/{name}"),
        }
    }

    /// A file of the templates folder: the override, else the built-in.
    fn read(&self, id: FileId) -> FileResult<(String, Bytes)> {
        if id.package().is_some() {
            return Err(FileError::Other(Some(
                "packages are not available: templates may only use files of the templates folder"
                    .into(),
            )));
        }
        let rel = id
            .vpath()
            .as_rootless_path()
            .to_string_lossy()
            .replace('\\', "/");
        if let Some(template) = format!("/{rel}").strip_prefix(WRAPPER_DIR) {
            let text = wrapper(template);
            return Ok((
                format!("templates/{template}"),
                Bytes::new(text.into_bytes()),
            ));
        }
        match self.templates.file(&rel) {
            Ok(Some(f)) => Ok((f.uri, Bytes::new(f.bytes))),
            Ok(None) => Err(FileError::NotFound(
                id.vpath().as_rooted_path().to_path_buf(),
            )),
            Err(e) => Err(FileError::Other(Some(e.to_string().into()))),
        }
    }

    fn source_of(&self, id: FileId) -> FileResult<(String, Source)> {
        let mut cache = self.sources.lock().expect("template cache lock");
        if let Some(s) = cache.get(&id) {
            return Ok(s.clone());
        }
        let (uri, bytes) = self.read(id)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| FileError::InvalidUtf8)?;
        let entry = (uri, Source::new(id, text.to_string()));
        cache.insert(id, entry.clone());
        Ok(entry)
    }
}

/// One compilation: the templates, one document's data and its date.
struct RenderWorld<'a> {
    renderer: &'a PdfRenderer<'a>,
    main: FileId,
    data: Bytes,
    insights: Option<Bytes>,
    today: Option<Datetime>,
}

impl World for RenderWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &assets().library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &assets().book
    }

    fn main(&self) -> FileId {
        self.main
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        self.renderer.source_of(id).map(|(_, s)| s)
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id.package().is_none() && id.vpath().as_rooted_path() == std::path::Path::new(DATA) {
            return Ok(self.data.clone());
        }
        if let Some(insights) = &self.insights
            && id.package().is_none()
            && id.vpath().as_rooted_path() == std::path::Path::new(INSIGHTS)
        {
            return Ok(insights.clone());
        }
        self.renderer.read(id).map(|(_, b)| b)
    }

    fn font(&self, index: usize) -> Option<Font> {
        assets().fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<i64>) -> Option<Datetime> {
        self.today
    }
}

/// The main file of a compilation: the template, then its data attached
/// (`invoice.json` or `invoices.json`, as the file is named in the output;
/// the summary's insights too, as `insights.json`).
fn wrapper(template: &str) -> String {
    let (name, what) = if template == "summary.typ" {
        (
            "invoices.json",
            "the finance summary's data (the run's invoices.json)",
        )
    } else if template == "note.typ" {
        (
            "note.json",
            "this note's data, as printed, from the amendment's notes.json",
        )
    } else {
        (
            "invoice.json",
            "this invoice's data, as printed, from the run's invoices.json",
        )
    };
    let mut main = format!(
        "#include \"/{template}\"\n\
         #pdf.embed(\"/{name}\", read(\"{DATA}\", encoding: none), relationship: \"data\", \
         mime-type: \"application/json\", description: \"{what}\")\n"
    );
    if template == "summary.typ" {
        main.push_str(&format!(
            "#pdf.embed(\"{INSIGHTS}\", read(\"{INSIGHTS}\", encoding: none), relationship: \"data\", \
             mime-type: \"application/json\", description: \"the month's insights (the run's insights.json)\")\n"
        ));
    }
    main
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).expect("view model serialises");
    v.push(b'\n');
    v
}

/// The template, data and date of an invoice document.
fn invoice_job(view: &InvoiceView) -> (&'static str, Vec<u8>, Option<Datetime>) {
    (
        "invoice.typ",
        json_bytes(view),
        issue_datetime(view.month.issue_date),
    )
}

/// The template, data and date of the finance summary.
fn summary_job(month: &MonthView) -> (&'static str, Vec<u8>, Option<Datetime>) {
    (
        "summary.typ",
        json_bytes(month),
        issue_datetime(&month.issue_date),
    )
}

/// `2025-02-01` → that day, 00:00:00 (UTC in the PDF).
fn issue_datetime(date: &str) -> Option<Datetime> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    Datetime::from_ymd_hms(d.year(), d.month() as u8, d.day() as u8, 0, 0, 0)
}
