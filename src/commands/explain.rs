//! `chargeback explain`: where an invoice line's amount came from. Loads
//! and computes the month exactly as `run` does, writes nothing, and prints
//! the line's lineage — the billed lines and shares, catalog prices, or the
//! basis and rate of a markup or fee — as text for a person or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::run::parse_month;
use super::say;
use crate::cli::ExplainArgs;
use crate::compute::chargeback::{Charge, ChargeKind, graduated_bands, tier_for};
use crate::compute::invoice::{Invoice, InvoiceLine};
use crate::compute::lineage::{Lineage, Part};
use crate::compute::{Month, compute};
use crate::config::{ChargebackModel, Policy, TeamTerms, Tier, TierMode, UnattributedPolicy};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::load::{load, read_policy};
use crate::money::{Decimal, round_line};
use crate::progress::Progress;
use crate::render::html::group_digits;

/// Parts a text table shows before it points at the complete list.
const SHOWN_PARTS: usize = 20;

pub fn run(ctx: &Context, args: &ExplainArgs) -> Result<()> {
    let (period, as_of) = parse_month(ctx, &args.month)?;
    let ctx = &ctx.with_progress(Progress::for_stderr(args.month.quiet, args.month.timings));
    let policy = read_policy(ctx, &args.month.config)?;
    let inputs = load(ctx, &policy.policy, period, as_of)?;
    let stage = ctx.progress.stage("reconcile, attribute, charge back");
    let month = compute(&inputs, &policy.policy, as_of)?;
    stage.done();
    ctx.progress.finish();
    let explained = explain(&month, &policy.policy, &args.team, args.line)?;
    if args.json {
        let mut text = serde_json::to_string_pretty(&explained).expect("an explanation serialises");
        text.push('\n');
        say(&text);
    } else {
        say(&explained.text());
    }
    Ok(())
}

/// One invoice's lines (or one of them), explained.
#[derive(Debug, Serialize)]
pub struct Explained<'a> {
    pub period: &'a str,
    pub currency: &'a str,
    pub team: &'a str,
    pub team_name: &'a str,
    pub invoice_number: &'a str,
    pub chargeback_model: &'a str,
    /// Who carries what no team's logs explain, as the policy says.
    pub unattributed_policy: String,
    pub lines: Vec<LineExplained<'a>>,
}

/// One invoice line and where its amount came from.
#[derive(Debug, Serialize)]
pub struct LineExplained<'a> {
    /// Its number on the invoice, from 1 (`ledger.csv`'s `line`).
    pub line: u32,
    pub kind: &'a str,
    pub description: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub use_case: &'a str,
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
    pub estimated: bool,
    /// Full precision, before rounding.
    pub exact: Decimal,
    /// As invoiced.
    pub amount: Decimal,
    /// `amount − exact`: what rounding gave or took.
    pub adjustment: Decimal,
    /// A usage line: every part of it (the rows of `allocations.parquet`
    /// for this line), in that file's order.
    pub parts: Vec<Part<'a>>,
    /// A markup or fee line: how it was computed.
    pub charge: Option<ChargeExplained>,
}

/// How a markup or fee line was computed.
#[derive(Debug, Serialize)]
pub struct ChargeExplained {
    /// What the rate applies to: the usage cost, or for a graduated band
    /// the cost of its tokens.
    pub basis: Option<Decimal>,
    /// The basis in full: `basis`, but for a graduated band its exact
    /// share of the usage cost, which `basis` shows rounded.
    pub basis_exact: Option<Decimal>,
    pub basis_is: String,
    pub rate: Option<Decimal>,
    /// `basis × rate` in full (a graduated band: its exact cost share ×
    /// rate); a fixed fee: the fee.
    pub exact: Decimal,
    pub tier: Option<TierStep>,
    /// The rate is a price per outcome or seat, not a fraction of a cost.
    #[serde(skip)]
    pub per_unit: bool,
}

