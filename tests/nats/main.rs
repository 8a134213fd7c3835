//! Beyond one machine (issue #27), with a real nats-server (JetStream, loopback or a
//! network namespace of the test's own, temporary storage):
//! - sharding.rs: one sensor and two detectors write exactly the alerts of one
//!   process on every labelled capture, with no secret in the stream; two sensors
//!   split by subnet; a detector killed and restarted;
//! - security.rs: TLS with client certificates and NKeys;
//! - outage.rs: a server stopped for 10 s mid-capture; a live sensor's drop path.

#[path = "../common/mod.rs"]
mod common;
mod outage;
mod security;
mod sharding;
mod support;
