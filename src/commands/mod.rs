//! Subcommands, one file each, over one shared pipeline: [`close::close_month`].

pub mod close;
pub mod run;
pub mod validate;

/// Writes a command's report to stdout. A reader that went away
/// (`chargeback run … | head -1`) is no failure of the run: the rest is
/// dropped and the run keeps its own exit code.
pub(crate) fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `1 exception`, `10 exceptions`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
