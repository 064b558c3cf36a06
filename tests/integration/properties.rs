//! Invariants over random months: money is conserved to the cent, and the
//! order of input files and rows changes nothing.

use std::collections::BTreeMap;

use chargeback::catalog::{Catalog, UsageType};
use chargeback::compute::attribute::attribute;
use chargeback::compute::compute;
use chargeback::compute::journal::{Side, journal_csv};
use chargeback::compute::reconcile::{Tolerances, reconcile};
use chargeback::config::UnattributedPolicy;
use chargeback::config::{BillingFormat, Policy};
use chargeback::context::Context;
use chargeback::fx::{FxTable, Rate};
use chargeback::load::ingest::Bill;
use chargeback::load::ingest::requests::RequestLog;
use chargeback::load::ingest::{BilledLine, ChargeCategory, UsageCell};
use chargeback::load::notes::PendingNote;
use chargeback::load::store::ObjectRecord;
use chargeback::load::store::Store;
use chargeback::load::{Inputs, LoadedBill};
use chargeback::money::{Decimal, round_line};
use chrono::NaiveDate;
use proptest::prelude::*;

use crate::util::{self, repo_root};

fn catalog() -> Catalog {
    let text =
        std::fs::read_to_string(repo_root().join("fixtures/mini/model-catalog.json")).unwrap();
    Catalog::parse(&text, "catalog").unwrap()
}

const MODELS: [(&str, &str); 4] = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-sonnet"),
    ("anthropic", "claude-3-5-haiku"),
];

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, d).unwrap()
}

fn cell_strategy() -> impl Strategy<Value = UsageCell> {
    (
        0..MODELS.len(),
        0..2usize,
        1..4u32,
        0..6usize,
        0..2usize,
        prop::array::uniform4(0u64..5_000_000),
        0u64..4,
    )
        .prop_map(|(m, scope, d, team, uc, tokens, failed)| {
            // Some of the cell's requests failed, with their share of its
            // tokens (a quarter each).
            let requests = 1 + tokens[0] % 7;
            let errors = failed.min(requests);
            UsageCell {
                provider: MODELS[m].0.into(),
                scope: ["s1", "s2"][scope].into(),
                day: day(d),
                model: MODELS[m].1.into(),
                team: format!("team-{team}"),
                use_case: ["chat", "batch"][uc].into(),
                tokens,
                requests,
                errors,
                error_tokens: tokens.map(|t| t / 4 * errors.min(4)),
                // Some of its tokens were counted by a tokenizer.
                estimated_tokens: [tokens[0] / 2, 0, 0, tokens[3] / 3],
            }
        })
}

