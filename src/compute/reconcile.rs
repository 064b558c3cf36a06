//! Bills against logs: the bill says how much, the logs say who.
//!
//! Each billed usage line is matched to logged usage at the grain the line
//! has (provider, scope, day, model, token class — fewer when the export
//! is coarser) and split over the matched usage by weight, exactly. What
//! the logs do not cover stays unattributed; providers that sent no bill
//! are priced from the catalog and marked estimated.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use crate::catalog::{Catalog, PriceSet, UsageType};
use crate::compute::lineage::{CellShare, LineTrace, WeightBasis};
use crate::fx::Rate;
use crate::load::ingest::{BilledLine, UsageCell};
use crate::money::{Decimal, SPLIT_PLACES, format_amount, split_exact};
use crate::schema;
use crate::table::csv_bytes;
use rust_decimal::RoundingStrategy;

/// What kind of thing finance should look at; its snake_case name is the
/// `kind` column of `exceptions.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// A bill source whose rows all belong to another month.
    BillOutsidePeriod,
    /// A bill source with no rows at all.
    BillWithoutRows,
    /// An API page says more pages follow, and none of the inputs is it.
    TruncatedExport,
    QuarantinedRows,
    CoverageBelowMinimum,
    LogsExceedBill,
    BilledWithoutLogs,
    BilledModelUnknown,
    PriceVariance,
    NoCatalogPrice,
    UsageWithoutBillLine,
    EstimatedProvider,
    TeamNotInPolicy,
    /// A policy team without usage whose id is close to one in the logs.
    TeamWithoutUsage,
    /// A shared-cost pool no invoiced team carries this month.
    SharedCostUncarried,
    /// A team whose failed requests are above `max_error_rate`.
    ErrorRateAboveMaximum,
    /// Outcomes counted for a team that has no rate for them: charged
    /// nothing.
    OutcomeWithoutRate,
}

impl ExceptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::BillOutsidePeriod => "bill_outside_period",
            ExceptionKind::BillWithoutRows => "bill_without_rows",
            ExceptionKind::TruncatedExport => "truncated_export",
            ExceptionKind::QuarantinedRows => "quarantined_rows",
            ExceptionKind::CoverageBelowMinimum => "coverage_below_minimum",
            ExceptionKind::LogsExceedBill => "logs_exceed_bill",
            ExceptionKind::BilledWithoutLogs => "billed_without_logs",
            ExceptionKind::BilledModelUnknown => "billed_model_unknown",
            ExceptionKind::PriceVariance => "price_variance",
            ExceptionKind::NoCatalogPrice => "no_catalog_price",
            ExceptionKind::UsageWithoutBillLine => "usage_without_bill_line",
            ExceptionKind::EstimatedProvider => "estimated_provider",
            ExceptionKind::TeamNotInPolicy => "team_not_in_policy",
            ExceptionKind::TeamWithoutUsage => "team_without_usage",
            ExceptionKind::SharedCostUncarried => "shared_cost_uncarried",
            ExceptionKind::ErrorRateAboveMaximum => "error_rate_above_maximum",
            ExceptionKind::OutcomeWithoutRate => "outcome_without_rate",
        }
    }

    /// The kind in words, for the summary.
    pub fn label(self) -> &'static str {
        match self {
            ExceptionKind::BillOutsidePeriod => "bill for another month",
            ExceptionKind::BillWithoutRows => "empty bill",
            ExceptionKind::TruncatedExport => "export missing pages",
            ExceptionKind::QuarantinedRows => "rows rejected",
            ExceptionKind::CoverageBelowMinimum => "logs cover too little of the bill",
            ExceptionKind::LogsExceedBill => "logs exceed the bill",
            ExceptionKind::BilledWithoutLogs => "billed with no logs",
            ExceptionKind::BilledModelUnknown => "billed model not in the catalog",
            ExceptionKind::PriceVariance => "billed price differs from the catalog",
            ExceptionKind::NoCatalogPrice => "no catalog price",
            ExceptionKind::UsageWithoutBillLine => "logged usage with no bill line",
            ExceptionKind::EstimatedProvider => "priced from the catalog (no bill)",
            ExceptionKind::TeamNotInPolicy => "team not in the policy",
            ExceptionKind::TeamWithoutUsage => "policy team without usage",
            ExceptionKind::SharedCostUncarried => "shared cost on no invoice",
            ExceptionKind::ErrorRateAboveMaximum => "team's failed requests above the maximum",
            ExceptionKind::OutcomeWithoutRate => "outcome with no rate",
        }
    }

    /// How much it matters: the month's totals first (bills that do not
    /// hold the month), then money that may be misplaced, then notes.
    pub fn severity(self) -> u8 {
        match self {
            ExceptionKind::BillOutsidePeriod
            | ExceptionKind::TruncatedExport
            | ExceptionKind::QuarantinedRows => 0,
            ExceptionKind::BillWithoutRows
            | ExceptionKind::CoverageBelowMinimum
            | ExceptionKind::BilledWithoutLogs
            | ExceptionKind::BilledModelUnknown
            | ExceptionKind::LogsExceedBill
            | ExceptionKind::SharedCostUncarried
            | ExceptionKind::OutcomeWithoutRate => 1,
            ExceptionKind::PriceVariance
            | ExceptionKind::NoCatalogPrice
            | ExceptionKind::UsageWithoutBillLine
            | ExceptionKind::TeamWithoutUsage
            | ExceptionKind::ErrorRateAboveMaximum => 2,
            ExceptionKind::EstimatedProvider | ExceptionKind::TeamNotInPolicy => 3,
        }
    }
}

