//! `chargeback verify`: a published month rerun from its manifest alone —
//! the same stages as `run`, compared with what the manifest records
//! instead of published.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde_json::Value;

use super::amend::amendment;
use crate::cli::VerifyArgs;
use crate::compute::compute;
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::load::store::{ObjectRecord, join};
use crate::load::{LoadedPolicy, load, read_policy};
use crate::period::Period;
use crate::progress::Progress;
use crate::publish::{MANIFEST, Outputs};
use crate::render::render;
use crate::render::templates::Templates;
use crate::seal::{Manifest, seal};
use crate::text::count;

pub fn run(ctx: &Context, args: &VerifyArgs) -> Result<()> {
    let url = &args.manifest;
    let ctx = &ctx.with_progress(Progress::for_stderr(args.quiet, args.timings));
    let published = Manifest::parse(&ctx.store.read(url)?, url)
        .map_err(|e| e.with_hint("give `--manifest` the manifest.json of a published month"))?;
    let bad = |m: String| Error::input(Location::file(url), m);
    let period: Period = published
        .period
        .parse()
        .map_err(|_| bad(format!("`period` is `{}`, not a month", published.period)))?;
    let issued: NaiveDate = published.issue_date.parse().map_err(|_| {
        bad(format!(
            "`issue_date` is `{}`, not a date",
            published.issue_date
        ))
    })?;

    // Inputs first: a changed input explains every output that follows it.
    let changed = changed_inputs(ctx, &published)?;
    if !changed.is_empty() {
        if !args.quiet {
            super::say(&format!(
                "differs: {} of {period} changed since it was published\n{}",
                count(changed.len() as u64, "input", "inputs"),
                changed.concat()
            ));
        }
        return Err(bad(format!(
            "{period} cannot be verified: {} changed",
            count(changed.len() as u64, "input", "inputs")
        ))
        .with_hint("restore the inputs listed above to verify the month as it was published"));
    }

    ctx.store.pin_to_manifest(url);
    let policy = read_policy(ctx, &published.policy.url)?;
    // The run's own `--as-of` where the manifest records it; else the
    // issue date, which computes the same as none.
    let as_of = match &published.as_of {
        Some(d) => d
            .parse::<NaiveDate>()
            .map_err(|_| bad(format!("`as_of` is `{d}`, not a date")))?,
        None => issued,
    };
    let (outputs, now) = match published.amendment {
        None => {
            let inputs = load(ctx, &policy.policy, period, Some(as_of))?;
            let templates = Templates::load(ctx, policy.policy.output.templates.as_deref())?;
            let stage = ctx.progress.stage("reconcile, attribute, charge back");
            let month = compute(&inputs, &policy.policy, Some(as_of))?;
            stage.done();
            let outputs = render(&month, &templates, &ctx.progress)?;
            let now = seal(&policy, &inputs, &month, &outputs);
            (outputs, now)
        }
        Some(number) => rerun_amendment(ctx, url, &published, number, &policy, issued)?,
    };
    ctx.progress.finish();

    let hashes = |m: &Manifest| -> BTreeMap<String, String> {
        m.outputs
            .iter()
            .map(|o| (o.path.clone(), o.sha256.clone()))
            .collect()
    };
    let (before, after) = (hashes(&published), hashes(&now));
    let mut differ = Vec::new();
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        match (before.get(path), after.get(path)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => differ.push(format!("  {path}: sha256 {a} → {b}\n")),
            (Some(a), None) => differ.push(format!("  {path}: sha256 {a} → not written\n")),
            (None, Some(b)) => differ.push(format!("  {path}: not published → sha256 {b}\n")),
            (None, None) => {}
        }
    }
    if differ.is_empty() && now.totals == published.totals {
        if !args.quiet {
            let what = published
                .amendment
                .map(|n| format!(", amendment {n}"))
                .unwrap_or_default();
            super::say(&format!(
                "identical: {} of {period}{what}\n",
                count(now.outputs.len() as u64, "output", "outputs")
            ));
        }
        return Ok(());
    }
    if before.get("invoices.json") != after.get("invoices.json") {
        let dir = url.rsplit_once('/').map_or("", |(d, _)| d);
        let old = ctx.store.read(&join(dir, "invoices.json")).ok();
        let old: Option<Value> = old.and_then(|b| serde_json::from_slice(&b).ok());
        let new: Option<Value> = outputs
            .get("invoices.json")
            .and_then(|b| serde_json::from_slice(b).ok());
        if let (Some(old), Some(new)) = (old, new)
            && let Some(d) = first_difference(&old, &new)
        {
            differ.push(format!("  invoices.json: {d}\n"));
        }
    }
    if now.totals != published.totals {
        differ.push("  the manifest's totals differ\n".to_string());
    }
    if !args.quiet {
        super::say(&format!(
            "differs: the same inputs give other outputs for {period}\n{}",
            differ.concat()
        ));
    }
    Err(bad(format!(
        "{period} does not verify: the same inputs give other outputs"
    ))
    .with_hint(format!(
        "the month was published by {} {}; compare the tool version and the templates folder",
        published.tool, published.version
    )))
}

