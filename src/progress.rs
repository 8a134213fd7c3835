//! Progress of a replay on stderr. On a terminal, a bar (packets, bytes, exchanges,
//! alerts, rate, and how far through the input files with an ETA); otherwise, after
//! [`LOG_EVERY`] of wall time and every [`LOG_EVERY`] after, one progress line
//! through the log pipeline ([`crate::logging`]), so a replay of a few seconds
//! writes none. `-q` turns both off.
//!
//! Nothing here runs per packet: the thread that owns the counters copies them into
//! [`Counters`] at the points where it already looks at its counters (every 1,024
//! packets, or per batch of a sharded replay); the reader stores how far into the
//! input it is when it hands a batch over. A thread of its own draws the bar or
//! writes the line, so a paced replay waiting for its next packet still shows
//! progress.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a progress line is written when stderr is not a terminal: often
/// enough that a log shows the run is alive, rarely enough not to fill it.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// How often the bar is redrawn (indicatif redraws at most this often too).
const BAR_EVERY: Duration = Duration::from_millis(250);

/// A bar appears only after this much time: a replay that ends sooner shows none.
const BAR_AFTER: Duration = Duration::from_millis(500);

/// What the run has done so far, copied in by the thread that counts it.
#[derive(Debug, Default)]
pub struct Counters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub exchanges: AtomicU64,
    pub alerts: AtomicU64,
    /// Bytes of the input files read (compressed bytes for .gz), all files so far.
    pub input: AtomicU64,
}

impl Counters {
    /// Copies the processing thread's counters in.
    pub fn set(&self, packets: u64, bytes: u64, exchanges: u64, alerts: u64) {
        self.packets.store(packets, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
        self.exchanges.store(exchanges, Ordering::Relaxed);
        self.alerts.store(alerts, Ordering::Relaxed);
    }
}

/// The bar on the terminal now, so log lines can be written above it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `write` with the progress bar (if one is shown) taken off the terminal, so
/// the line it writes appears above the bar instead of through it.
pub fn above_bar(write: impl FnOnce()) {
    let bar = BAR.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(b) => b.suspend(write),
        None => write(),
    }
}

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
}

impl Mode {
    /// A bar when stderr is a terminal, lines otherwise.
    pub fn for_stderr() -> Mode {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Lines
        }
    }
}

/// The running reporter; [`Progress::finish`] ends it (and takes the bar away).
pub struct Progress {
    pub counters: Arc<Counters>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Total size of the input files, when every one has a size (not stdin).
pub fn input_size(files: &[String]) -> Option<u64> {
    files
        .iter()
        .map(|f| {
            if f == "-" {
                return None;
            }
            std::fs::metadata(f)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        })
        .sum()
}

impl Progress {
    /// Starts reporting a replay of `total` input bytes (unknown for stdin).
    pub fn start(mode: Mode, total: Option<u64>) -> Progress {
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = mpsc::channel::<()>();
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("apiwatch-progress".into())
            .spawn(move || report(mode, total, &c, &stopped))
            .ok();
        Progress {
            counters,
            stop: Some(stop),
            thread,
        }
    }

    /// Stops reporting; the bar is cleared before the summary is written.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}

/// A snapshot of the counters with what follows from them.
struct Seen {
    packets: u64,
    bytes: u64,
    exchanges: u64,
    alerts: u64,
    input: u64,
    secs: f64,
}

impl Seen {
    fn take(c: &Counters, started: Instant) -> Seen {
        Seen {
            packets: c.packets.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            exchanges: c.exchanges.load(Ordering::Relaxed),
            alerts: c.alerts.load(Ordering::Relaxed),
            input: c.input.load(Ordering::Relaxed),
            secs: started.elapsed().as_secs_f64().max(1e-9),
        }
    }

    fn rate(&self) -> f64 {
        self.packets as f64 / self.secs
    }

    /// Seconds left, from how far into the input the reader is.
    fn eta(&self, total: u64) -> Option<f64> {
        (self.input > 0 && self.input <= total)
            .then(|| self.secs * (total - self.input) as f64 / self.input as f64)
    }
}

/// Sizes as people read them (decimal units, as `ls -h --si` and indicatif do).
fn human(n: u64) -> String {
    indicatif::DecimalBytes(n).to_string()
}

fn report(mode: Mode, total: Option<u64>, c: &Counters, stopped: &mpsc::Receiver<()>) {
    let started = Instant::now();
    let (first, every) = match mode {
        Mode::Bar => (BAR_AFTER, BAR_EVERY),
        Mode::Lines => (LOG_EVERY, LOG_EVERY),
    };
    let mut wait = first;
    let mut bar: Option<ProgressBar> = None;
    // A closed channel (or a message) ends the reporter.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
        wait = every;
        let s = Seen::take(c, started);
        match mode {
            Mode::Bar => {
                let b = bar.get_or_insert_with(|| new_bar(total));
                if total.is_some() {
                    b.set_position(s.input);
                }
                b.set_message(format!(
                    "{} packets, {}, {} exchanges, {} alerts, {:.0} packets/s",
                    s.packets,
                    human(s.bytes),
                    s.exchanges,
                    s.alerts,
                    s.rate()
                ));
            }
            Mode::Lines => log_line(&s, total),
        }
    }
    if let Some(b) = bar {
        if let Ok(mut g) = BAR.lock() {
            *g = None;
        }
        b.finish_and_clear();
    }
}

fn new_bar(total: Option<u64>) -> ProgressBar {
    let target = ProgressDrawTarget::stderr_with_hz(4);
    let (bar, template) = match total {
        Some(t) => (
            ProgressBar::with_draw_target(Some(t), target),
            "{spinner} {elapsed_precise} [{bar:24}] {percent:>3}% ETA {eta} {wide_msg}",
        ),
        None => (
            ProgressBar::with_draw_target(None, target),
            "{spinner} {elapsed_precise} {wide_msg}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(BAR_EVERY);
    if let Ok(mut g) = BAR.lock() {
        *g = Some(bar.clone());
    }
    bar
}

fn log_line(s: &Seen, total: Option<u64>) {
    use crate::logging::Value;
    let mut fields: Vec<(&str, Value)> = vec![
        ("packets", s.packets.into()),
        ("bytes", s.bytes.into()),
        ("exchanges", s.exchanges.into()),
        ("alerts", s.alerts.into()),
        ("packets_per_s", (s.rate().round() as u64).into()),
        ("elapsed_s", s.secs.into()),
    ];
    if let Some(t) = total {
        fields.push(("input_read", s.input.min(t).into()));
        fields.push(("input_size", t.into()));
        if let Some(eta) = s.eta(t) {
            fields.push(("eta_s", (eta.round() as u64).into()));
        }
    }
    crate::logging::emit(tracing::Level::INFO, "Replay progress", &fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_follows_the_share_of_the_input_read() {
        let s = Seen {
            packets: 1000,
            bytes: 0,
            exchanges: 0,
            alerts: 0,
            input: 250,
            secs: 10.0,
        };
        assert_eq!(s.eta(1000), Some(30.0));
        assert_eq!(s.rate(), 100.0);
        assert_eq!(s.eta(100), None, "a file that grew past its size");
        assert_eq!(Seen { input: 0, ..s }.eta(1000), None);
    }

    #[test]
    fn stdin_has_no_size() {
        assert_eq!(input_size(&["-".into()]), None);
        assert_eq!(input_size(&[]), Some(0));
    }
}
