//! `chargeback amend`: a closed month re-rated with its inputs as they are
//! now, and a credit or debit note for each team whose total changed —
//! written beside the month, never over it.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::cli::AmendArgs;
use crate::compute::amend::notes;
use crate::compute::invoice::ledger_csv;
use crate::compute::{Month, compute};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::load::notes::{Issued, NotesFile};
use crate::load::store::join;
use crate::load::{LoadedPolicy, load, read_policy};
use crate::money::{Decimal, format_amount, minor_units};
use crate::period::Period;
use crate::progress::Progress;
use crate::publish::{
    MANIFEST, Outputs, PublishOptions, is_closed, is_relative_inside, publish_with,
};
use crate::render::html::group_digits;
use crate::render::templates::Templates;
use crate::seal::{AmendmentRecord, Manifest, seal, sha256_hex};
use crate::text::count;

pub fn run(ctx: &Context, args: &AmendArgs) -> Result<()> {
    let period: Period = args.period.parse().map_err(Error::usage)?;
    let Some(as_of) = &args.as_of else {
        return Err(
            Error::usage("`amend` needs `--as-of DATE`: the issue date of its notes")
                .with_hint("chargeback never reads the clock; give the day the notes are issued, as YYYY-MM-DD"),
        );
    };
    let issue_date = as_of.parse::<NaiveDate>().map_err(|_| {
        Error::usage(format!("`--as-of {as_of}` is not a date")).with_hint("write it as YYYY-MM-DD")
    })?;
    let ctx = &ctx.with_progress(Progress::for_stderr(args.quiet, args.timings));
    let policy = read_policy(ctx, &args.config)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| period.expand(&policy.policy.output.url));
    let month_manifest = join(&out, MANIFEST);
    let mut published = published_month(ctx, &month_manifest, period, &out)?;
    let last_issue = published
        .amendments
        .last()
        .map_or(&published.issue_date, |a| &a.issue_date)
        .clone();
    if issue_date.to_string() < last_issue {
        return Err(Error::usage(format!(
            "`--as-of {issue_date}` is before {period} was last issued, on {last_issue}"
        ))
        .with_hint("notes are dated on or after the documents they correct"));
    }

    let number = u32::try_from(published.amendments.len() + 1).unwrap_or(u32::MAX);
    let Some(amendment) = amendment(
        ctx,
        &policy,
        &out,
        &published,
        number,
        issue_date,
        &args.reason,
    )?
    else {
        if !args.quiet {
            let state = match published.amendments.last() {
                Some(a) => format!("as amended by amendment {} ({})", a.number, a.issue_date),
                None => format!("as issued on {}", published.issue_date),
            };
            super::say(&format!(
                "nothing to amend: {period} {state} is what its inputs give now; nothing was written\n"
            ));
        }
        return Ok(());
    };

    let folder = join(&out, &format!("amendments/{number}/"));
    let stage = ctx.progress.stage("publish");
    // An amendment the month's manifest does not list was never issued:
    // what an interrupted attempt left there is replaced.
    publish_with(
        ctx,
        &folder,
        &amendment.outputs,
        &amendment.manifest,
        PublishOptions { force: true },
    )?;
    published.amended = true;
    published.amendments.push(AmendmentRecord {
        number,
        issue_date: issue_date.to_string(),
        manifest: format!("amendments/{number}/{MANIFEST}"),
        sha256: sha256_hex(&amendment.manifest.to_bytes()),
        notes: amendment
            .notes
            .notes
            .iter()
            .map(|n| n.note_number.clone())
            .collect(),
    });
    ctx.store.write(&month_manifest, &published.to_bytes())?;
    stage.done();
    ctx.progress.finish();
    if !args.quiet {
        super::say(&report(&amendment.notes, &folder));
    }
    Ok(())
}

