//! How counts read in reports, exceptions and messages.

/// `1 exception`, `10 exceptions`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
