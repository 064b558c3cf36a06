//! Credit and debit notes, pure: a month as re-rated now against the
//! month as last issued, team by team and line by line.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compute::invoice::{Issuer, MonthView, USAGE_KIND};
use crate::load::notes::{Issued, IssuedInvoice, IssuedLine, NoteLine, NoteRecord, NotesFile};
use crate::money::{Decimal, format_amount};

/// What one note document is rendered from, HTML and PDF alike.
#[derive(Debug, Serialize)]
pub struct NoteView<'a> {
    pub month: NoteHeader<'a>,
    pub amendment: u32,
    pub reason: &'a str,
    pub note: &'a NoteRecord,
}

/// The month a note amends, and the note's own date.
#[derive(Debug, Serialize)]
pub struct NoteHeader<'a> {
    pub period: &'a str,
    pub currency: &'a str,
    pub issuer: &'a Issuer,
    pub issue_date: &'a str,
}

impl NotesFile {
    /// The document of one of its notes.
    pub fn view<'a>(&'a self, issuer: &'a Issuer, note: &'a NoteRecord) -> NoteView<'a> {
        NoteView {
            month: NoteHeader {
                period: &self.period,
                currency: &self.currency,
                issuer,
                issue_date: &self.issue_date,
            },
            amendment: self.amendment,
            reason: &self.reason,
            note,
        }
    }
}

/// What a line is matched on between two states of an invoice: a usage
/// line by its provider, model, use case and whether it is estimated (its
/// words may change), any other line by its kind and words (a tier that
/// changed is a line gone and a line added).
type LineKey = (String, String, String, String, bool);

fn key(l: &IssuedLine) -> LineKey {
    if l.kind == USAGE_KIND {
        (
            l.kind.clone(),
            l.provider.clone(),
            l.model.clone(),
            l.use_case.clone(),
            l.estimated,
        )
    } else {
        (
            l.kind.clone(),
            l.description.clone(),
            String::new(),
            String::new(),
            false,
        )
    }
}

