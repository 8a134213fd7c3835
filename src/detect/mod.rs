//! Detection: endpoint templates now; per-client baselines and detectors build on them.

pub mod templates;
