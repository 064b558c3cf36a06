//! HTML invoices and the finance summary, through Handlebars in strict
//! mode: a template that names a missing field is an error, and every value
//! is HTML-escaped. Templates use triple braces once: the summary's
//! what-if blob, JSON whose every `<` is written `\u003c` by its producer
//! so it cannot close its script element. `style.css.hbs`, `whatif.js` and
//! `questions.html.hbs` are partials, inlined into the pages so each is one
//! self-contained file.

use handlebars::{
    Context as HbContext, Handlebars, Helper, HelperResult, Output, RenderContext,
    RenderErrorReason,
};
use serde::Serialize;

use super::SummaryView;
use super::templates::Templates;
use crate::compute::amend::NoteView;
use crate::compute::compare::Comparison;
use crate::compute::invoice::InvoiceView;
use crate::error::{Error, Location, Result};
use crate::money::{Decimal, parse_amount};

pub const TEMPLATE_NAMES: [&str; 7] = [
    "invoice.html.hbs",
    "summary.html.hbs",
    "note.html.hbs",
    "style.css.hbs",
    "questions.html.hbs",
    "whatif.js",
    "compare.html.hbs",
];

/// The what-if panel's data as JSON to inline in a script element: every
/// `<` written `\u003c`, so no value can close the element or open a
/// comment.
pub fn whatif_json(panel: &crate::compute::whatif::Panel) -> String {
    serde_json::to_string(panel)
        .expect("the panel serialises")
        .replace('<', "\\u003c")
}

pub struct HtmlRenderer {
    hb: Handlebars<'static>,
    /// Where each registered template came from, for error messages.
    sources: std::collections::BTreeMap<String, String>,
}

impl HtmlRenderer {
    /// The HTML templates, as `templates` finds them.
    pub fn new(templates: &Templates) -> Result<HtmlRenderer> {
        let mut hb = Handlebars::new();
        let mut sources = std::collections::BTreeMap::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::html_escape);
        hb.register_helper("num", Box::new(num_helper));
        hb.register_helper("money", Box::new(money_helper));
        hb.register_helper("add", Box::new(add));
        hb.register_helper("sub", Box::new(sub));
        hb.register_helper("nonzero", Box::new(nonzero));
        for name in TEMPLATE_NAMES {
            let (uri, text) = templates.text(name)?;
            let key = name.trim_end_matches(".hbs");
            sources.insert(key.to_string(), uri.clone());
            hb.register_template_string(key, text).map_err(|e| {
                let pos = e.pos();
                Error::policy(
                    Location {
                        uri: uri.clone(),
                        row: pos.map(|p| p.0 as u64),
                        column: pos.map(|p| p.1.to_string()),
                    },
                    format!("template error: {}", e.reason()),
                )
            })?;
        }
        Ok(HtmlRenderer { hb, sources })
    }

    pub fn invoice(&self, view: &InvoiceView) -> Result<String> {
        self.render("invoice.html", view)
    }

    pub fn summary(&self, view: &SummaryView) -> Result<String> {
        self.render("summary.html", view)
    }

    pub fn compare(&self, comparison: &Comparison) -> Result<String> {
        self.render("compare.html", comparison)
    }

    pub fn note(&self, view: &NoteView) -> Result<String> {
        self.render("note.html", view)
    }

    /// Template `name` (`summary.html`: without `.hbs`) rendered from any
    /// data; the tests render the summary from a month's `invoices.json`
    /// with a what-if blob of their own.
    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<String> {
        self.hb.render(name, data).map_err(|e| {
            let at = Location {
                uri: e
                    .template_name
                    .as_ref()
                    .and_then(|t| self.sources.get(t))
                    .cloned()
                    .unwrap_or_else(|| name.to_string()),
                row: e.line_no.map(|l| l as u64),
                column: e.column_no.map(|c| c.to_string()),
            };
            let reason = match e.reason() {
                RenderErrorReason::MissingVariable(Some(path)) => {
                    format!("the template uses `{path}`, which the invoice data does not have")
                }
                other => other.to_string(),
            };
            Error::policy(at, format!("template error: {reason}"))
                .with_hint(
                    "the fields a template may use are the keys of its data: invoices.json, `insights` (insights.json) and `whatif_json` (the what-if panel's data) for summary.html.hbs, `{ month: { period, currency, issuer, issue_date, due_date }, invoice, draft }` for invoice.html.hbs, `{ month, amendment, reason, note }` for note.html.hbs, compare.json for compare.html.hbs",
                )
        })
    }
}

/// `{{num tokens}}`: an integer with thousands separators.
fn num_helper(
    h: &Helper,
    _: &Handlebars,
    _: &HbContext,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let v = h.param(0).map(|p| p.value().clone()).unwrap_or_default();
    let text = match v {
        serde_json::Value::Number(n) => group_digits(&n.to_string()),
        serde_json::Value::String(s) => group_digits(&s),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    out.write(&handlebars::html_escape(&text))?;
    Ok(())
}

/// `{{money amount}}`: a decimal string with thousands separators, as is.
fn money_helper(
    h: &Helper,
    _: &Handlebars,
    _: &HbContext,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let v = h.param(0).map(|p| p.value().clone()).unwrap_or_default();
    let text = match v {
        serde_json::Value::String(s) => group_digits(&s),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    out.write(&handlebars::html_escape(&text))?;
    Ok(())
}

handlebars::handlebars_helper!(add: |a: str, b: str| decimal_op(a, b, |x, y| x + y));
handlebars::handlebars_helper!(sub: |a: str, b: str| decimal_op(a, b, |x, y| x - y));
// `"0.00"` and `"0"` (a currency without minor units) are both zero: a
// template asks this, never compares the text.
handlebars::handlebars_helper!(nonzero: |a: str| parse_amount(a).is_ok_and(|x| !x.is_zero()));

/// Exact arithmetic on two decimal strings for templates (`{{money (sub total usage_cost)}}`),
/// keeping the larger number of places.
fn decimal_op(a: &str, b: &str, op: fn(Decimal, Decimal) -> Decimal) -> String {
    match (parse_amount(a), parse_amount(b)) {
        (Ok(x), Ok(y)) => {
            let mut r = op(x, y);
            r.rescale(x.scale().max(y.scale()));
            r.to_string()
        }
        _ => String::new(),
    }
}

/// `1234567.89` → `1,234,567.89`; `-1234` → `-1,234`; other text unchanged.
pub fn group_digits(s: &str) -> String {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", s),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits() {
        assert_eq!(group_digits("1234567.89"), "1,234,567.89");
        assert_eq!(group_digits("-1234"), "-1,234");
        assert_eq!(group_digits("999"), "999");
        assert_eq!(group_digits("0.50"), "0.50");
        assert_eq!(group_digits("n/a"), "n/a");
    }

    #[test]
    fn nonzero_reads_the_number_not_the_text() {
        let mut hb = Handlebars::new();
        hb.register_helper("nonzero", Box::new(nonzero));
        let says = |v: &str| {
            hb.render_template(
                "{{#if (nonzero v)}}yes{{else}}no{{/if}}",
                &serde_json::json!({ "v": v }),
            )
            .unwrap()
        };
        for (v, want) in [
            ("0.00", "no"),
            ("0", "no"),
            ("-0.000", "no"),
            ("0.01", "yes"),
            ("12", "yes"),
            ("-3", "yes"),
            ("n/a", "no"),
        ] {
            assert_eq!(says(v), want, "{v}");
        }
    }
}
