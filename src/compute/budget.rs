//! Budgets: how each team's charges stand against its monthly budget, and
//! where a mid-month run rate will land (a closed month's figure is what
//! was spent).

use chrono::NaiveDate;
use serde::Serialize;

use crate::money::{Decimal, round_line};
use crate::period::Period;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetLevel {
    NoBudget,
    Ok,
    Warning,
    Critical,
}

impl BudgetLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetLevel::NoBudget => "no_budget",
            BudgetLevel::Ok => "ok",
            BudgetLevel::Warning => "warning",
            BudgetLevel::Critical => "critical",
        }
    }
}

/// What the month-end figure of a budget is, from how much of the month
/// the run covers: a closed month's is what was spent, not a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendBasis {
    /// The run is as of the period's last day or later: the month is closed.
    Actual,
    /// The run is as of a day inside the period: spend at the run rate.
    Projected,
    /// The run is as of a day before the period: no day to project from,
    /// so the figure is what was spent so far.
    ToDate,
}

impl SpendBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendBasis::Actual => "actual",
            SpendBasis::Projected => "projected",
            SpendBasis::ToDate => "to_date",
        }
    }

    /// The figure in words, as an invoice names it.
    pub fn label(self) -> &'static str {
        match self {
            SpendBasis::Actual => "actual spend",
            SpendBasis::Projected => "projected month-end spend",
            SpendBasis::ToDate => "spend to date",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    pub status: BudgetLevel,
    pub budget: Option<Decimal>,
    pub threshold: Decimal,
    pub spent: Decimal,
    /// Month-end spend at the run rate; equals `spent` once the month is over.
    pub projected: Decimal,
    /// Days of the month the spend covers.
    pub days_elapsed: u32,
    pub days_in_period: u32,
}

impl BudgetStatus {
    /// Whether `projected` is a projection, or what was spent.
    pub fn basis(&self) -> SpendBasis {
        if self.days_elapsed >= self.days_in_period {
            SpendBasis::Actual
        } else if self.days_elapsed == 0 {
            SpendBasis::ToDate
        } else {
            SpendBasis::Projected
        }
    }
}

/// Status of `spent` (the invoice total) as of `as_of`.
pub fn budget_status(
    spent: Decimal,
    budget: Option<Decimal>,
    threshold: Decimal,
    period: Period,
    as_of: Option<NaiveDate>,
    scale: u32,
) -> BudgetStatus {
    let days = period.days();
    let elapsed = match as_of {
        Some(d) if d < period.start() => 0,
        Some(d) if d <= period.last_day() => {
            u32::try_from((d - period.start()).num_days()).map_or(days, |n| n + 1)
        }
        _ => days,
    };
    let projected = if elapsed == 0 || elapsed == days {
        spent
    } else {
        round_line(spent * Decimal::from(days) / Decimal::from(elapsed), scale)
    };
    let status = match budget {
        None => BudgetLevel::NoBudget,
        Some(b) if projected > b => BudgetLevel::Critical,
        Some(b) if projected > b * threshold => BudgetLevel::Warning,
        Some(_) => BudgetLevel::Ok,
    };
    BudgetStatus {
        status,
        budget,
        threshold,
        spent,
        projected,
        days_elapsed: elapsed,
        days_in_period: days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn thresholds_warn_then_go_critical() {
        let p: Period = "2025-01".parse().unwrap();
        let s = |spent: &str| budget_status(d(spent), Some(d("1000")), d("0.8"), p, None, 2).status;
        assert_eq!(s("800.00"), BudgetLevel::Ok);
        assert_eq!(s("800.01"), BudgetLevel::Warning);
        assert_eq!(s("1000.00"), BudgetLevel::Warning);
        assert_eq!(s("1000.01"), BudgetLevel::Critical);
        assert_eq!(
            budget_status(d("5"), None, d("0.8"), p, None, 2).status,
            BudgetLevel::NoBudget
        );
    }

    #[test]
    fn mid_month_projects_the_run_rate() {
        let p: Period = "2025-01".parse().unwrap();
        let as_of = NaiveDate::from_ymd_opt(2025, 1, 10);
        let b = budget_status(d("400.00"), Some(d("1000")), d("0.8"), p, as_of, 2);
        assert_eq!(b.days_elapsed, 10);
        assert_eq!(b.projected, d("1240.00"));
        assert_eq!(b.status, BudgetLevel::Critical);
        assert_eq!(b.basis(), SpendBasis::Projected);
    }

    #[test]
    fn a_closed_month_is_actual_spend() {
        let p: Period = "2025-01".parse().unwrap();
        let status = |as_of: Option<NaiveDate>| {
            budget_status(d("400.00"), Some(d("1000")), d("0.8"), p, as_of, 2)
        };
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        // No `--as-of`: the issue date, after the period.
        for as_of in [None, day(2025, 1, 31), day(2025, 2, 1), day(2025, 6, 30)] {
            let b = status(as_of);
            assert_eq!(
                (b.basis(), b.projected),
                (SpendBasis::Actual, d("400.00")),
                "{as_of:?}"
            );
        }
        // The last day but one is still a projection.
        let b = status(day(2025, 1, 30));
        assert_eq!(b.basis(), SpendBasis::Projected);
        assert_eq!(b.projected, d("413.33"));
        assert_eq!(status(day(2025, 1, 1)).basis(), SpendBasis::Projected);
        let b = status(day(2024, 12, 31));
        assert_eq!((b.basis(), b.projected), (SpendBasis::ToDate, d("400.00")));
        assert_eq!(SpendBasis::Actual.label(), "actual spend");
    }
}
