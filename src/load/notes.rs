//! Credit and debit notes: the `notes.json` an amendment writes, and the
//! notes of earlier months a run must carry onto its invoices — each
//! exactly once.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::compute::chargeback::{Charge, ChargeKind};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::load::store::{ObjectRecord, join};
use crate::money::Decimal;
use crate::period::Period;
use crate::seal::Manifest;

/// `amendments/<n>/notes.json`: the notes of one amendment of a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotesFile {
    pub period: String,
    pub amendment: u32,
    pub issue_date: String,
    pub currency: String,
    pub reason: String,
    pub notes: Vec<NoteRecord>,
}

/// One note: what a team is credited or debited for a closed month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteRecord {
    pub team: String,
    pub team_name: String,
    /// `<invoice number>-A<n>`.
    pub note_number: String,
    /// `credit` (the team pays less) or `debit` (more).
    pub kind: String,
    /// The invoice the note corrects; `None` for a team first invoiced by
    /// the amendment.
    pub original_invoice: Option<String>,
    /// The total as last issued (the invoice, or the last note's state).
    pub previous_total: String,
    pub new_total: String,
    /// `new_total − previous_total`, signed.
    pub amount: String,
    pub lines: Vec<NoteLine>,
}

/// One line of the team's invoice, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteLine {
    pub kind: String,
    pub description: String,
    pub previous_amount: String,
    pub new_amount: String,
    pub difference: String,
}

impl NotesFile {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("notes serialise");
        bytes.push(b'\n');
        bytes
    }

    pub fn parse(bytes: &[u8], url: &str) -> Result<NotesFile> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::input(Location::file(url), format!("not a notes file: {e}")).with_hint(
                "notes.json is written by `chargeback amend`; restore it from the amendment's manifest",
            )
        })
    }
}

/// A note of an earlier month that this month's invoice carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNote {
    /// The month the note amends.
    pub period: String,
    pub team: String,
    pub note_number: String,
    pub original_invoice: Option<String>,
    pub amount: Decimal,
    pub reason: String,
    /// The `notes.json` it came from.
    pub source: String,
}

impl PendingNote {
    /// The adjustment line the note is on the invoice as.
    pub fn adjustment(&self) -> Charge {
        let kind = if self.amount.is_sign_negative() {
            "Credit"
        } else {
            "Debit"
        };
        let of = self
            .original_invoice
            .as_ref()
            .map(|i| format!(" (invoice {i})"))
            .unwrap_or_default();
        Charge {
            kind: ChargeKind::Adjustment,
            description: format!(
                "{kind} note {} for {}{of}: {}",
                self.note_number, self.period, self.reason
            ),
            basis: None,
            rate: None,
            amount: self.amount,
        }
    }
}

/// How far back a run looks for notes to carry.
const LOOK_BACK_MONTHS: u32 = 36;

/// The notes a run of `period` issued on `issue_date` carries: every note
/// of an earlier month published under `output` (the policy's `[output]
/// url`), issued on or before `issue_date`, that no month between carried
/// already. The look back ends at the first month without a manifest.
/// Returns the notes and the records of the `notes.json` they came from.
pub fn pending_notes(
    ctx: &Context,
    output: &str,
    period: Period,
    issue_date: NaiveDate,
) -> Result<(Vec<PendingNote>, Vec<ObjectRecord>)> {
    let mut notes = Vec::new();
    let mut records = Vec::new();
    if period.expand(output) == output {
        // One folder for every month: no earlier month to look in.
        return Ok((notes, records));
    }
    let mut carried: BTreeSet<String> = BTreeSet::new();
    let mut month = period;
    for _ in 0..LOOK_BACK_MONTHS {
        month = month.previous();
        let folder = month.expand(output);
        let url = join(&folder, crate::publish::MANIFEST);
        if !ctx.store.try_exists(&url)? {
            break;
        }
        let manifest = Manifest::parse(&ctx.store.read(&url)?, &url)?;
        carried.extend(manifest.carried_notes.iter().map(|n| n.note_number.clone()));
        for a in &manifest.amendments {
            let issued = a.issue_date.parse::<NaiveDate>().ok();
            if issued.is_none_or(|d| d > issue_date) {
                continue;
            }
            let url = join(&folder, &format!("amendments/{}/notes.json", a.number));
            let file = NotesFile::parse(&ctx.store.read(&url)?, &url)?;
            let n = notes.len();
            for note in file.notes {
                let amount: Decimal = note.amount.parse().map_err(|_| {
                    Error::input(
                        Location::file(&url),
                        format!(
                            "note `{}` has amount `{}`, not a decimal",
                            note.note_number, note.amount
                        ),
                    )
                })?;
                notes.push(PendingNote {
                    period: file.period.clone(),
                    team: note.team,
                    note_number: note.note_number,
                    original_invoice: note.original_invoice,
                    amount,
                    reason: file.reason.clone(),
                    source: url.clone(),
                });
            }
            if notes.len() > n {
                records.push(ctx.store.record(&url)?);
            }
        }
    }
    notes.retain(|n| !carried.contains(&n.note_number));
    let kept: BTreeSet<&str> = notes.iter().map(|n| n.source.as_str()).collect();
    records.retain(|r| kept.contains(r.url.as_str()));
    // Oldest month first, then by note number.
    notes.sort_by(|a, b| (&a.period, &a.note_number).cmp(&(&b.period, &b.note_number)));
    records.sort_by(|a, b| a.url.cmp(&b.url));
    Ok((notes, records))
}

/// What a published month issued, as its `invoices.json` (the month's, or
/// an amendment's) says: the part a note is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Issued {
    pub currency: String,
    pub invoices: Vec<IssuedInvoice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssuedInvoice {
    pub team: String,
    pub team_name: String,
    pub invoice_number: String,
    pub total: String,
    pub lines: Vec<IssuedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssuedLine {
    pub kind: String,
    pub description: String,
    pub provider: String,
    pub model: String,
    pub use_case: String,
    pub estimated: bool,
    pub amount: String,
}

impl Issued {
    pub fn parse(bytes: &[u8], url: &str) -> Result<Issued> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::input(
                Location::file(url),
                format!("not the invoices.json of a published month: {e}"),
            )
            .with_hint(
                "restore the month's published outputs (see its manifest.json) before amending it",
            )
        })
    }
}