/// The manifest of a closed month published at `url`.
fn published_month(ctx: &Context, url: &str, period: Period, out: &str) -> Result<Manifest> {
    if !ctx.store.try_exists(url)? {
        return Err(Error::input(
            Location::file(url),
            format!("no such file: {period} is not published at `{out}`"),
        )
        .with_hint(
            "close the month with `chargeback run` first (or give its folder with `--out`)",
        ));
    }
    let m = Manifest::parse(&ctx.store.read(url)?, url)?;
    if m.amendment.is_some() {
        return Err(Error::usage(format!(
            "`{url}` is the manifest of an amendment, not of a month"
        ))
        .with_hint("give the month's folder, the one above `amendments/`"));
    }
    if m.period != period.to_string() {
        return Err(Error::input(
            Location::file(url),
            format!("the month published here is {}, not {period}", m.period),
        ));
    }
    if !is_closed(&m) {
        return Err(Error::usage(format!(
            "{period} at `{out}` was issued on {}, before the month ended: it is preliminary, not closed",
            m.issue_date
        ))
        .with_hint("rerun `chargeback run` for the month; only a closed month is amended"));
    }
    Ok(m)
}

/// An amendment as computed: its notes, every file of its folder, and
/// its manifest.
pub struct Amendment {
    pub notes: NotesFile,
    pub outputs: Outputs,
    pub manifest: Manifest,
}

/// Amendment `number` of the month `published` at `out`, as of
/// `issue_date`: the month re-rated with its inputs as the store has them
/// now against the month as last issued. `None` when no team's total
/// changed. Reads; writes nothing.
pub fn amendment(
    ctx: &Context,
    policy: &LoadedPolicy,
    out: &str,
    published: &Manifest,
    number: u32,
    issue_date: NaiveDate,
    reason: &str,
) -> Result<Option<Amendment>> {
    let period: Period = published.period.parse().map_err(Error::usage)?;
    let original = issued(ctx, out, "invoices.json", published)?;
    let previous = match number.checked_sub(1).filter(|n| *n > 0) {
        Some(last) => {
            let rel = format!("amendments/{last}/invoices.json");
            let m = amendment_manifest(ctx, out, published, last)?;
            issued(
                ctx,
                &join(out, &format!("amendments/{last}/")),
                "invoices.json",
                &m,
            )
            .map_err(|e| e.with_hint(format!("restore `{rel}` from amendment {last}")))?
        }
        None => original.clone(),
    };
    // The month is computed for the date it was, and is, issued for: its
    // budgets and the notes it carries stay those of the close.
    let month_as_of = published
        .as_of
        .as_deref()
        .unwrap_or(&published.issue_date)
        .parse::<NaiveDate>()
        .map_err(|_| {
            Error::input(
                Location::file(join(out, MANIFEST)),
                format!("`issue_date` is `{}`, not a date", published.issue_date),
            )
        })?;
    let inputs = load(ctx, &policy.policy, period, Some(month_as_of))?;
    let stage = ctx.progress.stage("reconcile, attribute, charge back");
    let month = compute(&inputs, &policy.policy, Some(month_as_of))?;
    stage.done();
    let now = Issued::from_view(&month.view);
    let found = notes(&original, &previous, &now, number, month.scale);
    if found.is_empty() {
        return Ok(None);
    }
    let file = NotesFile {
        period: period.to_string(),
        amendment: number,
        issue_date: issue_date.to_string(),
        currency: month.view.currency.clone(),
        reason: reason.to_string(),
        notes: found,
    };
    let templates = Templates::load(ctx, policy.policy.output.templates.as_deref())?;
    let stage = ctx.progress.stage("render notes (HTML, PDF)");
    let outputs = outputs(&month, &file, &templates)?;
    stage.done();
    let mut manifest = seal(policy, &inputs, &month, &outputs);
    manifest.amendment = Some(number);
    manifest.reason = Some(reason.to_string());
    manifest.issue_date = issue_date.to_string();
    manifest.as_of = Some(month_as_of.to_string());
    Ok(Some(Amendment {
        notes: file,
        outputs,
        manifest,
    }))
}

