//! Subcommands, one file each, over one shared pipeline: [`close::close_month`].

pub mod close;
pub mod run;
pub mod validate;
