//! Where every invoice line's amount came from: the share of each billed
//! line a team's line carries (its weight of the line's total weight), the
//! catalog prices of estimated usage, and the unattributed cost a team
//! carries — each exact part, and the parts rounded so that they add up to
//! their line to the cent. Built from what reconcile and attribute record
//! while they compute; it changes no amount. `allocations.parquet` and
//! `chargeback explain` read it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::catalog::{PriceSet, UsageType};
use crate::compute::attribute::{Attribution, LineRef};
use crate::compute::chargeback::TeamCharges;
use crate::compute::reconcile::{ConvertedCost, Reconciled};
use crate::load::ingest::UsageCell;
use crate::money::{Decimal, largest_remainder};

/// What a billed line's split weighs each usage cell by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightBasis {
    /// Logged tokens of the line's class (of every class when it names
    /// none, or when some cell has no catalog price).
    Tokens,
    /// The cells' usage at catalog prices: a line across models or token
    /// classes, where tokens of different prices do not compare.
    CatalogCost,
}

impl WeightBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            WeightBasis::Tokens => "tokens",
            WeightBasis::CatalogCost => "catalog_cost",
        }
    }
}

/// A billed usage line as it was split: rows of one grain (hourly rows of
/// a day, two meters of one class) are merged into one line first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineTrace {
    /// `uri:row` of its (first) bill row, as exceptions cite bill rows.
    pub source: String,
    /// Bill rows merged into this line; 1 for most.
    pub bill_rows: u32,
    pub provider: String,
    pub day: NaiveDate,
    /// The model as the reconciliation names it (`(all models)` for a line
    /// that names none).
    pub model: String,
    pub usage_type: Option<UsageType>,
    pub cost: Decimal,
    /// The tokens the bill states, when it states them.
    pub quantity: Option<Decimal>,
    /// The part of `cost` the logs explain, split over the teams by
    /// weight; `cost − covered` stays unattributed.
    pub covered: Decimal,
    pub weight_basis: WeightBasis,
    /// Σ weights of the usage the line matched.
    pub total_weight: Decimal,
    /// What of `cost` the bill stated in other currencies, by rate.
    pub converted: Vec<ConvertedCost>,
}

impl LineTrace {
    /// What the logs do not explain.
    pub fn rest(&self) -> Decimal {
        self.cost - self.covered
    }
}

/// One usage cell's part of a billed line, as `split_exact` cut it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellShare {
    /// Index into [`Reconciled::lines`].
    pub line: u32,
    /// Index into the usage cells.
    pub cell: u32,
    pub weight: Decimal,
    pub share: Decimal,
}

/// An invoice usage line, in invoice order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub team: String,
    /// 0-based position on the team's invoice (usage lines come first).
    pub line: u32,
    pub provider: String,
    pub model: String,
    pub use_case: String,
    pub estimated: bool,
    pub exact: Decimal,
    pub amount: Decimal,
}

/// Where one part of an amount came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A team's share of a billed line: `covered × weight / total_weight`.
    Billed { line: u32, weight: Decimal },
    /// What a billed line's logs do not explain: in the unattributed
    /// bucket, or carried by a team (policy `team`).
    Unattributed { line: u32 },
    /// A part of a provider's unattributed cost spread over the lines
    /// that carry its billed usage (policy `proportional`), by what each
    /// line carried before: `rest × weight / total_weight`.
    Spread {
        weight: Decimal,
        total_weight: Decimal,
        /// The provider's unattributed cost, exact.
        rest: Decimal,
    },
    /// Usage of a provider that sent no bill, priced from the catalog.
    Catalog {
        day: NaiveDate,
        usage_type: UsageType,
        tokens: u64,
        per_mtok: Decimal,
        effective_from: NaiveDate,
    },
    /// A minor unit rounding gave a line that nothing else explains (a
    /// line of zero exact cost that largest remainder rounded up).
    Rounding,
}

impl Origin {
    /// The `kind` column of `allocations.parquet`.
    pub fn kind(&self) -> &'static str {
        match self {
            Origin::Billed { .. } => "billed",
            Origin::Unattributed { .. } => "unattributed",
            Origin::Spread { .. } => "spread",
            Origin::Catalog { .. } => "catalog",
            Origin::Rounding => "rounding",
        }
    }
}

