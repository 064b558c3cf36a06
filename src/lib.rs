//! llm-chargeback: close a month of LLM spend to the cent.
//!
//! The modules follow the data, one way, in four stages and a publish:
//! [`load`] (store, ingest: all the I/O a month needs) → [`compute`]
//! (reconcile, attribute, chargeback, budget, invoice: pure) → [`render`]
//! (documents and ledgers from the view model) → [`seal`] (the manifest) →
//! [`publish`]. `money` is used by all and imports none. [`run`] is the
//! one place that prints errors and picks exit codes.

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod compute;
pub mod config;
pub mod context;
pub mod error;
pub mod fx;
pub mod load;
pub mod money;
pub mod period;
pub mod progress;
pub mod publish;
pub mod render;
pub mod scenario;
pub mod schema;
pub mod seal;
pub mod table;
pub mod text;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::exit;
use crate::load::store::Store;

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
    // A panic is reported as an error below, in words, not as Rust's
    // panic text (RUST_BACKTRACE=1 keeps that, for a bug report).
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    // `--json` turns an error, too, into the summary object on stdout.
    let json = match &cli.command {
        Command::Run(args) if args.json => Some("run"),
        Command::Validate(args) if args.json => Some("validate"),
        _ => None,
    };
    let ctx = Context::new(Store::new());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &cli.command {
        Command::Run(args) => commands::run::run(&ctx, args),
        Command::Validate(args) => commands::validate::run(&ctx, args),
        Command::Verify(args) => commands::verify::run(&ctx, args),
        Command::Amend(args) => commands::amend::run(&ctx, args),
        Command::Compare(args) => commands::compare::run(&ctx, args),
        Command::Catalog(cli::CatalogCommand::ImportLitellm(args)) => {
            commands::catalog::import_litellm(&ctx, args)
        }
        Command::Explain(args) => commands::explain::run(&ctx, args),
    }));
    match result {
        Ok(Ok(())) => exit::OK,
        Ok(Err(e)) => {
            eprint!("{}", e.report());
            // A tripped gate's summary was printed with the month's numbers.
            if let Some(command) = json
                && !matches!(e, error::Error::Gate { .. })
            {
                commands::say(&commands::summary::failure(command, &e));
            }
            e.exit_code()
        }
        Err(payload) => {
            let message = error::panic_text(payload.as_ref());
            eprint!(
                "error: internal error: {message}\nhint: this is a bug in chargeback, not in your inputs; nothing was published. Please report it with the command line (rerun with RUST_BACKTRACE=1 for where it happened)\n",
            );
            if let Some(command) = json {
                commands::say(&commands::summary::internal(command, &message));
            }
            exit::BAD_INPUT
        }
    }
}
