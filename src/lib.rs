//! llm-chargeback: close a month of LLM spend to the cent.
//!
//! The modules follow the data, one way:
//! `cli → config → store → ingest → reconcile → attribute → chargeback →
//! invoice → render → publish`, with `money` used by all and importing
//! none. [`run`] is the one place that prints errors and picks exit codes.

pub mod attribute;
pub mod budget;
pub mod catalog;
pub mod chargeback;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod error;
pub mod ingest;
pub mod invoice;
pub mod manifest;
pub mod money;
pub mod period;
pub mod progress;
pub mod publish;
pub mod reconcile;
pub mod render;
pub mod schema;
pub mod store;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::exit;
use crate::store::Store;

/// Parses the command line, runs it, prints any error, and returns the
/// process exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let ctx = Context::new(Store::new());
    let result = match &cli.command {
        Command::Run(args) => commands::run::run(&ctx, args),
        Command::Validate(args) => commands::validate::run(&ctx, args),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprint!("{}", e.report());
            e.exit_code()
        }
    }
}