fn line_strategy() -> impl Strategy<Value = BilledLine> {
    (
        0..MODELS.len(),
        prop::option::of(0..2usize),
        1..4u32,
        prop::option::of(0..4usize),
        prop::option::of(0u64..8_000_000),
        (0i64..50_000_000_000, 0u32..10),
        any::<bool>(),
    )
        .prop_map(|(m, scope, d, ut, qty, (mantissa, scale), coarse)| {
            let usage_type = ut.map(|u| UsageType::ALL[u]);
            BilledLine {
                provider: MODELS[m].0.into(),
                scope: scope
                    .map(|s| ["s1", "s2"][s].to_string())
                    .unwrap_or_default(),
                day: day(d),
                model: (!coarse).then(|| MODELS[m].1.to_string()),
                model_raw: (!coarse).then(|| MODELS[m].1.to_string()),
                usage_type,
                quantity: usage_type.and(qty).map(Decimal::from),
                cost: Decimal::new(mantissa, scale),
                currency: "USD".into(),
                fx: None,
                category: ChargeCategory::Usage,
                correction: false,
                description: None,
                source: "bill".into(),
                row: 1,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Σ team usage costs + unattributed = billed total + estimated total,
    /// to the cent, and every team is within a cent of its exact share.
    #[test]
    fn money_is_conserved(
        cells in prop::collection::vec(cell_strategy(), 0..40),
        lines in prop::collection::vec(line_strategy(), 0..30),
        anthropic_billed in any::<bool>(),
        policy in 0..4usize,
    ) {
        let cat = catalog();
        // Sometimes a provider sends no bill: its usage is estimated.
        let lines: Vec<BilledLine> = lines
            .into_iter()
            .filter(|l| anthropic_billed || l.provider != "anthropic")
            .collect();
        let tol = Tolerances { min_coverage: Decimal::new(98, 2), max_price_variance: Decimal::new(5, 2) };
        let rec = reconcile(&lines, &cells, &cat, tol);
        let policy = [
            UnattributedPolicy::Report,
            UnattributedPolicy::Proportional,
            UnattributedPolicy::Team("team-0".into()),
            UnattributedPolicy::Fixed(
                [("team-0".to_string(), Decimal::new(25, 2)), ("team-1".to_string(), Decimal::new(75, 2))].into(),
            ),
        ][policy].clone();
        let a = attribute(&cells, &rec, &policy, 2);

        let billed_exact: Decimal = lines.iter().map(|l| l.cost).sum();
        prop_assert_eq!(a.billed_total, round_line(billed_exact, 2));
        let teams: Decimal = a.teams.values().map(|t| t.usage_cost).sum();
        prop_assert_eq!(teams + a.unattributed_total, a.billed_total + a.estimated_total);
        prop_assert_eq!(a.unattributed.values().copied().sum::<Decimal>(), a.unattributed_total);
        let cent = Decimal::new(1, 2);
        for t in a.teams.values() {
            prop_assert!((t.usage_cost - t.exact).abs() < cent, "{}: {} vs exact {}", t.team, t.usage_cost, t.exact);
            prop_assert_eq!(t.lines.iter().map(|l| l.amount).sum::<Decimal>(), t.usage_cost);
            for l in &t.lines {
                prop_assert!((l.amount - l.exact).abs() < cent);
                prop_assert_eq!(l.amount.scale(), 2);
            }
        }
        if policy == UnattributedPolicy::Report {
            let exact_unattributed: Decimal = rec.unattributed.values().copied().sum();
            prop_assert!((a.unattributed_total - exact_unattributed).abs() < cent);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// The same invariants through the pure stage the binary runs,
    /// `compute`, under each chargeback model: the invoices and the
    /// unattributed bucket add up to the bill to the cent, and every
    /// invoice's total is its usage cost and its lines, whatever kinds.
    #[test]
    fn compute_conserves_money_under_every_model(
        cells in prop::collection::vec(cell_strategy(), 0..40),
        lines in prop::collection::vec(line_strategy(), 0..30),
        model in 0..4usize,
        fixed_fee in prop::option::of(0i64..100_000),
        pool in prop::option::of((0i64..10_000_000, 0..3usize, any::<bool>())),
        adjustment in prop::option::of(-100_000i64..100_000),
        // Value-based: outcomes by (team, outcome) from the logs and from an
        // outcome source, distinct users per team, stated seats.
        logged in prop::collection::btree_map((0..6usize, 0..3usize), 0u64..1_000_000, 0..8),
        exported in prop::collection::btree_map((0..6usize, 0..3usize), 0u64..1_000_000, 0..8),
        users in prop::collection::btree_map(0..6usize, 1u64..5_000, 0..6),
        seats in prop::option::of(0u64..10_000),
        fx in prop::option::of((1i64..1_000_000, 3u32..10)),
    ) {
        // `value_based` is per team (never the default): the policy teams
        // take it, with a rate per outcome and a seat rate, and the teams
        // only in the logs stay tiered.
        let value = model == 3;
        let model = ["pass_through", "cost_plus", "tiered", "tiered"][model];
        let terms = if value {
            let seats = seats.map(|n| format!("seats = {n}\n")).unwrap_or_default();
            format!(
                "model = \"value_based\"\nseat_rate = \"1.995\"\n{seats}[teams.TEAM.outcome_rates]\nresolved = \"0.505\"\ndraft = \"0.0013\"\n"
            )
        } else {
            String::new()
        };
        let fee = fixed_fee.map(|f| format!("fixed_fee = \"{}\"\n", Decimal::new(f, 2))).unwrap_or_default();
        // A pool of random cents (sometimes of a tenth of a cent) split every
        // way, and a credit or charge.
        let mut extra = String::new();
        if let Some((cents, split, subset)) = pool {
            let split = ["even", "proportional", "fixed"][split];
            let weights = if split == "fixed" { "weights = { team-0 = \"0.3\", team-1 = \"0.7\" }\n" } else { "" };
            let teams = if subset || split == "fixed" { "teams = [\"team-0\", \"team-1\"]\n" } else { "" };
            extra.push_str(&format!(
                "[[shared_costs]]\nname = \"Pool\"\namount = \"{}\"\nsplit = \"{split}\"\n{teams}{weights}",
                Decimal::new(cents, 3)
            ));
        }
        if let Some(a) = adjustment.filter(|a| *a != 0) {
            extra.push_str(&format!(
                "[[adjustments]]\nteam = \"team-1\"\namount = \"{}\"\nreason = \"Credit\"\n",
                Decimal::new(a, 2)
            ));
        }
        let policy = Policy::parse(
            &format!(
                "[organization]\nname = \"P\"\n[sources]\nrequests = [\"logs/*.csv\"]\ncatalog = \"catalog.json\"\n\
                 [chargeback]\nmodel = \"{model}\"\nmarkup = \"0.125\"\n{fee}\n[teams.team-0]\nname = \"Zero\"\n{}[teams.team-1]\n{}{extra}",
                terms.replace("TEAM", "team-0"),
                terms.replace("TEAM", "team-1"),
            ),
            "p.toml",
        )
        .unwrap();
        // Sometimes the bill is in euros, at a random rate (up to 1,000):
        // each line converted by the loader's own conversion, once.
        let rate = fx.map(|(mantissa, scale)| Decimal::new(mantissa, scale));
        let mut lines = lines;
        if let Some(rate) = rate {
            let table = FxTable::new("USD", [Rate { from: "EUR".into(), rate, effective_from: day(1) }]);
            for l in &mut lines {
                let (usd, converted) = table.convert("EUR", l.day, l.cost).unwrap();
                l.cost = usd;
                l.fx = converted.map(Box::new);
            }
        }
        let billed_by_line: Decimal = lines
            .iter()
            .map(|l| l.fx.as_ref().map_or(l.cost, |c| round_line(c.cost * c.rate.rate, 2)))
            .sum();
        let mut inputs = month_inputs(cells, lines, Vec::new());
        let outcome = |(t, o): (usize, usize)| (format!("team-{t}"), ["resolved", "draft", "unrated"][o].to_string());
        inputs.requests.outcomes = logged.into_iter().map(|(k, n)| (outcome(k), n)).collect();
        inputs.outcomes.counts = exported.into_iter().map(|(k, n)| (outcome(k), n)).collect();
        inputs.requests.users = users.into_iter().map(|(t, n)| (format!("team-{t}"), n)).collect();
        let month = compute(&inputs, &policy, None).unwrap();
        let m = &month.view;
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        // The bill is what its lines came to, each converted and rounded once.
        if rate.is_some() {
            prop_assert_eq!(d(&m.billed_total), billed_by_line);
        }
        for l in m.invoices.iter().flat_map(|i| &i.lines) {
            match (&l.fx, rate) {
                (Some(fx), Some(r)) => {
                    prop_assert!(!l.estimated, "{:?}", l);
                    prop_assert_eq!(fx, &format!("converted from EUR at {r} (rate of 2025-01-01)"));
                }
                (Some(fx), None) => prop_assert!(false, "a rate in a month of dollars: {}", fx),
                (None, _) => {}
            }
        }
        let usage: Decimal = m.invoices.iter().map(|i| d(&i.usage_cost)).sum();
        prop_assert_eq!(usage + d(&m.unattributed), d(&m.billed_total) + d(&m.estimated_total));
        prop_assert_eq!(d(&m.usage_total), usage + d(&m.unattributed));
        for inv in &m.invoices {
            let lines: Decimal = inv.lines.iter().map(|l| d(&l.amount)).sum();
            prop_assert_eq!(lines, d(&inv.total), "{}", inv.team);
            prop_assert_eq!(d(&inv.usage_cost) + d(&inv.markup_and_fees), d(&inv.total));
        }
        // What failed requests cost is a part of the team's usage: never
        // negative, never more than it (a cent of rounding aside).
        for inv in &m.invoices {
            if let Some(f) = &inv.failed_cost {
                prop_assert!(d(f) >= Decimal::ZERO, "{}: {}", inv.team, f);
                prop_assert!(d(f) <= d(&inv.usage_cost) + Decimal::new(1, 2), "{}: {} of {}", inv.team, f, inv.usage_cost);
            }
        }
        // Insights: what estimated tokens carry is a part of the usage the
        // cells were given (a cent of rounding aside); a saving is never
        // negative and never more than what it would save on.
        let ins = &month.insights;
        let e = &ins.estimated_tokens;
        prop_assert!(e.estimated_tokens <= e.tokens);
        prop_assert!(d(&e.cost) >= Decimal::ZERO);
        prop_assert!(d(&e.cost) <= d(&m.attributed_total) + d(&m.estimated_total) + Decimal::new(1, 2), "{} of {}", e.cost, m.attributed_total);
        for t in &ins.model_sprawl.tiers {
            prop_assert!(d(&t.saving) >= Decimal::ZERO, "{:?}", t);
            prop_assert!(d(&t.saving) <= d(&t.catalog_cost), "{:?}", t);
            prop_assert_eq!(d(&t.saving), (d(&t.catalog_cost) - d(&t.cheapest_cost)).max(Decimal::ZERO), "{:?}", t);
        }
        for t in &ins.failed_requests.teams {
            prop_assert!(t.failed_requests <= t.requests, "{:?}", t);
        }
        let charged: Decimal = m.invoices.iter().map(|i| d(&i.total)).sum();
        prop_assert_eq!(charged, d(&m.charged_total));
        // Fixed fees are due from every policy team, with usage or not.
        prop_assert!(m.invoices.iter().any(|i| i.team == "team-0"));
        // A pool's lines add up to the pool, to the cent.
        if let Some((cents, _, _)) = pool {
            let shared: Decimal = m.invoices.iter().map(|i| d(&i.shared_costs)).sum();
            prop_assert_eq!(shared, round_line(Decimal::new(cents, 3), 2));
        }
        if let Some(a) = adjustment.filter(|a| *a != 0) {
            let team = m.invoices.iter().find(|i| i.team == "team-1").unwrap();
            prop_assert_eq!(d(&team.adjustments), Decimal::new(a, 2));
        }
        // A value-based team is charged its outcomes and seats, not its
        // usage: the offset takes the usage lines back exactly, and the
        // value view adds up to its lines.
        for inv in m.invoices.iter().filter(|i| i.chargeback_model == "value-based") {
            let kind = |k: &str| -> Decimal {
                inv.lines.iter().filter(|l| l.kind == k).map(|l| d(&l.amount)).sum()
            };
            prop_assert_eq!(kind("usage") + kind("usage_offset"), Decimal::ZERO);
            let v = inv.value.as_ref().unwrap();
            prop_assert_eq!(d(&v.value_charges), kind("outcome_charge") + kind("seat_charge"));
            prop_assert_eq!(d(&v.margin), d(&v.value_charges) - d(&inv.usage_cost));
            prop_assert_eq!(d(&inv.total), d(&v.value_charges) + kind("fixed_fee") + kind("shared_cost") + kind("adjustment"));
            // Every rate has its line, seen or not.
            prop_assert_eq!(inv.lines.iter().filter(|l| l.kind == "outcome_charge").count(), 2);
        }
        prop_assert_eq!(m.invoices.iter().any(|i| i.value.is_some()), value);
        // An outcome no rate prices is an exception, never a silent zero.
        let unpriced = month.exceptions.iter().filter(|e| e.kind.as_str() == "outcome_without_rate").count();
        let counted: std::collections::BTreeSet<&(String, String)> =
            inputs.requests.outcomes.keys().chain(inputs.outcomes.counts.keys()).collect();
        let priced = counted
            .iter()
            .filter(|(t, o)| value && (t == "team-0" || t == "team-1") && o != "unrated")
            .count();
        prop_assert_eq!(unpriced, counted.len() - priced);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// The lineage of `compute` under every unattributed policy: the parts
    /// of each invoice usage line add up to its exact cost and, rounded, to
    /// its amount; the bucket's parts to the unattributed amount; all parts
    /// to billed + estimated.
    #[test]
    fn allocations_add_up_to_every_line(
        cells in prop::collection::vec(cell_strategy(), 0..40),
        lines in prop::collection::vec(line_strategy(), 0..30),
        anthropic_billed in any::<bool>(),
        unattributed in 0..3usize,
    ) {
        let lines: Vec<BilledLine> = lines
            .into_iter()
            .filter(|l| anthropic_billed || l.provider != "anthropic")
            .collect();
        let unattributed = ["report", "proportional", "team:team-0"][unattributed];
        let policy = Policy::parse(
            &format!(
                "[organization]\nname = \"P\"\n[sources]\nrequests = [\"logs/*.csv\"]\ncatalog = \"catalog.json\"\n\
                 [reconciliation]\nunattributed = \"{unattributed}\"\n[teams.team-0]\nname = \"Zero\"\n"
            ),
            "p.toml",
        )
        .unwrap();
        let record = |url: &str| ObjectRecord { url: url.into(), size: 0, etag: None, version: None, sha256: String::new() };
        let inputs = Inputs {
            period: "2025-01".parse().unwrap(),
            catalog: catalog(),
            catalog_record: record("catalog.json"),
            request_sources: Vec::new(),
            requests: RequestLog { cells, ..RequestLog::default() },
            bills: vec![LoadedBill {
                url: "bill.csv".into(),
                format: BillingFormat::Focus,
                bill: Bill { rows_read: lines.len() as u64, lines, ..Bill::default() },
            }],
            outcome_sources: Vec::new(),
            outcomes: Default::default(),
            records: Vec::new(),
            notes: Vec::new(),
        };
        let month = compute(&inputs, &policy, None).unwrap();
        let lineage = &month.lineage;
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let mut listed = 0;
        for inv in &month.view.invoices {
            for (k, l) in inv.lines.iter().enumerate().filter(|(_, l)| l.kind == "usage") {
                let t = lineage.target(&inv.team, k as u32).expect("every usage line is a target");
                let target = &lineage.targets[t as usize];
                prop_assert_eq!(target.amount, d(&l.amount));
                let parts = lineage.parts_of(t);
                let exact: Decimal = parts.iter().map(|a| a.exact).sum();
                let amount: Decimal = parts.iter().map(|a| a.amount).sum();
                prop_assert_eq!(exact, target.exact, "{} line {}", inv.team, k + 1);
                prop_assert_eq!(amount, target.amount, "{} line {}", inv.team, k + 1);
                let cent = Decimal::new(1, 2);
                for a in parts {
                    prop_assert!((a.amount - a.exact).abs() < cent + cent, "{:?}", a);
                }
                listed += parts.len();
            }
        }
        let bucket: Decimal = lineage.bucket().iter().map(|a| a.amount).sum();
        prop_assert_eq!(bucket, d(&month.view.unattributed));
        prop_assert_eq!(listed + lineage.bucket().len(), lineage.allocations.len());
        let all: Decimal = lineage.allocations.iter().map(|a| a.amount).sum();
        prop_assert_eq!(all, d(&month.view.billed_total) + d(&month.view.estimated_total));
        // Writing them never fails, whatever the month.
        let bytes = chargeback::render::allocations::allocations_parquet(&month);
        prop_assert!(bytes.starts_with(b"PAR1"));
    }
}

/// A month in memory: the logs' cells, one FOCUS bill of `lines`, and the
/// notes of earlier months its invoices carry.
fn month_inputs(cells: Vec<UsageCell>, lines: Vec<BilledLine>, notes: Vec<PendingNote>) -> Inputs {
    let record = |url: &str| ObjectRecord {
        url: url.into(),
        size: 0,
        etag: None,
        version: None,
        sha256: String::new(),
    };
    Inputs {
        period: "2025-01".parse().unwrap(),
        catalog: catalog(),
        catalog_record: record("catalog.json"),
        request_sources: Vec::new(),
        requests: RequestLog {
            cells,
            ..RequestLog::default()
        },
        bills: vec![LoadedBill {
            url: "bill.csv".into(),
            format: BillingFormat::Focus,
            bill: Bill {
                rows_read: lines.len() as u64,
                lines,
                ..Bill::default()
            },
        }],
        outcome_sources: Vec::new(),
        outcomes: Default::default(),
        records: Vec::new(),
        notes,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// With `[gl]`, every entry of `journal.csv` balances, whatever the
    /// model, the fees and the credit and debit notes carried (negative
    /// totals among them): the team's rows net to its invoice's total,
    /// each platform account's to the lines that belong on it, and every
    /// amount written is positive.
    #[test]
    fn every_journal_entry_balances(
        cells in prop::collection::vec(cell_strategy(), 0..40),
        lines in prop::collection::vec(line_strategy(), 0..30),
        model in 0..3usize,
        fixed_fee in prop::option::of(0i64..100_000),
        notes in prop::collection::vec((0..6usize, -200_000i64..200_000), 0..6),
        accounts in 0..3usize,
    ) {
        let model = ["pass_through", "cost_plus", "tiered"][model];
        let fee = fixed_fee.map(|f| format!("fixed_fee = \"{}\"\n", Decimal::new(f, 2))).unwrap_or_default();
        // Shared costs and adjustments on their own accounts, on the
        // defaults, or adjustments on the platform's account.
        let (extra, shared, adjustment) = [
            ("shared_cost_account = \"4920\"\nadjustment_account = \"4930\"\n", "4920", "4930"),
            ("", "4900", "4910"),
            ("adjustment_account = \"4900\"\n", "4900", "4900"),
        ][accounts];
        let teams: String = (0..6)
            .map(|n| {
                let account = if n == 1 { "gl_account = \"6105-1\"\n" } else { "" };
                format!("[teams.team-{n}]\ncost_center = \"CC-team-{n}\"\n{account}")
            })
            .collect();
        let policy = Policy::parse(
            &format!(
                "[organization]\nname = \"P\"\n[sources]\nrequests = [\"logs/*.csv\"]\ncatalog = \"catalog.json\"\n\
                 [chargeback]\nmodel = \"{model}\"\nmarkup = \"0.125\"\n{fee}\n\
                 [gl]\nexpense_account = \"6105\"\nplatform_account = \"4900\"\nmarkup_account = \"4910\"\ncost_center = \"CC-PLAT\"\n{extra}\n{teams}"
            ),
            "p.toml",
        )
        .unwrap();
        let notes = notes
            .into_iter()
            .enumerate()
            .map(|(i, (team, cents))| PendingNote {
                period: "2024-12".into(),
                team: format!("team-{team}"),
                note_number: format!("N-{i}"),
                original_invoice: None,
                amount: Decimal::new(cents, 2),
                reason: "re-rated".into(),
                source: "notes.json".into(),
            })
            .collect();
        let inputs = month_inputs(cells, lines, notes);
        let month = compute(&inputs, &policy, None).unwrap();
        let journal = month.journal.as_ref().expect("[gl] writes a journal");
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        // The account each kind of line belongs on, spelled out here
        // independently of the journal's own mapping.
        let account_of = |kind: &str| match kind {
            "usage" => "4900",
            "markup" | "platform_fee" | "fixed_fee" | "outcome_charge" => "4910",
            "shared_cost" => shared,
            "adjustment" => adjustment,
            other => panic!("no account for kind `{other}`"),
        };
        let mut entries = journal.entries.iter();
        let mut journaled = Decimal::ZERO;
        for inv in &month.view.invoices {
            if inv.lines.iter().all(|l| d(&l.amount).is_zero()) {
                continue;
            }
            let e = entries.next().expect("an entry for every invoice with an amount");
            prop_assert_eq!(&e.invoice_number, &inv.invoice_number);
            prop_assert_eq!(e.sum(Side::Debit), e.sum(Side::Credit), "{}", inv.invoice_number);
            let mut team = Decimal::ZERO;
            let mut platform: BTreeMap<&str, Decimal> = BTreeMap::new();
            for r in &e.rows {
                prop_assert!(r.amount > Decimal::ZERO && r.amount.scale() == 2, "{:?}", r);
                let signed = if r.side == Side::Debit { r.amount } else { -r.amount };
                if r.cost_center == "CC-PLAT" {
                    *platform.entry(r.account.as_str()).or_default() -= signed;
                } else {
                    prop_assert_eq!(r.cost_center.as_str(), inv.cost_center.as_deref().unwrap());
                    prop_assert_eq!(r.account.as_str(), if inv.team == "team-1" { "6105-1" } else { "6105" });
                    team += signed;
                }
            }
            prop_assert_eq!(team, d(&inv.total), "{}", inv.invoice_number);
            let mut expected: BTreeMap<&str, Decimal> = BTreeMap::new();
            for l in &inv.lines {
                *expected.entry(account_of(&l.kind)).or_default() += d(&l.amount);
            }
            expected.retain(|_, v| !v.is_zero());
            prop_assert_eq!(platform, expected, "{}", inv.invoice_number);
            journaled += team;
        }
        prop_assert!(entries.next().is_none(), "no entry without an invoice");
        prop_assert_eq!(journaled, d(&month.view.charged_total));

        // The file says the same: its debit and credit columns add up alike.
        let bytes = journal_csv(journal);
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let (mut debits, mut credits) = (Decimal::ZERO, Decimal::ZERO);
        for r in reader.records() {
            let r = r.unwrap();
            let amount = |s: &str| if s.is_empty() { Decimal::ZERO } else { d(s) };
            debits += amount(&r[5]);
            credits += amount(&r[6]);
        }
        prop_assert_eq!(debits, credits);
        prop_assert_eq!(debits, journal.entries.iter().map(|e| e.sum(Side::Debit)).sum::<Decimal>());
    }
}

/// A month as CSV text in memory: rows, and a bill for the openai part.
fn month_files(rows: &[(u32, usize, usize, u64, u64)]) -> (Vec<String>, String) {
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, &(d, team, m, inp, out))| {
            // Conversations across days and teams, and every spelling of
            // the estimated flag.
            let flag = ["true", "0", "yes", "", "NULL", "No"][i % 6];
            format!(
                "r{i},2025-01-{d:02}T12:{:02}:00Z,{},{},s1,team-{team},chat,{inp},0,0,{out},ok,{flag},conv-{}",
                i % 60,
                MODELS[m].0,
                MODELS[m].1,
                i % 4
            )
        })
        .collect();
    let mut bill = String::from(
        "BilledCost,BillingCurrency,ChargePeriodStart,ChargeCategory,ProviderName,SubAccountId,ConsumedQuantity,ConsumedUnit,x_Model,x_UsageType\n",
    );
    let mut tokens: BTreeMap<(u32, usize), u64> = BTreeMap::new();
    for &(d, _, m, inp, _) in rows {
        if MODELS[m].0 == "openai" {
            *tokens.entry((d, m)).or_default() += inp;
        }
    }
    for ((d, m), t) in tokens {
        // Bill 3% more than logged, at a price that does not divide evenly.
        let q = t + t * 3 / 100;
        bill.push_str(&format!(
            "{},USD,2025-01-{d:02}T00:00:00Z,Usage,OpenAI,s1,{q},Tokens,{},input\n",
            Decimal::from(q) * Decimal::new(3333337, 12),
            MODELS[m].1
        ));
    }
    (lines, bill)
}

fn close_in_memory(
    files: &[Vec<String>],
    listing_order: &[usize],
    bill: &str,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    const HEADER: &str = "request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status,tokens_estimated,conversation_id";
    let store = Store::new();
    for (i, rows) in files.iter().enumerate() {
        store.put_memory(
            &format!("logs/part-{i}.csv"),
            format!("{HEADER}\n{}\n", rows.join("\n")).into_bytes(),
        );
    }
    store.put_memory("bill/focus.csv", bill.as_bytes().to_vec());
    store.put_memory(
        "catalog.json",
        std::fs::read(repo_root().join("fixtures/mini/model-catalog.json")).unwrap(),
    );
    let requests: Vec<String> = listing_order
        .iter()
        .map(|i| format!("\"memory://logs/part-{i}.csv\""))
        .collect();
    let policy = format!(
        "[organization]\nname = \"P\"\n[sources]\nrequests = [{}]\nbilling = [{{ url = \"memory://bill/focus.csv\", format = \"focus\" }}]\ncatalog = \"memory://catalog.json\"\n",
        requests.join(", ")
    );
    store.put_memory("policy.toml", policy.into_bytes());
    let ctx = Context::new(store);
    let closed = util::close_in_memory(&ctx, "2025-01").outputs;
    (
        closed.get("invoices.json").unwrap().to_vec(),
        closed.get("ledger.csv").unwrap().to_vec(),
        closed.get("insights.json").unwrap().to_vec(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The same rows, in other files, listed in another order, with exact
    /// duplicates anywhere: the same invoices and insights, byte for byte.
    #[test]
    fn file_and_row_order_change_nothing(
        rows in prop::collection::vec((1..6u32, 0..4usize, 0..MODELS.len(), 0u64..2_000_000, 0u64..500_000), 1..60),
        dup_every in 2..9usize,
        seed in any::<u64>(),
    ) {
        let (lines, bill) = month_files(&rows);
        let mut with_dups = lines.clone();
        with_dups.extend(lines.iter().step_by(dup_every).cloned());
        // Layout A: one file, in order. Layout B: three files, rows dealt
        // out by a seeded shuffle, listed backwards.
        let a = close_in_memory(&[with_dups.clone()], &[0], &bill);
        let mut shuffled = with_dups.clone();
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut parts = vec![Vec::new(), Vec::new(), Vec::new()];
        for (i, r) in shuffled.into_iter().enumerate() {
            parts[i % 3].push(r);
        }
        let parts: Vec<Vec<String>> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let order: Vec<usize> = (0..parts.len()).rev().collect();
        let b = close_in_memory(&parts, &order, &bill);
        prop_assert_eq!(String::from_utf8(a.0).unwrap(), String::from_utf8(b.0).unwrap());
        prop_assert_eq!(a.1, b.1);
        prop_assert_eq!(String::from_utf8(a.2).unwrap(), String::from_utf8(b.2).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// `compare`'s month is `compute`'s: with no change it is the month
    /// as run, byte for byte; under a random move, cache rate and plan it
    /// still ties — Σ usage + unattributed = billed + estimated — and every
    /// invoice totals its lines.
    #[test]
    fn a_scenario_month_conserves_money(
        cells in prop::collection::vec(cell_strategy(), 0..30),
        lines in prop::collection::vec(line_strategy(), 0..20),
        moved in prop::option::of((0..6usize, 0..MODELS.len(), 0..MODELS.len())),
        cache in prop::option::of((prop::option::of(0..6usize), 0u32..=100)),
        planned in prop::option::of((0..MODELS.len(), prop::array::uniform4(0u64..50_000_000))),
        model in 0..3usize,
    ) {
        use chargeback::compute::compute_with;
        use chargeback::compute::whatif::{CacheAt, Changes, ModelRef, MoveTo, Planned};
        let model = ["pass_through", "cost_plus", "tiered"][model];
        let policy = Policy::parse(
            &format!(
                "[organization]\nname = \"P\"\n[sources]\nrequests = [\"logs/*.csv\"]\ncatalog = \"catalog.json\"\n\
                 [chargeback]\nmodel = \"{model}\"\nmarkup = \"0.125\"\nfixed_fee = \"10.00\"\n[teams.team-0]\nname = \"Zero\"\n"
            ),
            "p.toml",
        )
        .unwrap();
        let inputs = month_inputs(cells, lines, Vec::new());
        let entry = |m: usize| {
            inputs.catalog.resolve(MODELS[m].0, MODELS[m].1).unwrap().clone()
        };
        let same = compute_with(&inputs, &policy, None, Some(&Changes::default())).unwrap();
        let run = compute(&inputs, &policy, None).unwrap();
        prop_assert_eq!(
            serde_json::to_string(&same.view).unwrap(),
            serde_json::to_string(&run.view).unwrap()
        );
        let mut changes = Changes::default();
        if let Some((team, from, to)) = moved {
            changes.moves.push(MoveTo {
                team: format!("team-{team}"),
                use_case: None,
                from: ModelRef::Catalog(entry(from)),
                to: entry(to),
            });
        }
        if let Some((team, pct)) = cache {
            changes.caches.push(CacheAt {
                team: team.map(|t| format!("team-{t}")),
                model: None,
                hit_rate: Decimal::new(i64::from(pct), 2),
            });
        }
        if let Some((m, tokens)) = planned
            && tokens.iter().any(|t| *t > 0)
        {
            changes.plans.push(Planned {
                team: "team-new".into(),
                use_case: "chat".into(),
                model: entry(m),
                tokens,
                requests: 1,
            });
        }
        let month = compute_with(&inputs, &policy, None, Some(&changes)).unwrap();
        let m = &month.view;
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let usage: Decimal = m.invoices.iter().map(|i| d(&i.usage_cost)).sum();
        prop_assert_eq!(usage + d(&m.unattributed), d(&m.billed_total) + d(&m.estimated_total));
        for inv in &m.invoices {
            let lines: Decimal = inv.lines.iter().map(|l| d(&l.amount)).sum();
            prop_assert_eq!(lines, d(&inv.total), "{}", inv.team);
        }
        let charged: Decimal = m.invoices.iter().map(|i| d(&i.total)).sum();
        prop_assert_eq!(charged, d(&m.charged_total));
        // The unattributed cost is the bill's, whatever the scenario moves
        // (its rounding may take or give the cent the parties share).
        prop_assert!((d(&m.unattributed) - d(&run.view.unattributed)).abs() <= Decimal::new(1, 2));
    }
}
