//! Sinks: the exchange log (JSON lines), the replay summary.

pub mod alert_log;
pub mod exchange_log;
pub mod summary;
