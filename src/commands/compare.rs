//! `chargeback compare`: the month as run against the same month under a
//! what-if scenario — load once, compute twice (the month's own stages,
//! the second with the scenario's usage changes and terms), and write
//! compare.json, compare.html and a DRAFT invoice per hypothetical team.

use super::run::parse_month;
use super::say;
use crate::cli::CompareArgs;
use crate::compute::compare::{CompareInput, Comparison, compare};
use crate::compute::invoice::file_stem;
use crate::compute::whatif::Changes;
use crate::compute::{compute, compute_with};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::load::store::join;
use crate::load::{load, read_policy};
use crate::progress::Progress;
use crate::render::html::HtmlRenderer;
use crate::render::pdf::PdfRenderer;
use crate::render::templates::Templates;
use crate::scenario::Scenario;

pub fn run(ctx: &Context, args: &CompareArgs) -> Result<()> {
    let (period, as_of) = parse_month(ctx, &args.month)?;
    let ctx = &ctx.with_progress(Progress::for_stderr(args.month.quiet, args.month.timings));
    let policy = read_policy(ctx, &args.month.config)?;
    if !ctx.store.try_exists(&args.scenario)? {
        return Err(Error::input(Location::file(&args.scenario), "no such file")
            .with_hint("check the `--scenario` path; fixtures/scenarios/ has worked examples"));
    }
    let text = ctx.store.read_text(&args.scenario)?;
    let scenario = Scenario::parse(&text, &args.scenario)?;
    let policy_text = ctx.store.read_text(&args.month.config)?;
    let what_policy = scenario.policy(&policy_text, &args.month.config, &args.scenario)?;
    let inputs = load(ctx, &policy.policy, period, as_of)?;
    let changes = Changes::resolve(&scenario, &inputs.catalog, &text, &args.scenario)?;
    check_teams(&scenario, &inputs, &policy.policy, &args.scenario)?;
    let templates = Templates::load(ctx, policy.policy.output.templates.as_deref())?;

    let stage = ctx
        .progress
        .stage("compute the month, then under the scenario");
    let base = compute(&inputs, &policy.policy, as_of)?;
    let what = compute_with(&inputs, &what_policy, as_of, Some(&changes))?;
    stage.done();
    let mut comparison = compare(&CompareInput {
        base: &base.view,
        what: &what.view,
        policy: &policy.policy,
        scenario_policy: &what_policy,
        applied: &what.applied,
        scenario: args.scenario.clone(),
        description: scenario.description.clone(),
        scale: base.scale,
    });

    let stage = ctx
        .progress
        .stage("render compare.json, compare.html, drafts");
    let html = HtmlRenderer::new(&templates)?;
    let pdf = PdfRenderer::new(&templates);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for team in comparison.teams.iter_mut().filter(|t| t.hypothetical) {
        let Some(inv) = what.view.invoices.iter().find(|i| i.team == team.team) else {
            continue;
        };
        let mut draft = inv.clone();
        draft.invoice_number = format!("{}-DRAFT", inv.invoice_number);
        let stem = format!("invoices/{}-DRAFT", file_stem(&team.team));
        let mut view = what.view.invoice_view(&draft);
        view.draft = true;
        files.push((format!("{stem}.html"), html.invoice(&view)?.into_bytes()));
        files.push((format!("{stem}.pdf"), pdf.invoice(&view)?));
        team.draft_invoice = Some(format!("{stem}.html"));
    }
    let mut json = serde_json::to_string_pretty(&comparison).expect("a comparison serialises");
    json.push('\n');
    files.insert(0, ("compare.json".to_string(), json.into_bytes()));
    files.insert(
        1,
        (
            "compare.html".to_string(),
            html.compare(&comparison)?.into_bytes(),
        ),
    );
    stage.done();

    let out = args.out.clone().unwrap_or_else(|| {
        let month = period.expand(&policy.policy.output.url);
        join(
            &month,
            &format!("compare/{}/", scenario_stem(&args.scenario)),
        )
    });
    let items: Vec<(String, &[u8])> = files
        .iter()
        .map(|(name, bytes)| (join(&out, name), bytes.as_slice()))
        .collect();
    ctx.store.write_many(&items)?;
    ctx.progress.finish();
    if !args.month.quiet {
        say(&report(&comparison, &out));
    }
    Ok(())
}

/// Every team the scenario names must be one the month or the scenario
/// gives an invoice: a typo is an error, not a silent no-op.
fn check_teams(
    scenario: &Scenario,
    inputs: &crate::load::Inputs,
    policy: &crate::config::Policy,
    uri: &str,
) -> Result<()> {
    let planned: Vec<&str> = scenario
        .plan
        .iter()
        .map(|p| p.get_ref().team.as_str())
        .collect();
    let known = |t: &str| {
        policy.teams.contains_key(t)
            || planned.contains(&t)
            || inputs.requests.cells.iter().any(|c| c.team == t)
    };
    for team in scenario.teams_named() {
        if known(team) {
            continue;
        }
        let message = if scenario.teams.contains_key(team) {
            format!(
                "[teams.{team}] is not a team of the policy or the month's logs, and has no [[plan]]"
            )
        } else {
            format!(
                "team `{team}` is not in the policy, the month's logs or a [[plan]] of the scenario"
            )
        };
        return Err(Error::policy(Location::file(uri), message).with_hint(
            "check the team id; a hypothetical team needs a [[plan]] with its monthly tokens",
        ));
    }
    Ok(())
}

/// The scenario's file name without folders and `.toml`, safe as a folder.
fn scenario_stem(url: &str) -> String {
    let name = url.rsplit('/').next().unwrap_or(url);
    let name = name.strip_suffix(".toml").unwrap_or(name);
    file_stem(name)
}

/// What `compare` prints: one line per team with a change, and the total.
fn report(c: &Comparison, out: &str) -> String {
    let mut text = format!("compared {} under `{}` → {out}\n", c.period, c.scenario);
    let width = c
        .teams
        .iter()
        .map(|t| t.team.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let pct = |p: &Option<String>| {
        p.as_ref()
            .map_or_else(|| "new".to_string(), |p| format!("{p}%"))
    };
    for t in &c.teams {
        if t.current_cost == t.calculated_monthly_cost && t.user_selections.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "  {:width$}  {:>12} → {:>12} {}  ({} {}){}\n",
            t.team,
            t.current_cost,
            t.calculated_monthly_cost,
            c.currency,
            signed(&t.comparison_delta.amount),
            pct(&t.comparison_delta.percent),
            if t.hypothetical {
                "  draft invoice"
            } else {
                ""
            },
        ));
    }
    text.push_str(&format!(
        "  {:width$}  {:>12} → {:>12} {}  ({} {})\n",
        "all",
        c.totals.current_cost,
        c.totals.calculated_monthly_cost,
        c.currency,
        signed(&c.totals.comparison_delta.amount),
        pct(&c.totals.comparison_delta.percent),
    ));
    text
}

fn signed(amount: &str) -> String {
    if amount.starts_with('-') {
        amount.to_string()
    } else {
        format!("+{amount}")
    }
}