impl std::fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Exceptions sort by their names, as `exceptions.csv` lists them.
impl PartialOrd for ExceptionKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ExceptionKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Something finance should look at before closing the month.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Exception {
    pub kind: ExceptionKind,
    pub provider: String,
    pub day: String,
    pub model: String,
    pub team: String,
    /// `uri:row` of the input behind it, when there is one.
    pub source: String,
    pub detail: String,
}

impl Exception {
    pub fn new(kind: ExceptionKind, detail: impl Into<String>) -> Exception {
        Exception {
            kind,
            provider: String::new(),
            day: String::new(),
            model: String::new(),
            team: String::new(),
            source: String::new(),
            detail: detail.into(),
        }
    }
}

/// One row of `reconciliation.csv`: provider × day × model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReconRow {
    pub provider: String,
    pub day: String,
    pub model: String,
    pub billed_cost: Decimal,
    /// Tokens the bill states (lines that state a token class and count).
    pub billed_tokens: Decimal,
    /// Logged tokens of the same lines' classes.
    pub logged_tokens: Decimal,
    pub attributed: Decimal,
    pub unattributed: Decimal,
    pub estimated: Decimal,
    /// The billed tokens at catalog prices, when every line could be priced.
    pub catalog_cost: Option<Decimal>,
    /// Lines billed in another currency, by rate; empty when none was.
    pub converted: Vec<ConvertedCost>,
    #[serde(skip)]
    priced_all: bool,
    /// Lines that state no tokens (a coarse export): the catalog cost of
    /// the logged usage they were matched to, when it could be priced.
    #[serde(skip)]
    logged_catalog_cost: Option<Decimal>,
}

/// Bill lines converted at one rate, summed: what the bill stated (in
/// `rate.from`) and what that came to in the invoice currency, each line
/// rounded once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvertedCost {
    pub rate: Rate,
    pub billed: Decimal,
    pub invoiced: Decimal,
}

/// Adds a converted `line` to `list` (kept in currency and date order, one
/// entry per rate); a line in the invoice currency adds nothing.
pub fn add_converted(list: &mut Vec<ConvertedCost>, line: &BilledLine) {
    if let Some(c) = &line.fx {
        add_cost(
            list,
            &ConvertedCost {
                rate: c.rate.clone(),
                billed: c.cost,
                invoiced: line.cost,
            },
        );
    }
}

fn add_cost(list: &mut Vec<ConvertedCost>, c: &ConvertedCost) {
    match list.iter_mut().find(|e| e.rate == c.rate) {
        Some(e) => {
            e.billed += c.billed;
            e.invoiced += c.invoiced;
        }
        None => {
            list.push(c.clone());
            list.sort_by(|a, b| {
                (&a.rate.from, a.rate.effective_from).cmp(&(&b.rate.from, b.rate.effective_from))
            });
        }
    }
}

/// The `bill_currency`, `bill_cost`, `fx_rate` and `fx_rate_date` cells
/// of `billed` invoice-currency units of which `converted` came from other
/// currencies: empty when nothing was converted, else one value per
/// currency, `;`-separated in the same order, the invoice currency's own
/// lines last (with no rate).
pub fn as_billed_cells(
    converted: &[ConvertedCost],
    billed: Decimal,
    currency: &str,
) -> [String; 4] {
    if converted.is_empty() {
        return Default::default();
    }
    let mut cells: [Vec<String>; 4] = Default::default();
    for c in converted {
        cells[0].push(c.rate.from.clone());
        cells[1].push(c.billed.normalize().to_string());
        cells[2].push(c.rate.rate.to_string());
        cells[3].push(c.rate.effective_from.to_string());
    }
    let own = billed - converted.iter().map(|c| c.invoiced).sum::<Decimal>();
    if !own.is_zero() {
        cells[0].push(currency.to_string());
        cells[1].push(own.normalize().to_string());
        cells[2].push(String::new());
        cells[3].push(String::new());
    }
    cells.map(|c| c.join(";"))
}

impl ReconRow {
    /// Logged / billed tokens.
    pub fn coverage(&self) -> Option<Decimal> {
        (!self.billed_tokens.is_zero()).then(|| self.logged_tokens / self.billed_tokens)
    }