/// Which tier a tiered line used, and why.
#[derive(Debug, Serialize)]
pub struct TierStep {
    pub name: String,
    /// `volume` or `graduated`.
    pub mode: &'static str,
    /// The team's tokens of the month.
    pub tokens: u64,
    /// Graduated: the tokens in this band.
    pub band_tokens: Option<u64>,
    /// The tier's bounds in millions of tokens: above `above`, at most
    /// `up_to` (inclusive); `None` is open.
    pub above_mtokens: Option<u64>,
    pub up_to_mtokens: Option<u64>,
    pub why: String,
}

/// The explanation of `team`'s invoice line `line` (1-based), or of every
/// line; a usage error naming the valid teams or lines otherwise.
pub fn explain<'a>(
    month: &'a Month<'_>,
    policy: &Policy,
    team: &str,
    line: Option<u32>,
) -> Result<Explained<'a>> {
    let view = &month.view;
    let Some(invoice) = view.invoices.iter().find(|i| i.team == team) else {
        return Err(unknown_team(month, team));
    };
    let count = invoice.lines.len() as u32;
    let numbers: Vec<u32> = match line {
        None => (1..=count).collect(),
        Some(n) if (1..=count).contains(&n) => vec![n],
        Some(n) => return Err(unknown_line(invoice, n)),
    };
    let terms = policy.terms(team);
    let lines = numbers
        .into_iter()
        .map(|n| explain_line(&month.lineage, invoice, &terms, n, month.scale))
        .collect();
    Ok(Explained {
        period: &view.period,
        currency: &view.currency,
        team: &invoice.team,
        team_name: &invoice.team_name,
        invoice_number: &invoice.invoice_number,
        chargeback_model: &invoice.chargeback_model,
        unattributed_policy: match &policy.reconciliation.unattributed {
            UnattributedPolicy::Report => "report".to_string(),
            UnattributedPolicy::Proportional => "proportional".to_string(),
            UnattributedPolicy::Team(t) => format!("team:{t}"),
            UnattributedPolicy::Fixed(_) => "fixed".to_string(),
        },
        lines,
    })
}

fn unknown_team(month: &Month<'_>, team: &str) -> Error {
    const LISTED: usize = 20;
    let teams: Vec<String> = month
        .view
        .invoices
        .iter()
        .map(|i| format!("`{}`", i.team))
        .collect();
    let more = teams.len().saturating_sub(LISTED);
    let mut hint = if teams.is_empty() {
        "the month has no invoices".to_string()
    } else {
        format!(
            "teams with an invoice in {}: {}",
            month.view.period,
            teams[..teams.len().min(LISTED)].join(", ")
        )
    };
    if more > 0 {
        let _ = write!(hint, " and {more} more (see ledger.csv)");
    }
    Error::usage(format!(
        "no invoice for team `{team}` in {}",
        month.view.period
    ))
    .with_hint(hint)
}

fn unknown_line(invoice: &Invoice, n: u32) -> Error {
    let count = invoice.lines.len();
    let usage = invoice.lines.iter().filter(|l| l.kind == "usage").count();
    let mut kinds = Vec::new();
    if usage > 0 {
        kinds.push(if usage == 1 {
            "1 usage".to_string()
        } else {
            format!("1 to {usage} usage")
        });
    }
    for (k, l) in invoice.lines.iter().enumerate().skip(usage) {
        kinds.push(format!("{} {}", k + 1, l.kind));
    }
    let message = format!("the invoice of `{}` has no line {n}", invoice.team);
    let hint = match count {
        0 => "the invoice has no lines".to_string(),
        1 => format!("its only line is 1 ({})", kinds.join(", ")),
        _ => format!("its lines are 1 to {count}: {}", kinds.join(", ")),
    };
    Error::usage(message).with_hint(hint)
}