/// One exact part of an invoice line (or of the unattributed bucket), and
/// its rounded amount.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// Index into [`Lineage::targets`]; `None`: the unattributed bucket.
    pub target: Option<u32>,
    pub origin: Origin,
    pub exact: Decimal,
    pub amount: Decimal,
}

/// One part as `allocations.parquet` and `chargeback explain` show it:
/// every column of the ledger but the period and currency, `None` where
/// it does not apply. Decimals are normalised (no trailing zeros) except
/// `amount`, which has the currency's places.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part<'a> {
    pub team: Option<&'a str>,
    /// The line's number on the team's invoice, from 1.
    pub invoice_line: Option<u32>,
    pub provider: &'a str,
    pub model: Option<&'a str>,
    pub use_case: Option<&'a str>,
    /// [`Origin::kind`].
    pub kind: &'static str,
    /// `uri:row` of the billed line, `catalog`, `unattributed:<provider>`
    /// (a spread part) or `rounding`.
    pub source: Cow<'a, str>,
    pub bill_rows: Option<u32>,
    pub day: Option<NaiveDate>,
    pub usage_type: Option<UsageType>,
    /// The billed line's cost (a spread part: the provider's unattributed
    /// cost that was spread).
    pub billed_cost: Option<Decimal>,
    pub covered_cost: Option<Decimal>,
    /// Tokens: the bill's quantity, or the catalog-priced tokens.
    pub quantity: Option<Decimal>,
    pub weight_basis: Option<&'static str>,
    pub weight: Option<Decimal>,
    pub total_weight: Option<Decimal>,
    pub price_per_mtok: Option<Decimal>,
    /// The `effective_from` of the catalog price set.
    pub prices_from: Option<NaiveDate>,
    pub exact_share: Decimal,
    pub amount: Decimal,
    /// `amount − exact_share`.
    pub adjustment: Decimal,
    /// What of the billed line's cost the bill stated in other
    /// currencies, by rate; left out when nothing was converted.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub converted: &'a [ConvertedCost],
}

/// The month's lineage.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    /// Billed usage lines as split, in bill order.
    pub lines: Vec<LineTrace>,
    /// Every invoice usage line, teams sorted, lines in invoice order.
    pub targets: Vec<Target>,
    /// Every part: by target in target order (billed lines in bill order,
    /// then unattributed, spread and catalog parts by day and class), then
    /// the unattributed bucket by provider.
    pub allocations: Vec<Allocation>,
    /// Each team's markup and fee lines, as computed.
    pub charges: BTreeMap<String, TeamCharges>,
}

impl Lineage {
    /// The parts of one target line, contiguous in [`Lineage::allocations`].
    pub fn parts_of(&self, target: u32) -> &[Allocation] {
        let a = &self.allocations;
        let start = a.partition_point(|x| x.target.is_some_and(|t| t < target));
        let end = a.partition_point(|x| x.target.is_some_and(|t| t <= target));
        &a[start..end]
    }

    /// The parts of the unattributed bucket.
    pub fn bucket(&self) -> &[Allocation] {
        let start = self.allocations.partition_point(|x| x.target.is_some());
        &self.allocations[start..]
    }

