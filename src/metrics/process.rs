//! `process_*` metrics from /proc, as the Prometheus client libraries export them.

use super::render::one;

/// The kernel's page size (4 KiB on x86-64, 16 or 64 KiB on some ARM kernels).
fn page_size() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as f64 } else { 4096.0 }
}

/// `process_*` metrics from /proc, as client libraries export them.
pub(super) fn metrics(s: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the parenthesised command name.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu = (num(11) + num(12)) / ticks; // utime + stime
    let rss_pages = num(21);
    one(
        s,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu,
    );
    one(
        s,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        rss_pages * page_size(),
    );
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        one(
            s,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count(),
        );
    }
    if let (Ok(up), Some(start)) = (
        std::fs::read_to_string("/proc/uptime"),
        f.get(19).and_then(|v| v.parse::<f64>().ok()),
    ) {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
            - up.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        one(
            s,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            (boot + start / ticks).round(),
        );
    }
}