fn explain_line<'a>(
    lineage: &'a Lineage,
    invoice: &'a Invoice,
    terms: &TeamTerms,
    n: u32,
    scale: u32,
) -> LineExplained<'a> {
    let l: &InvoiceLine = &invoice.lines[(n - 1) as usize];
    let amount: Decimal = l.amount.parse().expect("invoice amounts are decimals");
    let usage_lines = invoice.lines.iter().filter(|x| x.kind == "usage").count() as u32;
    let mut out = LineExplained {
        line: n,
        kind: &l.kind,
        description: &l.description,
        provider: &l.provider,
        model: &l.model,
        use_case: &l.use_case,
        tokens: l.tokens,
        requests: l.requests,
        estimated: l.estimated,
        exact: amount,
        amount,
        adjustment: Decimal::ZERO,
        parts: Vec::new(),
        charge: None,
    };
    if n <= usage_lines {
        if let Some(t) = lineage.target(&invoice.team, n - 1) {
            let target = &lineage.targets[t as usize];
            out.exact = target.exact.normalize();
            out.parts = lineage
                .parts_of(t)
                .iter()
                .map(|a| lineage.part(a))
                .collect();
        }
    } else if let Some(charges) = lineage.charges.get(&invoice.team) {
        let k = (n - 1 - usage_lines) as usize;
        if let Some(c) = charges.charges.get(k) {
            let markups_before = charges.charges[..k]
                .iter()
                .filter(|c| c.kind == ChargeKind::Markup)
                .count();
            let usage_cost = invoice
                .usage_cost
                .parse()
                .expect("invoice amounts are decimals");
            let usage_tokens = invoice.tokens;
            let ex = explain_charge(c, terms, usage_cost, usage_tokens, markups_before, scale);
            out.exact = ex.exact.normalize();
            out.charge = Some(ex);
        }
    }
    out.adjustment = (out.amount - out.exact).normalize();
    out
}

