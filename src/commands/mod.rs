//! Subcommands, one file each, over the stages of [`crate::load`],
//! [`crate::compute`], [`crate::render`] and [`crate::seal`].

pub mod amend;
pub mod catalog;
pub mod compare;
pub mod explain;
pub mod run;
pub mod summary;
pub mod validate;
pub mod verify;

/// Writes a command's report to stdout. A reader that went away
/// (`chargeback run … | head -1`) is no failure of the run: the rest is
/// dropped and the run keeps its own exit code.
pub(crate) fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
