//! `--openmetrics-out`: the replay's metrics on packet time, for backfilling.

use std::fmt::Write as _;

/// Snapshots of the exposition on packet time, for `--openmetrics-out`: a replay's
/// metrics with their real timestamps, for `promtool tsdb create-blocks-from
/// openmetrics`. Memory grows with the capture's duration (one snapshot per
/// `every` of packet time, about 12 KB each).
#[derive(Debug, Default)]
pub struct Backfill {
    every: u64,
    next: Option<u64>,
    snapshots: Vec<(u64, String)>,
}

impl Backfill {
    pub fn new(every: u64) -> Self {
        Backfill {
            every,
            ..Default::default()
        }
    }

    /// Whether a snapshot is due at packet time `ts`.
    pub fn due(&self, ts: u64) -> bool {
        self.next.is_none_or(|n| ts >= n)
    }

    pub fn push(&mut self, ts: u64, exposition: String) {
        if self.snapshots.last().is_some_and(|(t, _)| *t >= ts) {
            return;
        }
        self.next = Some(ts.saturating_add(self.every));
        self.snapshots.push((ts, exposition));
    }

    /// The snapshots as one OpenMetrics text: each family once (HELP, TYPE, then
    /// its samples in time order), `# EOF` at the end. Process metrics are left
    /// out: they describe the replaying process, not the capture's timeline.
    pub fn to_openmetrics(&self) -> String {
        // Family → (help, type, series in first-seen order with their samples).
        type Series = Vec<(String, String)>;
        let mut order: Vec<String> = Vec::new();
        let mut families: std::collections::HashMap<String, (String, String, Series)> =
            Default::default();
        for (ts, text) in &self.snapshots {
            let secs = *ts as f64 / 1e9;
            let mut current = String::new();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("# HELP ") {
                    let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                    current = name.to_string();
                    if !families.contains_key(name) {
                        order.push(name.to_string());
                        families.insert(
                            name.to_string(),
                            (help.to_string(), String::new(), Vec::new()),
                        );
                    }
                } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let kind = rest.split_whitespace().nth(1).unwrap_or("untyped");
                    if let Some(f) = families.get_mut(&current) {
                        f.1 = kind.to_string();
                    }
                } else if !line.is_empty()
                    && !current.starts_with("process_")
                    && let Some(f) = families.get_mut(&current)
                {
                    // One series' points stay together (OpenMetrics does not
                    // interleave them); a histogram is one series of buckets.
                    let key = if f.1 == "histogram" {
                        String::new()
                    } else {
                        line.rsplit_once(' ').map_or(line, |(k, _)| k).to_string()
                    };
                    let sample = format!("{line} {secs:.3}\n");
                    match f.2.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, v)) => v.push_str(&sample),
                        None => f.2.push((key, sample)),
                    }
                }
            }
        }
        let mut out = String::new();
        for name in order {
            let (help, kind, samples) = &families[&name];
            if name.starts_with("process_") {
                continue;
            }
            let family = if kind == "counter" {
                name.strip_suffix("_total").unwrap_or(&name)
            } else {
                &name
            };
            let _ = writeln!(out, "# HELP {family} {help}");
            let _ = writeln!(out, "# TYPE {family} {kind}");
            for (_, points) in samples {
                out.push_str(points);
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_groups_each_series_in_time_order_with_one_header_per_family() {
        let mut b = Backfill::new(10);
        assert!(b.due(0));
        for (ts, v) in [(1_000_000_000u64, 1), (2_000_000_000, 5)] {
            b.push(ts, format!("# HELP x_total X.\n# TYPE x_total counter\nx_total{{a=\"1\"}} {v}\nx_total{{a=\"2\"}} {}\n# HELP process_open_fds F.\n# TYPE process_open_fds gauge\nprocess_open_fds 9\n", v * 2));
        }
        let om = b.to_openmetrics();
        assert_eq!(
            om,
            "# HELP x X.\n# TYPE x counter\nx_total{a=\"1\"} 1 1.000\nx_total{a=\"1\"} 5 2.000\nx_total{a=\"2\"} 2 1.000\nx_total{a=\"2\"} 10 2.000\n# EOF\n"
        );
    }
}