/// Every file of an amendment's folder: the notes as data and documents,
/// and the month as re-rated (`invoices.json`, `ledger.csv`), the state
/// the next amendment is computed against.
fn outputs(month: &Month<'_>, file: &NotesFile, templates: &Templates) -> Result<Outputs> {
    let stems: BTreeMap<String, String> = month
        .view
        .invoices
        .iter()
        .map(|i| (i.team.clone(), i.file.clone()))
        .collect();
    let mut outputs = crate::render::notes(file, &month.view.issuer, &stems, templates)?;
    outputs.add("notes.json", file.to_bytes());
    outputs.add_json("invoices.json", &month.view);
    outputs.add("ledger.csv", ledger_csv(&month.view));
    Ok(outputs)
}

/// The manifest of amendment `number` of the month, checked against the
/// month's record of it.
fn amendment_manifest(ctx: &Context, out: &str, month: &Manifest, number: u32) -> Result<Manifest> {
    let month_url = join(out, MANIFEST);
    let Some(record) = month.amendments.iter().find(|a| a.number == number) else {
        return Err(Error::input(
            Location::file(&month_url),
            format!("lists no amendment {number}, but a later one"),
        )
        .with_hint(
            "amendments are numbered from 1 without gaps; restore the month's manifest.json",
        ));
    };
    if !is_relative_inside(&record.manifest) {
        return Err(Error::input(
            Location::file(&month_url),
            format!(
                "amendment {number}'s manifest is `{}`, outside the month's folder",
                record.manifest
            ),
        ));
    }
    let url = join(out, &record.manifest);
    let bytes = ctx.store.read(&url)?;
    if sha256_hex(&bytes) != record.sha256 {
        return Err(Error::input(
            Location::file(&url),
            format!(
                "not the manifest {} records for amendment {number} (sha256 {})",
                MANIFEST, record.sha256
            ),
        )
        .with_hint("restore the amendment's folder as it was issued"));
    }
    Manifest::parse(&bytes, &url)
}

/// A published `invoices.json` (of `folder`), checked against the
/// manifest that lists it.
fn issued(ctx: &Context, folder: &str, name: &str, manifest: &Manifest) -> Result<Issued> {
    let url = join(folder, name);
    let bytes = ctx.store.read(&url)?;
    let recorded = manifest.outputs.iter().find(|o| o.path == name);
    if recorded.is_none_or(|o| o.sha256 != sha256_hex(&bytes)) {
        return Err(Error::input(
            Location::file(&url),
            format!(
                "not the {name} its manifest records{}",
                recorded
                    .map(|o| format!(" (sha256 {})", o.sha256))
                    .unwrap_or_default()
            ),
        )
        .with_hint(
            "the published documents were changed after publishing; restore them before amending",
        ));
    }
    Issued::parse(&bytes, &url)
}

/// What `amend` says: each note, then the net.
fn report(file: &NotesFile, folder: &str) -> String {
    let cur = &file.currency;
    let mut s = format!(
        "amended {} → {folder} (amendment {}, issued {})\n",
        file.period, file.amendment, file.issue_date
    );
    let width = file
        .notes
        .iter()
        .map(|n| n.note_number.len())
        .max()
        .unwrap_or(0);
    let amounts: Vec<String> = file.notes.iter().map(|n| group_digits(&n.amount)).collect();
    let aw = amounts.iter().map(String::len).max().unwrap_or(0);
    for (n, a) in file.notes.iter().zip(&amounts) {
        s.push_str(&format!(
            "  {:<width$}  {:<6}  {a:>aw$} {cur}  (total {} → {})\n",
            n.note_number,
            n.kind,
            group_digits(&n.previous_total),
            group_digits(&n.new_total),
        ));
    }
    let sum = |kind: &str| -> Decimal {
        file.notes
            .iter()
            .filter(|n| n.kind == kind)
            .filter_map(|n| n.amount.parse::<Decimal>().ok())
            .sum()
    };
    let (credits, debits) = (sum("credit"), sum("debit"));
    let scale = minor_units(cur);
    s.push_str(&format!(
        "  {}: credits {} {cur}, debits {} {cur}, net {} {cur}; each is carried onto the team's next invoice\n",
        count(file.notes.len() as u64, "note", "notes"),
        group_digits(&format_amount(credits, scale)),
        group_digits(&format_amount(debits, scale)),
        group_digits(&format_amount(credits + debits, scale)),
    ));
    s
}