    /// A part with every column it has.
    pub fn part<'a>(&'a self, a: &'a Allocation) -> Part<'a> {
        let target = a.target.map(|t| &self.targets[t as usize]);
        let mut p = Part {
            team: target.map(|t| t.team.as_str()),
            invoice_line: target.map(|t| t.line + 1),
            provider: self.provider_of(a),
            model: target.map(|t| t.model.as_str()),
            use_case: target.map(|t| t.use_case.as_str()),
            kind: a.origin.kind(),
            source: Cow::Borrowed("rounding"),
            bill_rows: None,
            day: None,
            usage_type: None,
            billed_cost: None,
            covered_cost: None,
            quantity: None,
            weight_basis: None,
            weight: None,
            total_weight: None,
            price_per_mtok: None,
            prices_from: None,
            exact_share: a.exact.normalize(),
            amount: a.amount,
            adjustment: (a.amount - a.exact).normalize(),
            converted: &[],
        };
        match &a.origin {
            Origin::Billed { line, .. } | Origin::Unattributed { line } => {
                let l = &self.lines[*line as usize];
                p.model = p.model.or(Some(l.model.as_str()));
                p.source = Cow::Borrowed(&l.source);
                p.bill_rows = Some(l.bill_rows);
                p.day = Some(l.day);
                p.usage_type = l.usage_type;
                p.billed_cost = Some(l.cost.normalize());
                p.covered_cost = Some(l.covered.normalize());
                p.quantity = l.quantity.map(|q| q.normalize());
                p.converted = &l.converted;
                if let Origin::Billed { weight, .. } = &a.origin {
                    p.weight_basis = Some(l.weight_basis.as_str());
                    p.weight = Some(weight.normalize());
                    p.total_weight = Some(l.total_weight.normalize());
                }
            }
            Origin::Spread {
                weight,
                total_weight,
                rest,
            } => {
                p.source = Cow::Owned(format!("unattributed:{}", p.provider));
                p.billed_cost = Some(rest.normalize());
                p.weight_basis = Some("attributed_cost");
                p.weight = Some(weight.normalize());
                p.total_weight = Some(total_weight.normalize());
            }
            Origin::Catalog {
                day,
                usage_type,
                tokens,
                per_mtok,
                effective_from,
            } => {
                p.source = Cow::Borrowed("catalog");
                p.day = Some(*day);
                p.usage_type = Some(*usage_type);
                p.quantity = Some(Decimal::from(*tokens));
                p.price_per_mtok = Some(per_mtok.normalize());
                p.prices_from = Some(*effective_from);
            }
            Origin::Rounding => {}
        }
        p
    }

    /// The provider a part is of: its line's, or its billed line's.
    pub fn provider_of(&self, a: &Allocation) -> &str {
        match (a.target, &a.origin) {
            (Some(t), _) => &self.targets[t as usize].provider,
            (None, Origin::Unattributed { line } | Origin::Billed { line, .. }) => {
                &self.lines[*line as usize].provider
            }
            (None, _) => "",
        }
    }

    /// The target index of a team's 0-based invoice line.
    pub fn target(&self, team: &str, line: u32) -> Option<u32> {
        let start = self.targets.partition_point(|t| t.team.as_str() < team);
        self.targets[start..]
            .iter()
            .take_while(|t| t.team == team)
            .position(|t| t.line == line)
            .map(|k| (start + k) as u32)
    }
}

