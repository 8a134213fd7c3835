//! apiwatch: a passive API-traffic sensor. The modules follow the data path:
//! capture → decode → flow (TCP reassembly) → http → identity → detect → export.
//! See DESIGN.md for the architecture and the output contracts.

pub mod capture;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod decode;
pub mod detect;
pub mod durable;
pub mod export;
pub mod flow;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod jsonscan;
pub mod logging;
pub mod lru;
pub mod metrics;
pub mod nats;
pub mod pipeline;
pub mod posture;
pub mod privileges;
pub mod progress;
pub mod redact;
pub mod routes;
pub mod sensitive;
pub mod sensor;
pub mod signals;
pub mod synth;
pub mod time;
pub mod tls;
pub mod workers;
