//! The one integration-test binary: runs the real `chargeback` binary in
//! temporary folders, and checks invariants through the library API.

mod browser;
mod util;

mod amend;
mod catalog;
mod cli;
mod compare;
mod demo;
mod documents;
mod explain;
mod formats_bills;
mod formats_focus;
mod formats_logs;
mod formats_mixed;
mod fuzz;
mod fx;
mod insights;
mod journal;
mod mini;
mod panel;
mod pdf;
mod policy;
mod policy_full;
mod properties;
mod reference;
mod s3;
mod scale;
#[cfg(feature = "spark")]
mod spark;
mod value;
mod verify;
mod wild;