fn explain_charge(
    c: &Charge,
    terms: &TeamTerms,
    usage_cost: Decimal,
    tokens: u64,
    markups_before: usize,
    scale: u32,
) -> ChargeExplained {
    let tiered = terms.model == ChargebackModel::Tiered && c.kind == ChargeKind::Markup;
    let mut ex = ChargeExplained {
        basis: c.basis,
        basis_exact: c.basis,
        basis_is: match c.kind {
            ChargeKind::FixedFee => "a fixed fee from the policy".to_string(),
            ChargeKind::SharedCost => "the amount of the shared-cost pool, split over its teams by largest remainder; the description says this team's share".to_string(),
            ChargeKind::Adjustment if c.description.starts_with("Credit note ") || c.description.starts_with("Debit note ") => {
                "a note of an earlier month (`chargeback amend`), carried once; its number is in the description".to_string()
            }
            ChargeKind::Adjustment => "an [[adjustments]] entry of the policy".to_string(),
            ChargeKind::OutcomeCharge => "the outcomes counted in the month, from the request logs and the outcome sources; the rate is the price of one".to_string(),
            ChargeKind::SeatCharge if terms.seats.is_some() => "the `seats` of the policy; the rate is the price of one for the month".to_string(),
            ChargeKind::SeatCharge => "the team's distinct users in the month's used requests; the rate is the price of one seat".to_string(),
            ChargeKind::UsageOffset => "the usage cost, taken off: value-based teams pay for outcomes and seats".to_string(),
            _ if c.basis.is_some() => "the usage cost".to_string(),
            _ => "set by the policy".to_string(),
        },
        rate: c.rate,
        exact: match (c.basis, c.rate) {
            (Some(b), Some(r)) => b * r,
            _ if c.kind == ChargeKind::FixedFee => terms.fixed_fee,
            _ => c.amount,
        },
        tier: None,
        per_unit: matches!(c.kind, ChargeKind::OutcomeCharge | ChargeKind::SeatCharge),
    };
    if !tiered {
        return ex;
    }
    match terms.tier_mode {
        TierMode::Volume => {
            let t = tier_for(&terms.tiers, tokens);
            let (above, up_to) = bounds(&terms.tiers, &t.name);
            ex.tier = Some(TierStep {
                name: t.name.clone(),
                mode: "volume",
                tokens,
                band_tokens: None,
                above_mtokens: above,
                up_to_mtokens: up_to,
                why: format!(
                    "{} tokens this month, {}: tier `{}` marks up the whole usage cost (volume tiers)",
                    group_digits(&tokens.to_string()),
                    range_words(above, up_to),
                    t.name
                ),
            });
        }
        TierMode::Graduated => {
            let bands = graduated_bands(&terms.tiers, tokens);
            if let Some((band, band_tokens)) = bands.get(markups_before) {
                let (above, up_to) = bounds(&terms.tiers, &band.name);
                // The band's exact share of the usage cost, as the charge
                // computed it before rounding its basis for print.
                let share = if tokens == 0 {
                    Decimal::ZERO
                } else {
                    let (t, all) = (Decimal::from(*band_tokens), Decimal::from(tokens));
                    usage_cost
                        .checked_mul(t)
                        .map_or_else(|| usage_cost / all * t, |p| p / all)
                };
                ex.basis_is = format!(
                    "the usage cost {usage_cost} × {band_tokens} / {tokens} tokens = {}, shown rounded as {}",
                    share.normalize(),
                    round_line(share, scale)
                );
                ex.basis_exact = Some(share.normalize());
                ex.exact = share * band.markup;
                ex.tier = Some(TierStep {
                    name: band.name.clone(),
                    mode: "graduated",
                    tokens,
                    band_tokens: Some(*band_tokens),
                    above_mtokens: above,
                    up_to_mtokens: up_to,
                    why: format!(
                        "{} of the team's {} tokens fall in band `{}`, {} (graduated tiers)",
                        group_digits(&band_tokens.to_string()),
                        group_digits(&tokens.to_string()),
                        band.name,
                        range_words(above, up_to)
                    ),
                });
            }
        }
    }
    ex
}

/// A tier's bounds in millions: the previous tier's bound, and its own.
fn bounds(tiers: &[Tier], name: &str) -> (Option<u64>, Option<u64>) {
    let k = tiers.iter().position(|t| t.name == name).unwrap_or(0);
    let above = k.checked_sub(1).and_then(|p| tiers[p].up_to_mtokens);
    (above, tiers[k].up_to_mtokens)
}

fn range_words(above: Option<u64>, up_to: Option<u64>) -> String {
    let m = |v: u64| format!("{}M", group_digits(&v.to_string()));
    match (above, up_to) {
        (None, None) => "the only tier".to_string(),
        (None, Some(u)) => format!("at most {}", m(u)),
        (Some(a), None) => format!("above {}", m(a)),
        (Some(a), Some(u)) => format!("above {} and at most {}", m(a), m(u)),
    }
}

impl Explained<'_> {
    /// The explanation for a person: aligned, long lists cut short.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} · {} (`{}`) · {} · amounts in {}",
            self.invoice_number, self.team_name, self.team, self.period, self.currency
        );
        for l in &self.lines {
            s.push('\n');
            line_text(&mut s, l, &self.unattributed_policy);
        }
        s
    }
}

fn line_text(s: &mut String, l: &LineExplained<'_>, policy: &str) {
    let _ = writeln!(s, "line {} · {} · {}", l.line, l.kind, l.description);
    if l.kind == "usage" {
        let count = |v: Option<u64>| group_digits(&v.unwrap_or_default().to_string());
        let _ = writeln!(
            s,
            "  {} · {} tokens · {} requests",
            l.provider,
            count(l.tokens),
            count(l.requests)
        );
        parts_text(s, &l.parts, policy);
    }
    if let Some(c) = &l.charge {
        charge_text(s, c);
    }
    let rows = [
        ("exact", l.exact.to_string()),
        ("amount", l.amount.to_string()),
        ("adjustment", signed(l.adjustment)),
    ];
    let why = if l.kind == "usage" {
        " (largest remainder: the team's usage is rounded once, then over its lines and their parts)"
    } else {
        " (rounded half away from zero)"
    };
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (k, (label, v)) in rows.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {label:<10}  {v:>width$}{}",
            if k == 2 { why } else { "" }
        );
    }
}