/// Amendment `number`, computed again against the month's folder (two
/// levels above its manifest) as the amendment's inputs give it.
fn rerun_amendment(
    ctx: &Context,
    url: &str,
    published: &Manifest,
    number: u32,
    policy: &LoadedPolicy,
    issued: NaiveDate,
) -> Result<(Outputs, Manifest)> {
    let suffix = format!("amendments/{number}/{MANIFEST}");
    let Some(folder) = url.strip_suffix(&suffix) else {
        return Err(Error::input(
            Location::file(url),
            format!("the manifest of amendment {number} is read from its place, `…/{suffix}`"),
        )
        .with_hint("give `--manifest` the amendment's manifest.json inside the month's folder"));
    };
    let month_url = join(folder, MANIFEST);
    let month = Manifest::parse(&ctx.store.read(&month_url)?, &month_url)?;
    let reason = published.reason.clone().unwrap_or_default();
    match amendment(ctx, policy, folder, &month, number, issued, &reason)? {
        Some(a) => Ok((a.outputs, a.manifest)),
        None => Ok((
            Outputs::default(),
            Manifest {
                outputs: Vec::new(),
                ..published.clone()
            },
        )),
    }
}

/// Each recorded object (policy, catalog, inputs) that is gone, or whose
/// bytes are not the recorded ones. An object with a recorded version is
/// read at that version by the rerun, so only its existence is checked.
fn changed_inputs(ctx: &Context, m: &Manifest) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let inputs = m.inputs.iter().map(|i| &i.object);
    for rec in [&m.policy, &m.catalog].into_iter().chain(inputs) {
        if !ctx.store.try_exists(&rec.url)? {
            out.push(format!(
                "  {}: gone (was sha256 {}, {} bytes)\n",
                rec.url, rec.sha256, rec.size
            ));
            continue;
        }
        if rec.version.is_some() {
            continue;
        }
        let now: ObjectRecord = ctx.store.record(&rec.url)?;
        if now.sha256 != rec.sha256 {
            out.push(format!(
                "  {}: sha256 {} ({} bytes) → {} ({} bytes)\n",
                rec.url, rec.sha256, rec.size, now.sha256, now.size
            ));
        }
    }
    Ok(out)
}

/// The first team, and field of its invoice, that differs between two
/// `invoices.json`; else the first month field that does.
fn first_difference(old: &Value, new: &Value) -> Option<String> {
    let by_team = |v: &Value| -> BTreeMap<String, Value> {
        v["invoices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| Some((i["team"].as_str()?.to_string(), i.clone())))
            .collect()
    };
    let (a, b) = (by_team(old), by_team(new));
    let teams: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for team in teams {
        match (a.get(team), b.get(team)) {
            (Some(x), Some(y)) if x != y => {
                let field = first_field(x, y).unwrap_or_default();
                return Some(format!(
                    "team `{team}`: `{field}` was {}, now {}",
                    x[&field], y[&field]
                ));
            }
            (Some(_), None) => return Some(format!("team `{team}`: no longer invoiced")),
            (None, Some(_)) => return Some(format!("team `{team}`: newly invoiced")),
            _ => {}
        }
    }
    let field = first_field(old, new)?;
    Some(format!(
        "`{field}` was {}, now {}",
        old[&field], new[&field]
    ))
}

/// The first key, in order, whose value differs between two objects.
fn first_field(a: &Value, b: &Value) -> Option<String> {
    let (a, b) = (a.as_object()?, b.as_object()?);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().find(|k| a.get(*k) != b.get(*k)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_names_the_team_and_field() {
        let old: Value = serde_json::json!({"period": "2025-01", "invoices": [
            {"team": "a", "total": "1.00", "usage_cost": "1.00"},
            {"team": "b", "total": "2.00", "usage_cost": "2.00"}]});
        let mut new = old.clone();
        new["invoices"][1]["total"] = "2.50".into();
        assert_eq!(
            first_difference(&old, &new).unwrap(),
            "team `b`: `total` was \"2.00\", now \"2.50\""
        );
        let mut new = old.clone();
        new["period"] = "2025-02".into();
        assert_eq!(
            first_difference(&old, &new).unwrap(),
            "`period` was \"2025-01\", now \"2025-02\""
        );
        assert_eq!(first_difference(&old, &old), None);
    }
}
