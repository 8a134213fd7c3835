//! Prometheus metrics: counters kept beside the pipeline, rendered into the text
//! exposition format, and served by an HTTP server on its own thread.
//!
//! The packet path never touches the server: the replay loop renders a fresh
//! exposition about once a second (wall time) into a shared buffer, and scrapes read
//! that buffer. Names follow the design contract and Prometheus conventions (one `apiwatch_`
//! prefix, base units, `_total` on counters, help on every metric). No label ever
//! carries a client address, username, key or raw path.

mod auth;
mod backfill;
mod counters;
mod process;
mod render;
mod server;
pub mod webconfig;

use std::sync::{Arc, Mutex};

pub use backfill::Backfill;
pub use counters::{ENDPOINT_SLOTS, EndpointMetrics, HttpMetrics};
pub use render::{DetectGauges, render};
pub use server::{HTTP_TO_HTTPS, WebOptions, serve};

/// What a scrape shows, as rendered text.
#[derive(Clone, Default)]
pub struct Exposition(Arc<Mutex<String>>);

impl Exposition {
    pub fn set(&self, text: String) {
        if let Ok(mut g) = self.0.lock() {
            *g = text;
        }
    }

    pub fn get(&self) -> String {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }
}