fn charge_text(s: &mut String, c: &ChargeExplained) {
    if let Some(t) = &c.tier {
        let _ = writeln!(s, "  tier        {}", t.why);
    }
    match (c.basis, c.basis_exact, c.rate) {
        (Some(b), Some(full), Some(r)) => {
            let _ = writeln!(s, "  basis       {b} ({})", c.basis_is);
            if c.per_unit {
                let _ = writeln!(s, "  rate        {} each", r.normalize());
            } else {
                let _ = writeln!(
                    s,
                    "  rate        {} ({}%)",
                    r.normalize(),
                    (r * Decimal::ONE_HUNDRED).normalize()
                );
            }
            let _ = writeln!(
                s,
                "  basis × rate = {full} × {} = {}",
                r.normalize(),
                c.exact.normalize()
            );
        }
        _ => {
            let _ = writeln!(s, "  {}", c.basis_is);
        }
    }
}

fn signed(d: Decimal) -> String {
    if d > Decimal::ZERO {
        format!("+{d}")
    } else {
        d.to_string()
    }
}

fn parts_text(s: &mut String, parts: &[Part<'_>], policy: &str) {
    let opt = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
    let day = |p: &Part<'_>| p.day.map(|d| d.to_string()).unwrap_or_default();
    let class = |p: &Part<'_>| {
        p.usage_type
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "(all)".to_string())
    };
    let of = |kind: &'static str| parts.iter().filter(move |p| p.kind == kind);
    let billed: Vec<&Part<'_>> = of("billed").collect();
    if !billed.is_empty() {
        let _ = writeln!(
            s,
            "  from {}: the team's weight of each line's logged usage, of the line's total weight, times the covered cost (the part of the line cost the logs explain)",
            count_words(billed.len(), "billed line")
        );
        table(
            s,
            &[
                "source",
                "day",
                "usage type",
                "line cost",
                "covered",
                "quantity",
                "weighed by",
                "weight",
                "total weight",
                "exact share",
            ],
            &billed,
            |p| {
                vec![
                    p.source.to_string(),
                    day(p),
                    class(p),
                    opt(p.billed_cost),
                    opt(p.covered_cost),
                    opt(p.quantity),
                    p.weight_basis.unwrap_or_default().replace('_', " "),
                    opt(p.weight),
                    opt(p.total_weight),
                    p.exact_share.to_string(),
                ]
            },
        );
        let converted: Vec<&&Part<'_>> =
            billed.iter().filter(|p| !p.converted.is_empty()).collect();
        if !converted.is_empty() {
            let _ = writeln!(
                s,
                "  line costs converted from the bill's currency at the `[[fx]]` rate of the charge day, rounded once:"
            );
            for p in converted {
                for c in p.converted {
                    let _ = writeln!(
                        s,
                        "     {}  {} {} × {} (rate of {}) = {}",
                        p.source,
                        c.rate.from,
                        c.billed.normalize(),
                        c.rate.rate,
                        c.rate.effective_from,
                        c.invoiced
                    );
                }
            }
        }
    }
    let rests: Vec<&Part<'_>> = of("unattributed").collect();
    if !rests.is_empty() {
        let _ = writeln!(
            s,
            "  unattributed cost this team carries (policy `{policy}`): what the logs of {} do not explain, line cost − covered",
            count_words(rests.len(), "billed line")
        );
        table(
            s,
            &[
                "source",
                "day",
                "usage type",
                "line cost",
                "covered",
                "exact share",
            ],
            &rests,
            |p| {
                vec![
                    p.source.to_string(),
                    day(p),
                    class(p),
                    opt(p.billed_cost),
                    opt(p.covered_cost),
                    p.exact_share.to_string(),
                ]
            },
        );
    }
    for p in of("spread") {
        let _ = if policy == "fixed" {
            writeln!(
                s,
                "  fixed share (policy `fixed`): {}'s unattributed cost {} × this team's share {} = {}",
                p.provider,
                opt(p.billed_cost),
                opt(p.weight),
                p.exact_share
            )
        } else {
            writeln!(
                s,
                "  spread (policy `{policy}`): {}'s unattributed cost {} × this line's attributed cost {} / {} attributed over its lines = {}",
                p.provider,
                opt(p.billed_cost),
                opt(p.weight),
                opt(p.total_weight),
                p.exact_share
            )
        };
    }
    let priced: Vec<&Part<'_>> = of("catalog").collect();
    if !priced.is_empty() {
        let mut sets: Vec<String> = priced
            .iter()
            .filter_map(|p| p.prices_from.map(|d| d.to_string()))
            .collect();
        sets.sort();
        sets.dedup();
        let _ = writeln!(
            s,
            "  priced from the catalog (no bill from {}): tokens × price per 1M tokens of the price set in force that day ({})",
            priced[0].provider,
            sets.join(", ")
        );
        table(
            s,
            &[
                "day",
                "usage type",
                "tokens",
                "price per 1M",
                "prices of",
                "exact share",
            ],
            &priced,
            |p| {
                vec![
                    day(p),
                    class(p),
                    opt(p.quantity),
                    opt(p.price_per_mtok),
                    p.prices_from.map(|d| d.to_string()).unwrap_or_default(),
                    p.exact_share.to_string(),
                ]
            },
        );
    }
    if of("rounding").next().is_some() {
        let _ = writeln!(
            s,
            "  no usage explains this line: its amount is what rounding the team's usage cost left to it"
        );
    }
    if parts.is_empty() {
        let _ = writeln!(s, "  no cost: no catalog price was in force for this usage");
    }
}