impl Issued {
    /// The month as this run would issue it.
    pub fn from_view(view: &MonthView) -> Issued {
        Issued {
            currency: view.currency.clone(),
            invoices: view
                .invoices
                .iter()
                .map(|i| IssuedInvoice {
                    team: i.team.clone(),
                    team_name: i.team_name.clone(),
                    invoice_number: i.invoice_number.clone(),
                    total: i.total.clone(),
                    lines: i
                        .lines
                        .iter()
                        .map(|l| IssuedLine {
                            kind: l.kind.clone(),
                            description: l.description.clone(),
                            provider: l.provider.clone(),
                            model: l.model.clone(),
                            use_case: l.use_case.clone(),
                            estimated: l.estimated,
                            amount: l.amount.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// An amount as a published document wrote it; a string that is not one
/// counts as zero (the documents are ours, and were checked when issued).
fn amount(s: &str) -> Decimal {
    s.parse().unwrap_or(Decimal::ZERO)
}

/// One note per team whose total differs between `previous` (the month as
/// last issued) and `now`, numbered `<invoice number>-A<amendment>`.
/// `original` is the month as first issued: the invoice a note corrects.
pub fn notes(
    original: &Issued,
    previous: &Issued,
    now: &Issued,
    amendment: u32,
    scale: u32,
) -> Vec<NoteRecord> {
    let money = |d: Decimal| format_amount(d, scale);
    let by_team = |m: &Issued| -> BTreeMap<String, IssuedInvoice> {
        m.invoices
            .iter()
            .map(|i| (i.team.clone(), i.clone()))
            .collect()
    };
    let (before, after) = (by_team(previous), by_team(now));
    let first: BTreeMap<&str, &str> = original
        .invoices
        .iter()
        .map(|i| (i.team.as_str(), i.invoice_number.as_str()))
        .collect();
    let mut teams: Vec<&String> = before.keys().chain(after.keys()).collect();
    teams.sort();
    teams.dedup();
    let mut out = Vec::new();
    for team in teams {
        let (old, new) = (before.get(team), after.get(team));
        let total = |i: Option<&IssuedInvoice>| i.map_or(Decimal::ZERO, |i| amount(&i.total));
        let (old_total, new_total) = (total(old), total(new));
        let difference = new_total - old_total;
        if difference.is_zero() {
            continue;
        }
        let inv = new.or(old).expect("a team of either state");
        let mut lines: Vec<NoteLine> = Vec::new();
        let old_lines: Vec<&IssuedLine> = old.map(|i| i.lines.iter().collect()).unwrap_or_default();
        let new_lines: Vec<&IssuedLine> = new.map(|i| i.lines.iter().collect()).unwrap_or_default();
        let sum_by_key = |ls: &[&IssuedLine]| -> BTreeMap<LineKey, Decimal> {
            let mut m = BTreeMap::new();
            for l in ls {
                *m.entry(key(l)).or_insert(Decimal::ZERO) += amount(&l.amount);
            }
            m
        };
        let (old_sums, new_sums) = (sum_by_key(&old_lines), sum_by_key(&new_lines));
        let mut seen = std::collections::BTreeSet::new();
        // The lines as now issued, then the lines no longer on the invoice.
        for l in new_lines.iter().chain(&old_lines) {
            let k = key(l);
            if !seen.insert(k.clone()) {
                continue;
            }
            let (was, is) = (
                old_sums.get(&k).copied().unwrap_or(Decimal::ZERO),
                new_sums.get(&k).copied().unwrap_or(Decimal::ZERO),
            );
            lines.push(NoteLine {
                kind: l.kind.clone(),
                description: l.description.clone(),
                previous_amount: money(was),
                new_amount: money(is),
                difference: money(is - was),
            });
        }
        let original_invoice = first.get(team.as_str()).map(|n| (*n).to_string());
        let number = original_invoice
            .clone()
            .unwrap_or_else(|| inv.invoice_number.clone());
        out.push(NoteRecord {
            team: team.clone(),
            team_name: inv.team_name.clone(),
            note_number: format!("{number}-A{amendment}"),
            kind: if difference.is_sign_negative() {
                "credit"
            } else {
                "debit"
            }
            .into(),
            original_invoice,
            previous_total: money(old_total),
            new_total: money(new_total),
            amount: money(difference),
            lines,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &str, description: &str, model: &str, amount: &str) -> IssuedLine {
        IssuedLine {
            kind: kind.into(),
            description: description.into(),
            provider: if kind == "usage" {
                "openai".into()
            } else {
                String::new()
            },
            model: model.into(),
            use_case: if kind == "usage" {
                "chat".into()
            } else {
                String::new()
            },
            estimated: false,
            amount: amount.into(),
        }
    }

    fn month(invoices: Vec<(&str, &str, Vec<IssuedLine>)>) -> Issued {
        Issued {
            currency: "USD".into(),
            invoices: invoices
                .into_iter()
                .map(|(team, total, lines)| IssuedInvoice {
                    team: team.into(),
                    team_name: team.to_uppercase(),
                    invoice_number: format!("CB-2025-01-{team}"),
                    total: total.into(),
                    lines,
                })
                .collect(),
        }
    }

    #[test]
    fn a_tier_crossing_is_a_credit_although_usage_grew() {
        let before = month(vec![(
            "search",
            "15.00",
            vec![
                line("usage", "gpt-4o · chat", "gpt-4o", "10.00"),
                line(
                    "markup",
                    "Tier experimental markup 50% on usage cost",
                    "",
                    "5.00",
                ),
            ],
        )]);
        let after = month(vec![(
            "search",
            "13.20",
            vec![
                line("usage", "gpt-4o · chat", "gpt-4o", "11.00"),
                line(
                    "markup",
                    "Tier standard markup 20% on usage cost",
                    "",
                    "2.20",
                ),
            ],
        )]);
        let notes = notes(&before, &before, &after, 1, 2);
        assert_eq!(notes.len(), 1);
        let n = &notes[0];
        assert_eq!(n.note_number, "CB-2025-01-search-A1");
        assert_eq!(n.kind, "credit");
        assert_eq!(n.amount, "-1.80");
        assert_eq!(n.original_invoice.as_deref(), Some("CB-2025-01-search"));
        let rows: Vec<(&str, &str, &str)> = n
            .lines
            .iter()
            .map(|l| {
                (
                    l.description.as_str(),
                    l.previous_amount.as_str(),
                    l.new_amount.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("gpt-4o · chat", "10.00", "11.00"),
                ("Tier standard markup 20% on usage cost", "0.00", "2.20"),
                ("Tier experimental markup 50% on usage cost", "5.00", "0.00"),
            ]
        );
    }

    #[test]
    fn unchanged_teams_get_no_note_and_new_or_gone_teams_do() {
        let before = month(vec![
            ("a", "1.00", vec![line("usage", "m · chat", "m", "1.00")]),
            ("gone", "2.00", vec![line("usage", "m · chat", "m", "2.00")]),
        ]);
        let after = month(vec![
            ("a", "1.00", vec![line("usage", "m · chat", "m", "1.00")]),
            ("new", "0.50", vec![line("usage", "m · chat", "m", "0.50")]),
        ]);
        let notes = notes(&before, &before, &after, 2, 2);
        let summary: Vec<(&str, &str, &str, Option<&str>)> = notes
            .iter()
            .map(|n| {
                (
                    n.note_number.as_str(),
                    n.kind.as_str(),
                    n.amount.as_str(),
                    n.original_invoice.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "CB-2025-01-gone-A2",
                    "credit",
                    "-2.00",
                    Some("CB-2025-01-gone")
                ),
                ("CB-2025-01-new-A2", "debit", "0.50", None),
            ]
        );
    }
}
