//! `journal.csv`: the month as general-ledger entries for an ERP, one
//! balanced entry per invoice — the team's expense account debited on its
//! cost centre, the platform's `[gl]` accounts credited by what the
//! invoice's lines are. Made from the view model's invoices alone: it
//! regroups their amounts and never computes or rounds one.

use crate::compute::chargeback::ChargeKind;
use crate::compute::invoice::{Invoice, MonthView, USAGE_KIND};
use crate::config::{Gl, Policy};
use crate::error::{Error, Location, Result};
use crate::money::{Decimal, format_amount, parse_amount};
use crate::schema;
use crate::table::csv_bytes;

/// The month's entries, in invoice order.
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    /// The issue date of the invoices: the entries' date.
    pub date: String,
    /// The month the entries close, for an ERP that posts by period.
    pub period: String,
    pub currency: String,
    /// Minor units of the currency: the places every amount is written with.
    pub scale: u32,
    pub entries: Vec<Entry>,
}

/// One invoice as a journal entry: its debits equal its credits.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The invoice's number, which is also the entry's id: stable when
    /// teams come and go, where a running number would shift.
    pub invoice_number: String,
    pub memo: String,
    /// The team's row first, then the platform's, in `[gl]` order.
    pub rows: Vec<Posting>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Debit,
    Credit,
}

/// One row of an entry: never zero, never negative.
#[derive(Debug, Clone, PartialEq)]
pub struct Posting {
    pub account: String,
    pub cost_center: String,
    pub side: Side,
    pub amount: Decimal,
}

impl Entry {
    /// The entry's amounts on `side`, summed.
    pub fn sum(&self, side: Side) -> Decimal {
        self.rows
            .iter()
            .filter(|r| r.side == side)
            .map(|r| r.amount)
            .sum()
    }
}

/// Which of `[gl]`'s credit accounts a line is recovered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credit {
    Platform,
    Markup,
    SharedCost,
    Adjustment,
}

impl Credit {
    /// The order an entry lists its credit rows in.
    const ORDER: [Credit; 4] = [
        Credit::Platform,
        Credit::Markup,
        Credit::SharedCost,
        Credit::Adjustment,
    ];

    /// No wildcard: a kind of charge added later does not compile until
    /// it is given an account here.
    fn of_charge(kind: ChargeKind) -> Credit {
        match kind {
            ChargeKind::Markup
            | ChargeKind::PlatformFee
            | ChargeKind::FixedFee
            | ChargeKind::OutcomeCharge
            | ChargeKind::SeatCharge => Credit::Markup,
            // Taken off the usage the platform account is credited with:
            // value-based teams pay for outcomes and seats, not at cost.
            ChargeKind::UsageOffset => Credit::Platform,
            ChargeKind::SharedCost => Credit::SharedCost,
            ChargeKind::Adjustment => Credit::Adjustment,
        }
    }

    fn account(self, gl: &Gl) -> &str {
        match self {
            Credit::Platform => &gl.platform_account,
            Credit::Markup => &gl.markup_account,
            Credit::SharedCost => gl.shared_cost_account(),
            Credit::Adjustment => gl.adjustment_account(),
        }
    }
}

/// Every charge kind, to read an invoice line's `kind` back.
const CHARGE_KINDS: [ChargeKind; 8] = [
    ChargeKind::Markup,
    ChargeKind::PlatformFee,
    ChargeKind::FixedFee,
    ChargeKind::SharedCost,
    ChargeKind::OutcomeCharge,
    ChargeKind::SeatCharge,
    ChargeKind::UsageOffset,
    ChargeKind::Adjustment,
];

/// The credit account of a line of `kind`. A kind no account is known
/// for stops the run (as an internal error, nothing published): money
/// left out of the journal would unbalance it silently.
fn credit_of(kind: &str) -> Credit {
    if kind == USAGE_KIND {
        return Credit::Platform;
    }
    let charge = CHARGE_KINDS
        .into_iter()
        .find(|k| k.as_str() == kind)
        .unwrap_or_else(|| {
            panic!("invoice line kind `{kind}` has no [gl] account (see journal::CHARGE_KINDS)")
        });
    Credit::of_charge(charge)
}

