//! Stage one: all the I/O a month needs — policy, catalog, listing,
//! request logs, bills, usage reports and what they quarantined — and
//! nothing else.

pub mod ingest;
pub mod store;