    /// Billed / catalog − 1.
    pub fn price_variance(&self) -> Option<Decimal> {
        match self.catalog_cost {
            Some(c) if !c.is_zero() && self.priced_all => Some(self.billed_cost / c - Decimal::ONE),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    /// Exact billed cost attributed to each usage cell (same index).
    pub cell_billed: Vec<Decimal>,
    /// Exact catalog-priced cost of cells whose provider sent no bill.
    pub cell_estimated: Vec<Decimal>,
    /// Of each cell's cost (billed or estimated), the exact part its failed
    /// requests carry.
    pub cell_failed: Vec<Decimal>,
    /// Exact unattributed billed cost per provider.
    pub unattributed: BTreeMap<String, Decimal>,
    /// Σ billed usage lines, exact.
    pub billed_total: Decimal,
    /// Σ estimated cells, exact.
    pub estimated_total: Decimal,
    /// Providers priced from the catalog because they sent no bill.
    pub estimated_providers: BTreeSet<String>,
    pub rows: Vec<ReconRow>,
    pub exceptions: Vec<Exception>,
    /// Lineage: every billed usage line as split, in bill order.
    pub lines: Vec<LineTrace>,
    /// Lineage: each cell's part of each line, by line (parts of zero
    /// left out).
    pub shares: Vec<CellShare>,
    /// Lineage: the price set each estimated cell was priced with, by cell.
    pub cell_prices: Vec<(usize, PriceSet)>,
    /// What-if only: cells priced from the catalog whatever their
    /// provider (moved or planned usage); empty in a month as run.
    pub cell_repriced: Vec<bool>,
}

impl Reconciled {
    /// Whether cell `i`'s cost is a catalog price, not a bill's share.
    pub fn is_estimated(&self, i: usize, cell: &UsageCell) -> bool {
        self.estimated_providers.contains(&cell.provider)
            || self.cell_repriced.get(i).copied().unwrap_or(false)
    }
}

/// Tolerances from the policy.
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    pub min_coverage: Decimal,
    pub max_price_variance: Decimal,
}

pub fn reconcile(
    lines: &[BilledLine],
    cells: &[UsageCell],
    catalog: &Catalog,
    tol: Tolerances,
) -> Reconciled {
    let (merged, bill_rows, converted) = unscoped(lines, cells);
    let lines = merged.as_slice();
    let mut out = Reconciled {
        cell_billed: vec![Decimal::ZERO; cells.len()],
        cell_estimated: vec![Decimal::ZERO; cells.len()],
        cell_failed: vec![Decimal::ZERO; cells.len()],
        ..Default::default()
    };
    let mut by_day: HashMap<(&str, NaiveDate), Vec<usize>> = HashMap::new();
    for (i, c) in cells.iter().enumerate() {
        by_day
            .entry((c.provider.as_str(), c.day))
            .or_default()
            .push(i);
    }
    let mut rows: BTreeMap<(String, NaiveDate, String), ReconRow> = BTreeMap::new();
    // Per cell, the token classes some billed line matched.
    let mut matched = vec![[false; 4]; cells.len()];
    let billed_providers: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l.is_usage())
        .map(|l| l.provider.as_str())
        .collect();