/// The journal of `view` under `policy`'s `[gl]`, none without it.
///
/// Fails when an invoiced team has no cost centre to debit: one the
/// policy does not list (seen in the logs, invoiced under the defaults).
/// The policy's own teams were checked when it was read.
pub fn post(view: &MonthView, policy: &Policy, scale: u32) -> Result<Option<Journal>> {
    let Some(gl) = &policy.gl else {
        return Ok(None);
    };
    let unplaced: Vec<&str> = view
        .invoices
        .iter()
        .filter(|i| i.cost_center.is_none())
        .map(|i| i.team.as_str())
        .collect();
    if !unplaced.is_empty() {
        return Err(without_cost_center(gl, &unplaced));
    }
    let entries = view
        .invoices
        .iter()
        .filter_map(|inv| entry(&view.period, gl, policy, inv))
        .collect();
    Ok(Some(Journal {
        date: view.issue_date.clone(),
        period: view.period.clone(),
        currency: view.currency.clone(),
        scale,
        entries,
    }))
}

fn without_cost_center(gl: &Gl, teams: &[&str]) -> Error {
    let at = gl.at.clone().unwrap_or_else(|| Location::file("[gl]"));
    let list = |f: fn(&str) -> String| teams.iter().map(|t| f(t)).collect::<Vec<_>>().join(", ");
    let (message, hint) = match teams {
        [team] => (
            format!(
                "team `{team}` is invoiced but not in [teams], so [gl] has no cost centre to debit its invoice to"
            ),
            format!("add `[teams.{team}]` with `cost_center = \"…\"`"),
        ),
        _ => (
            format!(
                "teams {} are invoiced but not in [teams], so [gl] has no cost centre to debit their invoices to",
                list(|t| format!("`{t}`"))
            ),
            format!(
                "add {} each with `cost_center = \"…\"`",
                list(|t| format!("`[teams.{t}]`"))
            ),
        ),
    };
    Error::policy(at, message).with_hint(hint)
}

/// The entry of one invoice, none when every amount on it is zero.
///
/// Each row nets the lines of its account; a negative amount is posted
/// on the other side (a negative debit is a credit), so every amount
/// written is positive and the entry still balances.
fn entry(period: &str, gl: &Gl, policy: &Policy, inv: &Invoice) -> Option<Entry> {
    let amount =
        |s: &str| parse_amount(s).expect("the view's amounts are decimals it formatted itself");
    let total = amount(&inv.total);
    // One row per distinct account: shared costs default to the
    // platform's account, adjustments to the markup account.
    let mut credits: Vec<(&str, Decimal)> = Vec::new();
    for c in Credit::ORDER {
        let account = c.account(gl);
        if !credits.iter().any(|(a, _)| *a == account) {
            credits.push((account, Decimal::ZERO));
        }
    }
    for line in &inv.lines {
        let account = credit_of(&line.kind).account(gl);
        let slot = credits
            .iter_mut()
            .find(|(a, _)| *a == account)
            .expect("every credit account has its slot");
        slot.1 += amount(&line.amount);
    }
    let credited: Decimal = credits.iter().map(|(_, v)| *v).sum();
    // chargeback.rs: a total is its lines. Were it not, the entry would
    // not balance; better no journal than a wrong one.
    assert_eq!(
        credited, total,
        "invoice `{}`: its lines add up to {credited}, its total is {total}",
        inv.invoice_number
    );
    let debit_account = policy
        .teams
        .get(&inv.team)
        .and_then(|t| t.gl_account.as_deref())
        .unwrap_or(&gl.expense_account);
    let team_cc = inv
        .cost_center
        .as_deref()
        .expect("post checked every invoice has a cost centre");
    // The issuer's cost centre is the platform's: `[gl]` names it, or
    // `[organization]` does (the policy refuses two different ones).
    let platform_cc = gl
        .cost_center
        .as_deref()
        .or(policy.organization.cost_center.as_deref())
        .unwrap_or_default();
    let rows: Vec<Posting> = std::iter::once(posting(debit_account, team_cc, Side::Debit, total))
        .chain(
            credits
                .into_iter()
                .map(|(account, v)| posting(account, platform_cc, Side::Credit, v)),
        )
        .flatten()
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(Entry {
        invoice_number: inv.invoice_number.clone(),
        memo: format!("LLM chargeback {period} · {}", inv.team_name),
        rows,
    })
}

/// A signed amount as a row: on `side` when positive, on the other side
/// when negative, no row when zero.
fn posting(account: &str, cost_center: &str, side: Side, signed: Decimal) -> Option<Posting> {
    if signed.is_zero() {
        return None;
    }
    let side = match (side, signed.is_sign_negative()) {
        (side, false) => side,
        (Side::Debit, true) => Side::Credit,
        (Side::Credit, true) => Side::Debit,
    };
    Some(Posting {
        account: account.to_string(),
        cost_center: cost_center.to_string(),
        side,
        amount: signed.abs(),
    })
}

