//! The one integration-test binary: runs the real `chargeback` binary in
//! temporary folders, and checks invariants through the library API.

mod util;

mod cli;
mod demo;
mod mini;
mod properties;