    for ((line, bill_rows), converted) in lines.iter().zip(bill_rows).zip(converted) {
        out.billed_total += line.cost;
        let model_label = line
            .model
            .clone()
            .or_else(|| line.model_raw.clone())
            .unwrap_or_else(|| "(all models)".into());
        let row = rows
            .entry((line.provider.clone(), line.day, model_label.clone()))
            .or_insert_with(|| ReconRow {
                provider: line.provider.clone(),
                day: line.day.to_string(),
                model: model_label.clone(),
                priced_all: true,
                ..Default::default()
            });
        row.billed_cost += line.cost;
        for c in &converted {
            add_cost(&mut row.converted, c);
        }
        if line.model.is_none() && line.model_raw.is_some() {
            out.exceptions.push(Exception {
                provider: line.provider.clone(),
                day: line.day.to_string(),
                model: model_label.clone(),
                source: format!("{}:{}", line.source, line.row),
                ..Exception::new(
                    ExceptionKind::BilledModelUnknown,
                    format!(
                        "the bill names model `{model_label}`, which is not in the catalog; its {} stays unattributed",
                        line.cost
                    ),
                )
            });
        }
        let candidates: Vec<usize> = by_day
            .get(&(line.provider.as_str(), line.day))
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| {
                        let c = &cells[i];
                        (line.scope.is_empty() || c.scope == line.scope)
                            && match (&line.model, &line.model_raw) {
                                (Some(m), _) => &c.model == m,
                                (None, Some(_)) => false,
                                (None, None) => true,
                            }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (weights, weight_basis) = line_weights(line, &candidates, cells, catalog);
        let logged: Decimal = match line.usage_type {
            Some(t) => candidates
                .iter()
                .map(|&i| Decimal::from(cells[i].tokens_of(t)))
                .sum(),
            None => Decimal::ZERO,
        };
        let weight_sum: Decimal = weights.iter().copied().sum();
        // The share of the line the logs explain.
        let covered = match (line.usage_type, line.quantity) {
            (Some(_), Some(q)) if q > Decimal::ZERO => (logged / q).min(Decimal::ONE),
            _ if weight_sum > Decimal::ZERO => Decimal::ONE,
            _ => Decimal::ZERO,
        };
        if let (Some(t), Some(q)) = (line.usage_type, line.quantity) {
            row.billed_tokens += q;
            row.logged_tokens += logged;
            match (&line.model, catalog_price(catalog, line, t)) {
                (Some(_), Some(p)) => {
                    *row.catalog_cost.get_or_insert(Decimal::ZERO) +=
                        q * p / Decimal::from(1_000_000u64);
                }
                _ => row.priced_all = false,
            }
        } else {
            row.priced_all = false;
            if let Some(c) = logged_catalog_cost(line, &candidates, cells, catalog) {
                *row.logged_catalog_cost.get_or_insert(Decimal::ZERO) += c;
            }
        }
        let attributed = if covered == Decimal::ONE {
            line.cost
        } else {
            // Cut, not rounded, so the unattributed rest is never negative.
            (line.cost * covered).round_dp_with_strategy(SPLIT_PLACES, RoundingStrategy::ToZero)
        };
        let parts = if weight_sum > Decimal::ZERO {
            split_exact(attributed, &weights)
        } else {
            None
        };
        let trace = out.lines.len() as u32;
        let attributed = match parts {
            Some(parts) => {
                for (k, &i) in candidates.iter().enumerate() {
                    out.cell_billed[i] += parts[k];
                    out.cell_failed[i] += failed_part(line, &cells[i], parts[k], catalog);
                    if !(parts[k].is_zero() && weights[k].is_zero()) {
                        out.shares.push(CellShare {
                            line: trace,
                            cell: i as u32,
                            weight: weights[k],
                            share: parts[k],
                        });
                    }
                    if !weights[k].is_zero() {
                        match line.usage_type {
                            Some(t) => matched[i][t as usize] = true,
                            None => matched[i] = [true; 4],
                        }
                    }
                }
                attributed
            }
            None => Decimal::ZERO,
        };
        out.lines.push(LineTrace {
            source: format!("{}:{}", line.source, line.row),
            bill_rows,
            provider: line.provider.clone(),
            day: line.day,
            model: model_label,
            usage_type: line.usage_type,
            cost: line.cost,
            quantity: line.quantity,
            covered: attributed,
            weight_basis,
            total_weight: weight_sum,
            converted,
        });
        let rest = line.cost - attributed;
        row.attributed += attributed;
        row.unattributed += rest;
        if !rest.is_zero() {
            *out.unattributed.entry(line.provider.clone()).or_default() += rest;
        }
    }

    // Logged usage of providers that sent no bill: priced from the catalog.
    // Logged tokens of billed providers that no line matched, by class:
    // a day billed for input only leaves its output tokens unbilled.
    let mut unbilled: BTreeMap<(String, String, UsageType), u64> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        if billed_providers.contains(c.provider.as_str()) {
            for t in UsageType::ALL {
                if !matched[i][t as usize] && c.tokens_of(t) > 0 {
                    *unbilled
                        .entry((c.provider.clone(), c.model.clone(), t))
                        .or_default() += c.tokens_of(t);
                }
            }
            continue;
        }
        out.estimated_providers.insert(c.provider.clone());
        let row = rows
            .entry((c.provider.clone(), c.day, c.model.clone()))
            .or_insert_with(|| ReconRow {
                provider: c.provider.clone(),
                day: c.day.to_string(),
                model: c.model.clone(),
                ..Default::default()
            });
        match catalog.prices_on(&c.provider, &c.model, c.day) {
            Some(p) => {
                let cost: Decimal = UsageType::ALL
                    .iter()
                    .map(|&t| p.cost(t, c.tokens_of(t)))
                    .sum();
                out.cell_estimated[i] = cost;
                out.cell_failed[i] = UsageType::ALL
                    .iter()
                    .map(|&t| p.cost(t, c.error_tokens[t as usize]))
                    .sum();
                out.estimated_total += cost;
                row.estimated += cost;
                out.cell_prices.push((i, p.clone()));
            }
            None => out.exceptions.push(Exception {
                provider: c.provider.clone(),
                day: c.day.to_string(),
                model: c.model.clone(),
                team: c.team.clone(),
                ..Exception::new(
                    ExceptionKind::NoCatalogPrice,
                    format!(
                        "no price for `{}` is in force on {}; {} tokens are not charged",
                        c.model,
                        c.day,
                        c.total_tokens()
                    ),
                )
            }),
        }
    }
    for p in &out.estimated_providers {
        out.exceptions.push(Exception {
            provider: p.clone(),
            ..Exception::new(
                ExceptionKind::EstimatedProvider,
                format!(
                    "no bill line of the period is for `{p}`; its usage is charged at catalog prices"
                ),
            )
        });
    }
    for ((provider, model, t), tokens) in unbilled {
        out.exceptions.push(Exception {
            provider,
            model,
            ..Exception::new(
                ExceptionKind::UsageWithoutBillLine,
                format!(
                    "{tokens} logged `{}` tokens match no billed line; they carry no cost",
                    t.as_str()
                ),
            )
        });
    }

