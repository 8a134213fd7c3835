//! Sinks: the exchange log and the alert log (JSON lines), the replay summary, and
//! the record forms other tools read (Suricata EVE, Zeek http.log).

pub mod alert_log;
pub mod eve;
pub mod exchange_log;
pub mod json;
pub mod summary;
pub mod tls;
pub mod zeek;
