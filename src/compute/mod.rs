//! Stage two, pure: reconcile the bill with the logs, attribute every
//! billed cent to a team, charge each team under its terms, check budgets
//! and build the view model. No store, no clock.

pub mod attribute;
pub mod budget;
pub mod chargeback;
pub mod invoice;
pub mod reconcile;
pub mod refine;
