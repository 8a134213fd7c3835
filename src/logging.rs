//! Everything the process writes on stderr, as Prometheus exporters log it:
//! `--log.level` and `--log.format logfmt|json`. One pipeline: log events, the
//! end-of-run summary, progress events and fatal errors are all lines of the chosen
//! format, with the same keys in both:
//!
//! ```text
//! ts=2026-12-07T10:00:00.123456789Z level=warn msg="x.pcap: ..." file=x.pcap
//! {"ts":"2026-12-07T10:00:00.123456789Z","level":"warn","msg":"x.pcap: ...","file":"x.pcap"}
//! ```
//!
//! `level` is lowercase (`debug`, `info`, `warn`, `error`), `msg` the message; other
//! fields follow flat (numbers as JSON numbers). The summary and fatal errors are
//! written whatever `--log.level` says (`-q` turns the summary off). Colour is never
//! written: both formats are for machines, and a terminal shows them as they are.
//! While a progress bar is on the terminal, lines are written above it
//! ([`crate::progress`]).

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Logfmt,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "logfmt" => Ok(LogFormat::Logfmt),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("--log.format: '{s}' is not logfmt or json")),
        }
    }
}

/// The format every line is written in (set before the command line is parsed, so
/// that a usage error is already in it).
static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Chooses the format of every line written from now on.
pub fn set_format(f: LogFormat) {
    FORMAT.store(f as u8, Ordering::Relaxed);
}

fn format() -> LogFormat {
    if FORMAT.load(Ordering::Relaxed) == LogFormat::Json as u8 {
        LogFormat::Json
    } else {
        LogFormat::Logfmt
    }
}

/// `--log.level` (also `APIWATCH_LOG`).
pub fn parse_level(s: &str) -> Result<Level, String> {
    match s {
        "debug" => Ok(Level::DEBUG),
        "info" => Ok(Level::INFO),
        "warn" => Ok(Level::WARN),
        "error" => Ok(Level::ERROR),
        _ => Err(format!(
            "--log.level: '{s}' is not debug, info, warn or error"
        )),
    }
}

/// Installs the global subscriber for log events at `level` and above.
pub fn init(level: Level, format: LogFormat) {
    set_format(format);
    let _ = tracing_subscriber::fmt()
        .with_writer(|| Stderr)
        .with_max_level(level)
        .with_ansi(false)
        .event_format(Lines)
        .try_init();
}

/// A field's value: numbers stay numbers in JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(String),
    Bool(bool),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Num(n.to_string())
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Num(n.to_string())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        if x.is_finite() {
            Value::Num(format!("{x:.3}"))
        } else {
            Value::Str(x.to_string())
        }
    }
}

/// One line in the chosen format, with its newline.
pub fn line(level: Level, msg: &str, fields: &[(&str, Value)]) -> String {
    let ts = crate::time::iso_utc_z(crate::time::wall_clock());
    let level = level_name(level);
    let mut out = String::with_capacity(96 + msg.len() + 24 * fields.len());
    match format() {
        LogFormat::Logfmt => {
            out.push_str("ts=");
            out.push_str(&ts);
            out.push_str(" level=");
            out.push_str(level);
            out.push_str(" msg=");
            logfmt_value(&mut out, msg);
            for (k, v) in fields {
                out.push(' ');
                out.push_str(k);
                out.push('=');
                match v {
                    Value::Str(s) | Value::Num(s) => logfmt_value(&mut out, s),
                    Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                }
            }
        }
        LogFormat::Json => {
            out.push_str("{\"ts\":\"");
            out.push_str(&ts);
            out.push_str("\",\"level\":\"");
            out.push_str(level);
            out.push_str("\",\"msg\":");
            json_string(&mut out, msg);
            for (k, v) in fields {
                out.push(',');
                json_string(&mut out, k);
                out.push(':');
                match v {
                    Value::Str(s) => json_string(&mut out, s),
                    Value::Num(s) => out.push_str(s),
                    Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                }
            }
            out.push('}');
        }
    }
    out.push('\n');
    out
}

/// Writes one line whatever `--log.level` says: the summary, a fatal error.
pub fn emit(level: Level, msg: &str, fields: &[(&str, Value)]) {
    write_stderr(line(level, msg, fields).as_bytes());
}

/// A fatal error, as the last word of the process.
pub fn fatal(msg: impl fmt::Display) {
    emit(Level::ERROR, &msg.to_string(), &[]);
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Writes bytes to stderr in one piece, above the progress bar when one is shown.
fn write_stderr(b: &[u8]) {
    crate::progress::above_bar(|| {
        let _ = std::io::stderr().lock().write_all(b);
    });
}

/// stderr for the subscriber: each event arrives as one buffered line.
struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        write_stderr(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A logfmt value: bare when it is a plain word, quoted and escaped otherwise.
fn logfmt_value(out: &mut String, v: &str) {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_string(out: &mut String, v: &str) {
    out.push_str(&serde_json::Value::from(v).to_string());
}

/// An event's fields in order; `message` becomes `msg`.
#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, v: &str) {
        if field.name() == "message" {
            self.msg = v.to_string();
        } else {
            self.rest.push((field.name(), Value::Str(v.to_string())));
        }
    }
    fn record_u64(&mut self, field: &Field, v: u64) {
        self.rest.push((field.name(), Value::Num(v.to_string())));
    }
    fn record_i64(&mut self, field: &Field, v: i64) {
        self.rest.push((field.name(), Value::Num(v.to_string())));
    }
    fn record_f64(&mut self, field: &Field, v: f64) {
        self.rest.push((field.name(), Value::from(v)));
    }
    fn record_bool(&mut self, field: &Field, v: bool) {
        self.rest.push((field.name(), Value::Bool(v)));
    }
    fn record_debug(&mut self, field: &Field, v: &dyn fmt::Debug) {
        self.record_str(field, &format!("{v:?}"));
    }
}

/// The event format: [`line`] in the chosen format.
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        w.write_str(&line(*event.metadata().level(), &f.msg, &f.rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        let mut s = String::new();
        logfmt_value(&mut s, "eth0");
        s.push(' ');
        logfmt_value(&mut s, "the file \"x\" shrank\n");
        s.push(' ');
        logfmt_value(&mut s, "");
        assert_eq!(s, "eth0 \"the file \\\"x\\\" shrank\\n\" \"\"");
    }

    /// Both formats carry the same keys: `ts`, `level` (lowercase), `msg`, then the
    /// fields in order, numbers as numbers.
    #[test]
    fn both_formats_have_the_same_keys() {
        let fields = [
            ("file", Value::from("a b.pcap")),
            ("packets", Value::from(12u64)),
            ("interrupted", Value::from(true)),
        ];
        set_format(LogFormat::Json);
        let j = line(Level::WARN, "Cut \"short\"", &fields);
        set_format(LogFormat::Logfmt);
        let l = line(Level::WARN, "Cut \"short\"", &fields);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "Cut \"short\"");
        assert_eq!(v["packets"], 12);
        assert_eq!(v["interrupted"], true);
        assert_eq!(v["file"], "a b.pcap");
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
        assert!(l.starts_with("ts="), "{l}");
        assert!(
            l.ends_with(
                " level=warn msg=\"Cut \\\"short\\\"\" file=\"a b.pcap\" packets=12 interrupted=true\n"
            ),
            "{l}"
        );
    }
}