/// `journal.csv`: every row of every entry, the side not posted empty.
pub fn journal_csv(journal: &Journal) -> Vec<u8> {
    let money = |d: Decimal| format_amount(d, journal.scale);
    let rows = journal.entries.iter().flat_map(|e| {
        e.rows.iter().map(move |r| {
            let (debit, credit) = match r.side {
                Side::Debit => (money(r.amount), String::new()),
                Side::Credit => (String::new(), money(r.amount)),
            };
            [
                e.invoice_number.clone(),
                journal.date.clone(),
                journal.period.clone(),
                r.account.clone(),
                r.cost_center.clone(),
                debit,
                credit,
                journal.currency.clone(),
                e.invoice_number.clone(),
                e.memo.clone(),
            ]
        })
    });
    csv_bytes(schema::ledger::JOURNAL, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::invoice::{BudgetView, InvoiceLine};

    const POLICY: &str = r#"
[organization]
name = "P"
[sources]
requests = ["logs/*.csv"]
catalog = "catalog.json"
[gl]
expense_account = "6105"
platform_account = "4900"
markup_account = "4910"
cost_center = "CC-PLAT"
[teams.support]
name = "Customer Support"
cost_center = "CC-4100"
gl_account = "6105-20"
[teams.search]
cost_center = "CC-4200"
"#;

    fn policy(extra_gl: &str) -> Policy {
        let text = POLICY.replace(
            "cost_center = \"CC-PLAT\"\n",
            &format!("cost_center = \"CC-PLAT\"\n{extra_gl}"),
        );
        Policy::parse(&text, "p.toml").unwrap()
    }

    fn invoice(team: &str, lines: &[(&str, &str)]) -> Invoice {
        let total: Decimal = lines
            .iter()
            .map(|(_, a)| a.parse::<Decimal>().unwrap())
            .sum();
        let s = String::new;
        Invoice {
            team: team.into(),
            team_name: format!("Team {team}"),
            cost_center: Some(format!("CC-{team}")),
            in_policy: true,
            file: team.into(),
            invoice_number: format!("CB-2025-01-{team}"),
            chargeback_model: s(),
            usage_cost: s(),
            estimated_cost: s(),
            tier: None,
            markup: s(),
            platform_fee: s(),
            fixed_fee: s(),
            shared_costs: s(),
            outcome_charges: s(),
            adjustments: s(),
            total: format_amount(total, 2),
            markup_and_fees: s(),
            tokens: 0,
            requests: 0,
            failed_requests: 0,
            failed_cost: None,
            error_rate: None,
            lines: lines
                .iter()
                .map(|(kind, amount)| InvoiceLine {
                    kind: (*kind).into(),
                    description: s(),
                    provider: s(),
                    model: s(),
                    use_case: s(),
                    tokens: None,
                    requests: None,
                    estimated: false,
                    prices: None,
                    fx: None,
                    rate: None,
                    amount: (*amount).into(),
                })
                .collect(),
            budget: BudgetView {
                status: s(),
                label: s(),
                budget: None,
                threshold: s(),
                spent: s(),
                projected: s(),
                basis: s(),
                basis_label: s(),
                used: None,
            },
            value: None,
        }
    }

    /// `(account, cost centre, debit, credit)` of each row.
    fn rows(e: &Entry) -> Vec<(String, String, String, String)> {
        e.rows
            .iter()
            .map(|r| {
                let a = format_amount(r.amount, 2);
                let (d, c) = match r.side {
                    Side::Debit => (a, String::new()),
                    Side::Credit => (String::new(), a),
                };
                (r.account.clone(), r.cost_center.clone(), d, c)
            })
            .collect()
    }

    fn row(account: &str, cc: &str, debit: &str, credit: &str) -> (String, String, String, String) {
        (account.into(), cc.into(), debit.into(), credit.into())
    }

    fn every_kind() -> Vec<(&'static str, &'static str)> {
        let mut lines = vec![(USAGE_KIND, "100.00"), (USAGE_KIND, "0.05")];
        lines.extend(
            CHARGE_KINDS
                .iter()
                .zip([
                    "20.00", "15.00", "250.00", "7.50", "3.00", "80.00", "-100.05", "-10.00",
                ])
                .map(|(k, a)| (k.as_str(), a)),
        );
        lines
    }

    #[test]
    fn every_kind_of_line_is_credited_to_its_account() {
        let p = policy("shared_cost_account = \"4920\"\nadjustment_account = \"4930\"\n");
        let gl = p.gl.as_ref().unwrap();
        let e = entry("2025-01", gl, &p, &invoice("support", &every_kind())).unwrap();
        assert_eq!(e.invoice_number, "CB-2025-01-support");
        assert_eq!(e.memo, "LLM chargeback 2025-01 · Team support");
        assert_eq!(
            rows(&e),
            // The usage offset (value-based) nets the platform's row to
            // zero, which is left out; outcomes and seats are on 4910.
            vec![
                row("6105-20", "CC-support", "365.50", ""),
                row("4910", "CC-PLAT", "", "368.00"),
                row("4920", "CC-PLAT", "", "7.50"),
                row("4930", "CC-PLAT", "10.00", ""),
            ]
        );
        assert_eq!(e.sum(Side::Debit), e.sum(Side::Credit));
    }

    #[test]
    fn the_issuer_cost_centre_is_credited_when_gl_names_none() {
        let text = POLICY
            .replace("cost_center = \"CC-PLAT\"\n", "")
            .replace("name = \"P\"\n", "name = \"P\"\ncost_center = \"CC-ORG\"\n");
        let p = Policy::parse(&text, "p.toml").unwrap();
        let gl = p.gl.as_ref().unwrap();
        let e = entry("2025-01", gl, &p, &invoice("search", &[("usage", "10.00")])).unwrap();
        assert_eq!(
            rows(&e),
            vec![
                row("6105", "CC-search", "10.00", ""),
                row("4900", "CC-ORG", "", "10.00"),
            ]
        );
    }

    #[test]
    fn accounts_left_out_share_a_row() {
        // Shared costs on the platform's account, adjustments on the
        // markup account, netted; a team without `gl_account` on the
        // expense account.
        let p = policy("");
        let gl = p.gl.as_ref().unwrap();
        let e = entry("2025-01", gl, &p, &invoice("search", &every_kind())).unwrap();
        assert_eq!(
            rows(&e),
            vec![
                row("6105", "CC-search", "365.50", ""),
                row("4900", "CC-PLAT", "", "7.50"),
                row("4910", "CC-PLAT", "", "358.00"),
            ]
        );
    }

    #[test]
    fn a_negative_amount_is_posted_on_the_other_side() {
        // A credit note larger than the month: the team is credited.
        let p = policy("adjustment_account = \"4930\"\n");
        let gl = p.gl.as_ref().unwrap();
        let inv = invoice(
            "search",
            &[(USAGE_KIND, "100.00"), ("adjustment", "-500.00")],
        );
        let e = entry("2025-01", gl, &p, &inv).unwrap();
        assert_eq!(
            rows(&e),
            vec![
                row("6105", "CC-search", "", "400.00"),
                row("4900", "CC-PLAT", "", "100.00"),
                row("4930", "CC-PLAT", "500.00", ""),
            ]
        );
        assert_eq!(e.sum(Side::Debit), e.sum(Side::Credit));
    }

    #[test]
    fn zero_amounts_post_no_row_and_an_all_zero_invoice_no_entry() {
        let p = policy("adjustment_account = \"4930\"\n");
        let gl = p.gl.as_ref().unwrap();
        let none = invoice("search", &[(USAGE_KIND, "0.00"), ("platform_fee", "0.00")]);
        assert_eq!(entry("2025-01", gl, &p, &none), None);
        assert_eq!(entry("2025-01", gl, &p, &invoice("search", &[])), None);
        // A total of zero is not an invoice of zeros.
        let netted = invoice("search", &[(USAGE_KIND, "12.00"), ("adjustment", "-12.00")]);
        let e = entry("2025-01", gl, &p, &netted).unwrap();
        assert_eq!(
            rows(&e),
            vec![
                row("4900", "CC-PLAT", "", "12.00"),
                row("4930", "CC-PLAT", "12.00", ""),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "invoice line kind `storage_charge` has no [gl] account")]
    fn a_kind_without_an_account_stops_the_run() {
        let p = policy("");
        let gl = p.gl.as_ref().unwrap();
        entry(
            "2025-01",
            gl,
            &p,
            &invoice("search", &[("storage_charge", "1.00")]),
        );
    }

    #[test]
    fn teams_without_a_cost_centre_are_named() {
        let p = policy("");
        let gl = p.gl.as_ref().unwrap();
        let e = without_cost_center(gl, &["untagged"]);
        assert_eq!(
            e.to_string(),
            "p.toml:7:1: team `untagged` is invoiced but not in [teams], so [gl] has no cost centre to debit its invoice to"
        );
        assert_eq!(
            e.hint(),
            Some("add `[teams.untagged]` with `cost_center = \"…\"`")
        );
        let e = without_cost_center(gl, &["research", "untagged"]);
        assert_eq!(
            e.to_string(),
            "p.toml:7:1: teams `research`, `untagged` are invoiced but not in [teams], so [gl] has no cost centre to debit their invoices to"
        );
        assert_eq!(
            e.hint(),
            Some("add `[teams.research]`, `[teams.untagged]` each with `cost_center = \"…\"`")
        );
        assert_eq!(e.exit_code(), 1);
    }
}