fn count_words(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {one}s", group_digits(&n.to_string()))
    }
}

/// An aligned table of the first [`SHOWN_PARTS`] parts: text columns to
/// the left, numbers to the right; the rest summed in one line.
fn table(
    s: &mut String,
    header: &[&str],
    parts: &[&Part<'_>],
    cells: impl Fn(&Part<'_>) -> Vec<String>,
) {
    let shown: Vec<Vec<String>> = parts.iter().take(SHOWN_PARTS).map(|p| cells(p)).collect();
    let numeric = |k: usize| {
        shown
            .iter()
            .all(|r| r[k].is_empty() || r[k].parse::<Decimal>().is_ok())
    };
    let widths: Vec<usize> = (0..header.len())
        .map(|k| {
            shown
                .iter()
                .map(|r| r[k].chars().count())
                .chain([header[k].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let right: Vec<bool> = (0..header.len()).map(numeric).collect();
    let row = |s: &mut String, cells: &[String]| {
        s.push_str("   ");
        for (k, c) in cells.iter().enumerate() {
            let pad = widths[k] - c.chars().count();
            s.push_str("  ");
            if right[k] {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if k + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.push('\n');
    };
    let head: Vec<String> = header.iter().map(ToString::to_string).collect();
    row(s, &head);
    for r in &shown {
        row(s, r);
    }
    if parts.len() > SHOWN_PARTS {
        let rest = &parts[SHOWN_PARTS..];
        let exact: Decimal = rest.iter().map(|p| p.exact_share).sum();
        let _ = writeln!(
            s,
            "     … and {} more (exact {}): every part is in allocations.parquet and in `--json`",
            group_digits(&rest.len().to_string()),
            exact.normalize()
        );
    }
}