/// The lineage of a month: every exact part of every invoice usage line
/// and of the unattributed bucket, and each line's rounded amount spread
/// over its parts by largest remainder, so that the parts of a line add up
/// to its amount and all parts to billed + estimated.
pub fn lineage(
    cells: &[UsageCell],
    rec: &Reconciled,
    a: &Attribution,
    lines: Vec<LineTrace>,
    scale: u32,
) -> Lineage {
    let mut offsets = Vec::with_capacity(a.teams.len());
    let mut targets = Vec::new();
    for t in a.teams.values() {
        offsets.push(targets.len());
        for (k, l) in t.lines.iter().enumerate() {
            targets.push(Target {
                team: t.team.clone(),
                line: k as u32,
                provider: l.provider.clone(),
                model: l.model.clone(),
                use_case: l.use_case.clone(),
                estimated: l.estimated,
                exact: l.exact,
                amount: l.amount,
            });
        }
    }
    let target_of = |r: LineRef| offsets[r.team as usize] + r.line as usize;
    let cell_line = &a.trace.cell_line;
    let mut groups: Vec<Vec<(Origin, Decimal)>> = vec![Vec::new(); targets.len()];

    // Billed shares, line by line: a team line's cells of one billed line
    // (scopes, …) are one part.
    let mut scratch: Vec<(usize, Decimal, Decimal)> = Vec::new();
    for shares in rec.shares.chunk_by(|x, y| x.line == y.line) {
        scratch.clear();
        scratch.extend(
            shares
                .iter()
                .map(|s| (target_of(cell_line[s.cell as usize]), s.weight, s.share)),
        );
        scratch.sort_unstable_by_key(|s| s.0);
        for same in scratch.chunk_by(|x, y| x.0 == y.0) {
            let weight = same.iter().map(|s| s.1).sum();
            let share = same.iter().map(|s| s.2).sum();
            groups[same[0].0].push((
                Origin::Billed {
                    line: shares[0].line,
                    weight,
                },
                share,
            ));
        }
    }
    let rests = |provider: &str| -> Vec<(Origin, Decimal)> {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.provider == provider && !l.rest().is_zero())
            .map(|(j, l)| (Origin::Unattributed { line: j as u32 }, l.rest()))
            .collect()
    };
    for (provider, line) in &a.trace.carried {
        groups[target_of(*line)].extend(rests(provider));
    }
    for s in &a.trace.spread {
        groups[target_of(s.line)].push((
            Origin::Spread {
                weight: s.weight,
                total_weight: s.total_weight,
                rest: rec.unattributed[&s.provider],
            },
            s.part,
        ));
    }
    // Catalog-priced usage per line, day and token class; the cells of a
    // line and day (scopes) have the same price.
    let mut priced: BTreeMap<(usize, NaiveDate, UsageType), (u64, Decimal, &PriceSet)> =
        BTreeMap::new();
    for (i, p) in &rec.cell_prices {
        let c = &cells[*i];
        let target = target_of(cell_line[*i]);
        for t in UsageType::ALL {
            let tokens = c.tokens_of(t);
            if tokens == 0 {
                continue;
            }
            let e = priced
                .entry((target, c.day, t))
                .or_insert((0, Decimal::ZERO, p));
            e.0 = e.0.saturating_add(tokens);
            e.1 += p.cost(t, tokens);
        }
    }
    for ((target, day, usage_type), (tokens, cost, p)) in priced {
        groups[target].push((
            Origin::Catalog {
                day,
                usage_type,
                tokens,
                per_mtok: p.per_mtok(usage_type),
                effective_from: p.effective_from,
            },
            cost,
        ));
    }

    let mut allocations = Vec::with_capacity(groups.iter().map(Vec::len).sum());
    for (k, parts) in groups.into_iter().enumerate() {
        let t = &targets[k];
        debug_assert_eq!(
            parts.iter().map(|p| p.1).sum::<Decimal>(),
            t.exact,
            "the parts of {} line {}",
            t.team,
            t.line + 1
        );
        push_rounded(&mut allocations, Some(k as u32), parts, t.amount, scale);
    }
    for (provider, amount) in &a.unattributed {
        push_rounded(&mut allocations, None, rests(provider), *amount, scale);
    }
    Lineage {
        lines,
        targets,
        allocations,
        charges: BTreeMap::new(),
    }
}

