//! Sinks: the exchange log (JSON lines), the replay summary.

pub mod exchange_log;
pub mod summary;
