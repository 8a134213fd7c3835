//! Packet time: what every stage measures time in (its own module, so capture,
//! decoding, reassembly and detection share it without importing each other), and
//! its formatting. apiwatch never reads the wall clock in its core; these helpers
//! only render capture timestamps (UTC, ISO 8601, microseconds).

/// Nanoseconds since the Unix epoch, taken from the capture (never the wall clock).
pub type Nanos = u64;

/// The latest packet time apiwatch works with (2^62 ns, early 2116). Every source
/// clamps to it, so packet time plus any configured duration (at most 90 days) stays
/// far from `u64::MAX`: a hostile timestamp cannot wrap a window into the past.
pub const MAX_TIME: Nanos = 1 << 62;

/// Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2026-11-23T10:06:12` for seconds since the epoch, before 1970 too (certificate
/// validity dates); no zone suffix.
pub fn iso_seconds(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// `2026-11-23T10:06:12.300000` (no zone suffix; callers add `Z` or `+0000`).
fn iso_base(ts: Nanos) -> String {
    use std::fmt::Write;
    let mut s = iso_seconds((ts / 1_000_000_000) as i64);
    let _ = write!(s, ".{:06}", (ts % 1_000_000_000) / 1000);
    s
}

/// Exchange-log form: `2026-11-23T10:06:12.300000Z`.
pub fn iso_utc_z(ts: Nanos) -> String {
    let mut s = iso_base(ts);
    s.push('Z');
    s
}

/// Suricata EVE form: `2026-11-23T10:06:12.345678+0000`.
pub fn iso_utc_eve(ts: Nanos) -> String {
    let mut s = iso_base(ts);
    s.push_str("+0000");
    s
}

/// The wall clock as capture time (live capture while no packet arrives).
pub fn wall_clock() -> Nanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as Nanos)
        .unwrap_or(0)
}

/// Sleeps `wait`, in steps of at most 100 ms, until done or a stop is requested
/// (SIGINT/SIGTERM), so a paced replay stops at once.
pub fn pause(wait: std::time::Duration) {
    let until = std::time::Instant::now() + wait.min(std::time::Duration::from_secs(1 << 32));
    while !crate::signals::stopping() {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(100)));
    }
}

/// `--replay-speed`: how long to wait before a packet of capture time `ts` is due.
#[derive(Debug)]
pub struct Pacer {
    speed: f64,
    started: std::time::Instant,
    first_ts: Option<Nanos>,
}

impl Pacer {
    pub fn new(speed: f64) -> Self {
        Pacer {
            speed,
            started: std::time::Instant::now(),
            first_ts: None,
        }
    }

    /// The wait before `ts` is due (none when it is due within 2 ms).
    pub fn wait(&mut self, ts: Nanos) -> Option<std::time::Duration> {
        use std::time::Duration;
        let t0 = *self.first_ts.get_or_insert(ts);
        // Saturates instead of panicking on an absurd speed or timestamp jump.
        let at = Duration::try_from_secs_f64(ts.saturating_sub(t0) as f64 / 1e9 / self.speed)
            .unwrap_or(Duration::MAX);
        let now = self.started.elapsed();
        (at > now + Duration::from_millis(2)).then(|| at - now)
    }
}

/// How far after the present packet a time in the state may be: the clocks of two
/// runs (or a replay and the live run before it) may disagree a little; more is a
/// corrupt file, whose learning clock or windows would never move.
pub const FUTURE_SLACK: Nanos = 3600 * 1_000_000_000;
/// Whether `t`, read from a state file, is after the present packet `now` by more
/// than [`FUTURE_SLACK`].
pub fn in_future(t: Nanos, now: Nanos) -> bool {
    t > now.saturating_add(FUTURE_SLACK)
}

/// `t`, or `now` when `t` is [`in_future`].
pub fn not_after(t: Nanos, now: Nanos) -> Nanos {
    if in_future(t, now) { now } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso_utc_z(0), "1970-01-01T00:00:00.000000Z");
        // 2026-11-23T10:06:12.345678 UTC
        let ts = 1_795_428_372_345_678_000;
        assert_eq!(iso_utc_z(ts), "2026-11-23T10:06:12.345678Z");
        assert_eq!(iso_utc_eve(ts), "2026-11-23T10:06:12.345678+0000");
        // Leap day.
        assert_eq!(
            iso_utc_z(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