/// The parts of one line, with its rounded `amount` spread over them.
fn push_rounded(
    out: &mut Vec<Allocation>,
    target: Option<u32>,
    mut parts: Vec<(Origin, Decimal)>,
    amount: Decimal,
    scale: u32,
) {
    if parts.is_empty() {
        if amount.is_zero() {
            return;
        }
        parts.push((Origin::Rounding, Decimal::ZERO));
    }
    let exacts: Vec<Decimal> = parts.iter().map(|p| p.1).collect();
    let amounts = largest_remainder(&exacts, amount, scale);
    out.extend(
        parts
            .into_iter()
            .zip(amounts)
            .map(|((origin, exact), amount)| Allocation {
                target,
                origin,
                exact,
                amount,
            }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::compute::attribute::attribute;
    use crate::compute::reconcile::{Tolerances, reconcile};
    use crate::config::UnattributedPolicy;
    use crate::load::ingest::{BilledLine, ChargeCategory};

    fn cell(team: &str, input: u64) -> UsageCell {
        UsageCell {
            provider: "openai".into(),
            scope: "p1".into(),
            day: NaiveDate::from_ymd_opt(2025, 1, 3).unwrap(),
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

    /// 500 billed tokens for 5.00; a logged 100 and b 300: 4.00 is split
    /// 1.00 / 3.00 by tokens, 1.00 is what the logs do not explain.
    fn month(policy: &UnattributedPolicy) -> Lineage {
        let catalog = Catalog::parse(
            r#"{"models":[{"provider":"openai","model":"gpt-4o","prices":[{"effective_from":"2024-01-01","input":"10","output":"30"}]}]}"#,
            "c.json",
        )
        .unwrap();
        let line = BilledLine {
            provider: "openai".into(),
            scope: "p1".into(),
            day: NaiveDate::from_ymd_opt(2025, 1, 3).unwrap(),
            model: Some("gpt-4o".into()),
            model_raw: Some("gpt-4o".into()),
            usage_type: Some(UsageType::Input),
            quantity: Some(Decimal::from(500)),
            cost: Decimal::new(500, 2),
            currency: "USD".into(),
            fx: None,
            category: ChargeCategory::Usage,
            correction: false,
            description: None,
            source: "bill.csv".into(),
            row: 7,
        };
        let cells = [cell("a", 100), cell("b", 300)];
        let tol = Tolerances {
            min_coverage: Decimal::ZERO,
            max_price_variance: Decimal::ONE,
        };
        let mut rec = reconcile(&[line], &cells, &catalog, tol);
        let a = attribute(&cells, &rec, policy, 2);
        let lines = std::mem::take(&mut rec.lines);
        lineage(&cells, &rec, &a, lines, 2)
    }

    /// (team, line, kind, exact, amount) of every part.
    fn parts(l: &Lineage) -> Vec<(String, Option<u32>, &'static str, String, String)> {
        l.allocations
            .iter()
            .map(|a| {
                let p = l.part(a);
                (
                    p.team.unwrap_or("-").to_string(),
                    p.invoice_line,
                    p.kind,
                    p.exact_share.to_string(),
                    p.amount.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn the_bucket_holds_what_the_logs_do_not_explain() {
        let l = month(&UnattributedPolicy::Report);
        assert_eq!(l.lines.len(), 1);
        assert_eq!(l.lines[0].source, "bill.csv:7");
        assert_eq!(l.lines[0].covered, Decimal::new(4, 0));
        assert_eq!(l.lines[0].total_weight, Decimal::from(400));
        let p = |t: &str, n, k, e: &str, a: &str| (t.to_string(), n, k, e.into(), a.into());
        assert_eq!(
            parts(&l),
            [
                p("a", Some(1), "billed", "1", "1.00"),
                p("b", Some(1), "billed", "3", "3.00"),
                p("-", None, "unattributed", "1", "1.00"),
            ]
        );
        let billed = l.part(&l.allocations[0]);
        assert_eq!(billed.weight, Some(Decimal::from(100)));
        assert_eq!(billed.weight_basis, Some("tokens"));
        assert_eq!(l.bucket().len(), 1);
        assert_eq!(l.provider_of(&l.bucket()[0]), "openai");
    }

    #[test]
    fn a_team_carries_the_rest_line_by_line() {
        let l = month(&UnattributedPolicy::Team("b".into()));
        let p = |t: &str, n, k, e: &str, a: &str| (t.to_string(), n, k, e.into(), a.into());
        // b's lines: `(all models)` · unattributed billed usage sorts first.
        assert_eq!(
            parts(&l),
            [
                p("a", Some(1), "billed", "1", "1.00"),
                p("b", Some(1), "unattributed", "1", "1.00"),
                p("b", Some(2), "billed", "3", "3.00"),
            ]
        );
        assert!(l.bucket().is_empty());
    }

    #[test]
    fn proportional_spreads_by_what_each_line_carried() {
        let l = month(&UnattributedPolicy::Proportional);
        let p = |t: &str, n, k, e: &str, a: &str| (t.to_string(), n, k, e.into(), a.into());
        assert_eq!(
            parts(&l),
            [
                p("a", Some(1), "billed", "1", "1.00"),
                p("a", Some(1), "spread", "0.25", "0.25"),
                p("b", Some(1), "billed", "3", "3.00"),
                p("b", Some(1), "spread", "0.75", "0.75"),
            ]
        );
        let spread = l.part(&l.allocations[1]);
        assert_eq!(spread.source, "unattributed:openai");
        assert_eq!(spread.billed_cost, Some(Decimal::ONE));
        assert_eq!(
            (spread.weight, spread.total_weight),
            (Some(Decimal::ONE), Some(Decimal::from(4)))
        );
    }
}