    let mut prices: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
    let mut coarse: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
    for row in rows.values() {
        let at = |kind: ExceptionKind, detail: String| Exception {
            provider: row.provider.clone(),
            day: row.day.clone(),
            model: row.model.clone(),
            ..Exception::new(kind, detail)
        };
        match row.coverage() {
            Some(c) if c < tol.min_coverage => out.exceptions.push(at(
                ExceptionKind::CoverageBelowMinimum,
                format!(
                    "logs cover {} of {} billed tokens ({}), below the minimum {}",
                    row.logged_tokens.normalize(),
                    row.billed_tokens.normalize(),
                    ratio(c),
                    tol.min_coverage
                ),
            )),
            Some(c) if c > Decimal::ONE => out.exceptions.push(at(
                ExceptionKind::LogsExceedBill,
                format!(
                    "logs show {} tokens but the bill {}; shares were scaled to the bill",
                    row.logged_tokens.normalize(),
                    row.billed_tokens.normalize()
                ),
            )),
            None if row.unattributed > Decimal::ZERO && row.billed_tokens.is_zero() => {
                out.exceptions.push(at(
                    ExceptionKind::BilledWithoutLogs,
                    format!(
                        "{} billed with no matching logs",
                        row.unattributed.normalize()
                    ),
                ))
            }
            _ => {}
        }
        if let (Some(_), Some(c)) = (row.price_variance(), row.catalog_cost) {
            let e = prices
                .entry((row.provider.clone(), row.model.clone()))
                .or_default();
            e.0 += row.billed_cost;
            e.1 += c;
        } else if let Some(c) = row
            .logged_catalog_cost
            .filter(|_| row.billed_tokens.is_zero())
        {
            let e = coarse
                .entry((row.provider.clone(), row.model.clone()))
                .or_default();
            e.0 += row.billed_cost;
            e.1 += c;
        }
    }
    // A price difference is a property of the contract, not of a day: one
    // exception per provider and model over the month (the daily figures
    // are in reconciliation.csv). A bill that states no tokens is checked
    // against the catalog cost of the usage logged for it: a gap is missing
    // logs or another price.
    let checks = [
        (
            prices,
            "at catalog prices",
            "a negotiated rate belongs in the catalog",
        ),
        (
            coarse,
            "for the logged usage at catalog prices",
            "the bill states no tokens, so either the logs miss usage or the price is not the catalog's",
        ),
    ];
    for (sums, basis, advice) in checks {
        for ((provider, model), (billed, catalog)) in sums {
            if catalog.is_zero() {
                continue;
            }
            let v = billed / catalog - Decimal::ONE;
            if v.abs() > tol.max_price_variance {
                out.exceptions.push(Exception {
                    provider,
                    model,
                    ..Exception::new(
                        ExceptionKind::PriceVariance,
                        format!(
                            "billed {} vs {} {basis} over the month ({}), beyond the tolerance {}; {advice}",
                            billed.round_dp(6).normalize(),
                            catalog.round_dp(6).normalize(),
                            signed_ratio(v),
                            tol.max_price_variance
                        ),
                    )
                });
            }
        }
    }
    out.rows = rows.into_values().collect();
    out.exceptions.sort();
    out
}

/// The usage lines to match, each with the number of bill rows merged into
/// it and what of it was converted from other currencies. `billing_scope`
/// is optional in the logs: for a provider whose logs carry none, the
/// bill's scopes cannot be matched, so its lines are matched without
/// scope, merged across scopes so that coverage compares like with like.
fn unscoped(
    lines: &[BilledLine],
    cells: &[UsageCell],
) -> (Vec<BilledLine>, Vec<u32>, Vec<Vec<ConvertedCost>>) {
    let scoped: BTreeSet<&str> = cells
        .iter()
        .filter(|c| !c.scope.is_empty())
        .map(|c| c.provider.as_str())
        .collect();
    let mut out: Vec<BilledLine> = Vec::with_capacity(lines.len());
    let mut rows: Vec<u32> = Vec::with_capacity(lines.len());
    let mut converted: Vec<Vec<ConvertedCost>> = Vec::with_capacity(lines.len());
    // A line's grain: its scope is left out when the logs carry none.
    type Grain = (
        String,
        String,
        NaiveDate,
        Option<String>,
        Option<String>,
        Option<UsageType>,
    );
    let mut index: HashMap<Grain, usize> = HashMap::new();
    for l in lines.iter().filter(|l| l.is_usage()) {
        let keep_scope = l.scope.is_empty() || scoped.contains(l.provider.as_str());
        // Token lines of one grain (hourly rows of a day, two meters of one
        // class) are matched as one, or each would claim the day's logs.
        let counted = l.usage_type.is_some()
            && l.quantity.is_some()
            && (l.model.is_some() || l.model_raw.is_none());
        let mut own = Vec::new();
        add_converted(&mut own, l);
        if keep_scope && !counted {
            out.push(l.clone());
            rows.push(1);
            converted.push(own);
            continue;
        }
        let scope = if keep_scope {
            l.scope.clone()
        } else {
            String::new()
        };
        let key = (
            l.provider.clone(),
            scope.clone(),
            l.day,
            l.model.clone(),
            l.model_raw.clone(),
            l.usage_type,
        );
        match index.get(&key) {
            Some(&i) => {
                rows[i] = rows[i].saturating_add(1);
                add_converted(&mut converted[i], l);
                let m = &mut out[i];
                m.cost += l.cost;
                m.quantity = match (m.quantity, l.quantity) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
            }
            None => {
                index.insert(key, out.len());
                out.push(BilledLine { scope, ..l.clone() });
                rows.push(1);
                converted.push(own);
            }
        }
    }
    (out, rows, converted)
}

/// How much of a line each candidate cell carries: tokens of the line's
/// class when the line names one model and class (catalog cost would be
/// proportional), catalog cost otherwise (tokens when some cell has no
/// price); and which of the two it is.
/// The part of a cell's share of a line that its failed requests carry,
/// weighed as the line was split: by the tokens of the line's class, or,
/// for a line of every class, by catalog cost (tokens when unpriced).
fn failed_part(line: &BilledLine, c: &UsageCell, share: Decimal, catalog: &Catalog) -> Decimal {
    if c.errors == 0 || share.is_zero() {
        return Decimal::ZERO;
    }
    let classes: Vec<UsageType> = match line.usage_type {
        Some(t) => vec![t],
        None => UsageType::ALL.to_vec(),
    };
    let (failed, all) = match (
        line.usage_type,
        catalog.prices_on(&c.provider, &c.model, c.day),
    ) {
        (None, Some(p)) => classes
            .iter()
            .fold((Decimal::ZERO, Decimal::ZERO), |(f, a), &t| {
                (
                    f + p.cost(t, c.error_tokens[t as usize]),
                    a + p.cost(t, c.tokens_of(t)),
                )
            }),
        _ => classes
            .iter()
            .fold((Decimal::ZERO, Decimal::ZERO), |(f, a), &t| {
                (
                    f + Decimal::from(c.error_tokens[t as usize]),
                    a + Decimal::from(c.tokens_of(t)),
                )
            }),
    };
    if all.is_zero() {
        Decimal::ZERO
    } else {
        share * failed / all
    }
}

fn line_weights(
    line: &BilledLine,
    candidates: &[usize],
    cells: &[UsageCell],
    catalog: &Catalog,
) -> (Vec<Decimal>, WeightBasis) {
    if let (Some(t), Some(_)) = (line.usage_type, &line.model) {
        let weights = candidates
            .iter()
            .map(|&i| Decimal::from(cells[i].tokens_of(t)))
            .collect();
        return (weights, WeightBasis::Tokens);
    }
    let classes: Vec<UsageType> = match line.usage_type {
        Some(t) => vec![t],
        None => UsageType::ALL.to_vec(),
    };
    let priced: Option<Vec<Decimal>> = candidates
        .iter()
        .map(|&i| {
            let c = &cells[i];
            let p = catalog.prices_on(&c.provider, &c.model, c.day)?;
            Some(classes.iter().map(|&t| p.cost(t, c.tokens_of(t))).sum())
        })
        .collect();
    match priced {
        Some(weights) => (weights, WeightBasis::CatalogCost),
        None => {
            let weights = candidates
                .iter()
                .map(|&i| {
                    Decimal::from(classes.iter().map(|&t| cells[i].tokens_of(t)).sum::<u64>())
                })
                .collect();
            (weights, WeightBasis::Tokens)
        }
    }
}

/// The catalog cost of the logged usage a line without tokens matched, in
/// the line's class (every class when it names none); `None` when some
/// cell has no price.
fn logged_catalog_cost(
    line: &BilledLine,
    candidates: &[usize],
    cells: &[UsageCell],
    catalog: &Catalog,
) -> Option<Decimal> {
    let classes: Vec<UsageType> = match line.usage_type {
        Some(t) => vec![t],
        None => UsageType::ALL.to_vec(),
    };
    candidates
        .iter()
        .map(|&i| {
            let c = &cells[i];
            let p = catalog.prices_on(&c.provider, &c.model, c.day)?;
            Some(
                classes
                    .iter()
                    .map(|&t| p.cost(t, c.tokens_of(t)))
                    .sum::<Decimal>(),
            )
        })
        .sum()
}

fn catalog_price(catalog: &Catalog, line: &BilledLine, t: UsageType) -> Option<Decimal> {
    let m = line.model.as_deref()?;
    Some(catalog.prices_on(&line.provider, m, line.day)?.per_mtok(t))
}

/// A ratio as a percentage with one decimal, e.g. `93.1%`.
pub fn ratio(r: Decimal) -> String {
    format!("{}%", (r * Decimal::ONE_HUNDRED).round_dp(1).normalize())
}

fn signed_ratio(r: Decimal) -> String {
    let s = ratio(r);
    if r > Decimal::ZERO {
        format!("+{s}")
    } else {
        s
    }
}

/// `reconciliation.csv`: the bill against the logs, per provider, day and
/// model; exact figures in full, attributions in minor units; last, what
/// the bill stated in other currencies and the rates (see
/// [`as_billed_cells`]), in `currency`.
pub fn reconciliation_csv(rows: &[ReconRow], scale: u32, currency: &str) -> Vec<u8> {
    let d = |v: Decimal| format_amount(v, scale);
    let full = |v: Decimal| v.normalize().to_string();
    csv_bytes(
        schema::ledger::RECONCILIATION,
        rows.iter().map(|r| {
            let [bill_currency, bill_cost, fx_rate, fx_rate_date] =
                as_billed_cells(&r.converted, r.billed_cost, currency);
            [
                r.provider.clone(),
                r.day.clone(),
                r.model.clone(),
                full(r.billed_cost),
                full(r.billed_tokens),
                full(r.logged_tokens),
                r.coverage()
                    .map(|c| c.round_dp(4).normalize().to_string())
                    .unwrap_or_default(),
                d(r.attributed),
                d(r.unattributed),
                d(r.estimated),
                r.catalog_cost
                    .map(|c| c.round_dp(6).normalize().to_string())
                    .unwrap_or_default(),
                r.price_variance()
                    .map(|v| v.round_dp(4).normalize().to_string())
                    .unwrap_or_default(),
                bill_currency,
                bill_cost,
                fx_rate,
                fx_rate_date,
            ]
        }),
    )
}

/// `exceptions.csv`: every exception, in the order given.
pub fn exceptions_csv(exceptions: &[Exception]) -> Vec<u8> {
    csv_bytes(
        schema::ledger::EXCEPTIONS,
        exceptions.iter().map(|e| {
            [
                e.kind.to_string(),
                e.provider.clone(),
                e.day.clone(),
                e.model.clone(),
                e.team.clone(),
                e.source.clone(),
                e.detail.clone(),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::ingest::ChargeCategory;

    fn catalog() -> Catalog {
        Catalog::parse(
            r#"{"models":[{"provider":"openai","model":"gpt-4o","prices":[{"effective_from":"2024-01-01","input":"10000","output":"15"}]}]}"#,
            "c.json",
        )
        .unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, 3).unwrap()
    }

    fn cell(team: &str, scope: &str, input: u64) -> UsageCell {
        UsageCell {
            provider: "openai".into(),
            scope: scope.into(),
            day: day(),
            model: "gpt-4o".into(),
            team: team.into(),
            use_case: "chat".into(),
            tokens: [input, 0, 0, 0],
            requests: 1,
            errors: 0,
            error_tokens: [0; 4],
            estimated_tokens: [0; 4],
        }
    }

    fn line(scope: &str, tokens: u64, cost: &str) -> BilledLine {
        BilledLine {
            provider: "openai".into(),
            scope: scope.into(),
            day: day(),
            model: Some("gpt-4o".into()),
            model_raw: Some("gpt-4o".into()),
            usage_type: Some(UsageType::Input),
            quantity: Some(Decimal::from(tokens)),
            cost: cost.parse().unwrap(),
            currency: "USD".into(),
            fx: None,
            category: ChargeCategory::Usage,
            correction: false,
            description: None,
            source: "bill.csv".into(),
            row: 1,
        }
    }

    const TOL: Tolerances = Tolerances {
        min_coverage: Decimal::from_parts(98, 0, 0, false, 2),
        max_price_variance: Decimal::from_parts(5, 0, 0, false, 2),
    };

    /// A price change on the 15th: each billed line is checked against
    /// the price of its own day, and unbilled usage is priced per day.
    #[test]
    fn each_day_is_priced_with_the_prices_in_force() {
        let cat = Catalog::parse(
            r#"{"models":[{"provider":"openai","model":"gpt-4o","prices":[
              {"effective_from":"2025-01-01","input":"10","output":"30"},
              {"effective_from":"2025-01-15","input":"5","output":"15"}]},
              {"provider":"mistral","model":"mistral-large","prices":[
              {"effective_from":"2025-01-01","input":"2","output":"6"},
              {"effective_from":"2025-01-15","input":"1","output":"3"}]}]}"#,
            "c.json",
        )
        .unwrap();
        let on = |d| NaiveDate::from_ymd_opt(2025, 1, d).unwrap();
        let at = |d, c: UsageCell| UsageCell { day: on(d), ..c };
        let billed = |d, cost| BilledLine {
            day: on(d),
            ..line("p1", 100_000, cost)
        };
        let mistral = |d, input, output| UsageCell {
            provider: "mistral".into(),
            model: "mistral-large".into(),
            day: on(d),
            tokens: [input, 0, 0, output],
            ..cell("a", "p1", 0)
        };
        let cells = [
            at(14, cell("a", "p1", 100_000)),
            at(15, cell("a", "p1", 100_000)),
            mistral(14, 1_000_000, 100_000),
            mistral(15, 1_000_000, 100_000),
        ];
        let r = reconcile(&[billed(14, "1.00"), billed(15, "0.50")], &cells, &cat, TOL);
        let costs: Vec<(&str, &str, Option<Decimal>, Decimal)> = r
            .rows
            .iter()
            .map(|r| {
                (
                    r.provider.as_str(),
                    r.day.as_str(),
                    r.catalog_cost,
                    r.estimated,
                )
            })
            .collect();
        assert_eq!(
            costs,
            [
                ("mistral", "2025-01-14", None, Decimal::new(26, 1)),
                ("mistral", "2025-01-15", None, Decimal::new(13, 1)),
                ("openai", "2025-01-14", Some(Decimal::ONE), Decimal::ZERO),
                (
                    "openai",
                    "2025-01-15",
                    Some(Decimal::new(5, 1)),
                    Decimal::ZERO
                ),
            ]
        );
        assert!(
            r.rows
                .iter()
                .all(|r| r.price_variance().is_none_or(|v| v.is_zero()))
        );
        let from: Vec<(usize, NaiveDate)> = r
            .cell_prices
            .iter()
            .map(|(i, p)| (*i, p.effective_from))
            .collect();
        assert_eq!(from, [(2, on(1)), (3, on(15))]);
    }

    #[test]
    fn a_day_billed_for_input_only_leaves_its_output_unbilled() {
        let mut c = cell("a", "p1", 100);
        c.tokens[UsageType::Output as usize] = 40;
        let lines = [line("p1", 100, "1.00")];
        let r = reconcile(&lines, &[c], &catalog(), TOL);
        let unbilled: Vec<&str> = r
            .exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::UsageWithoutBillLine)
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(
            unbilled,
            ["40 logged `output` tokens match no billed line; they carry no cost"]
        );
    }

    #[test]
    fn a_bill_without_tokens_is_checked_against_the_logged_usage() {
        // 100 input tokens at 10,000 per 1M cost 1.00 at catalog prices;
        // the project's coarse line bills 2.00.
        let coarse = BilledLine {
            model: None,
            model_raw: None,
            usage_type: None,
            quantity: None,
            ..line("p1", 0, "2.00")
        };
        let r = reconcile(&[coarse], &[cell("a", "p1", 100)], &catalog(), TOL);
        let variance: Vec<&str> = r
            .exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::PriceVariance)
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(
            variance,
            [
                "billed 2 vs 1 for the logged usage at catalog prices over the month (+100%), beyond the tolerance 0.05; the bill states no tokens, so either the logs miss usage or the price is not the catalog's"
            ]
        );
        // Within tolerance: nothing.
        let coarse = BilledLine {
            model: None,
            model_raw: None,
            usage_type: None,
            quantity: None,
            ..line("p1", 0, "1.02")
        };
        let r = reconcile(&[coarse], &[cell("a", "p1", 100)], &catalog(), TOL);
        assert!(r.exceptions.is_empty(), "{:?}", r.exceptions);
    }

    #[test]
    fn scopes_split_the_bill_when_logs_carry_them() {
        let cells = [cell("a", "p1", 100), cell("b", "p2", 300)];
        let lines = [line("p1", 100, "1.00"), line("p2", 300, "3.00")];
        let r = reconcile(&lines, &cells, &catalog(), TOL);
        assert_eq!(r.cell_billed, vec![Decimal::ONE, Decimal::from(3)]);
        assert!(r.exceptions.is_empty(), "{:?}", r.exceptions);
    }

    #[test]
    fn logs_without_scopes_match_the_bill_across_scopes() {
        let cells = [cell("a", "", 100), cell("b", "", 300)];
        let lines = [line("p1", 100, "1.00"), line("p2", 300, "3.00")];
        let r = reconcile(&lines, &cells, &catalog(), TOL);
        assert_eq!(r.cell_billed, vec![Decimal::ONE, Decimal::from(3)]);
        assert!(r.unattributed.is_empty());
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].coverage(), Some(Decimal::ONE));
        assert!(r.exceptions.is_empty(), "{:?}", r.exceptions);
    }

    #[test]
    fn hourly_lines_of_a_day_share_the_days_logs() {
        // Two hourly lines of 100 tokens each; the day's logs cover 150.
        let cells = [cell("a", "p1", 150)];
        let lines = [line("p1", 100, "1.00"), line("p1", 100, "1.00")];
        let r = reconcile(&lines, &cells, &catalog(), TOL);
        assert_eq!(r.cell_billed[0], Decimal::new(15, 1));
        assert_eq!(r.unattributed["openai"], Decimal::new(5, 1));
        assert_eq!(r.rows[0].billed_tokens, Decimal::from(200));
        assert_eq!(r.rows[0].logged_tokens, Decimal::from(150));
        // One line of two bill rows, the first one's source.
        assert_eq!(r.lines.len(), 1);
        assert_eq!(
            (r.lines[0].bill_rows, r.lines[0].source.as_str()),
            (2, "bill.csv:1")
        );
    }

    #[test]
    fn converted_lines_show_what_the_bill_stated_and_the_rate() {
        use crate::fx::{Converted, Rate};
        let eur = |d: u32, rate: &str| Rate {
            from: "EUR".into(),
            rate: rate.parse().unwrap(),
            effective_from: NaiveDate::from_ymd_opt(2025, 1, d).unwrap(),
        };
        let converted = |billed: &str, usd: &str, rate: Rate| BilledLine {
            fx: Some(Box::new(Converted {
                cost: billed.parse().unwrap(),
                rate,
            })),
            ..line("p1", 100, usd)
        };
        // Two hourly EUR lines and one in dollars, of one grain: merged.
        let lines = [
            converted("10", "10.84", eur(1, "1.0842")),
            converted("2.5", "2.71", eur(1, "1.0842")),
            line("p1", 100, "1.00"),
        ];
        let r = reconcile(&lines, &[cell("a", "p1", 300)], &catalog(), TOL);
        assert_eq!(r.rows.len(), 1);
        let row = &r.rows[0];
        assert_eq!(row.billed_cost, Decimal::new(1455, 2));
        let cells = as_billed_cells(&row.converted, row.billed_cost, "USD");
        assert_eq!(
            cells,
            ["EUR;USD", "12.5;1", "1.0842;", "2025-01-01;"].map(String::from)
        );
        assert_eq!(r.lines[0].converted, row.converted);
        // Only converted lines: one value each; none: empty cells.
        let only = reconcile(&lines[..1], &[cell("a", "p1", 100)], &catalog(), TOL);
        let row = &only.rows[0];
        assert_eq!(
            as_billed_cells(&row.converted, row.billed_cost, "USD"),
            ["EUR", "10", "1.0842", "2025-01-01"].map(String::from)
        );
        let none = reconcile(&lines[2..], &[cell("a", "p1", 100)], &catalog(), TOL);
        assert_eq!(
            as_billed_cells(&none.rows[0].converted, Decimal::ONE, "USD"),
            <[String; 4]>::default()
        );
        let csv = String::from_utf8(reconciliation_csv(&only.rows, 2, "USD")).unwrap();
        let mut csv = csv.lines();
        assert!(
            csv.next()
                .unwrap()
                .ends_with(",price_variance,bill_currency,bill_cost,fx_rate,fx_rate_date")
        );
        assert!(csv.next().unwrap().ends_with(",EUR,10,1.0842,2025-01-01"));
    }

    #[test]
    fn uncovered_tokens_stay_unattributed_and_excess_is_scaled() {
        let cells = [cell("a", "p1", 50)];
        let r = reconcile(&[line("p1", 100, "1.00")], &cells, &catalog(), TOL);
        assert_eq!(r.cell_billed[0], Decimal::new(5, 1));
        assert_eq!(r.unattributed["openai"], Decimal::new(5, 1));
        assert_eq!(r.exceptions[0].kind.as_str(), "coverage_below_minimum");

        let cells = [cell("a", "p1", 150), cell("b", "p1", 50)];
        let r = reconcile(&[line("p1", 100, "1.00")], &cells, &catalog(), TOL);
        assert_eq!(
            r.cell_billed,
            vec![Decimal::new(75, 2), Decimal::new(25, 2)]
        );
        assert!(r.unattributed.is_empty());
        assert_eq!(r.exceptions[0].kind.as_str(), "logs_exceed_bill");
    }
}
