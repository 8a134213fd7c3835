//! The command line's options in one table, from which `--help`, the man page
//! (`--generate-man`) and the shell completions (`--completions SHELL`) are all
//! generated, and beside it the parser ([`parse`]) that takes them: none of them can
//! drift from what the parser takes (a test checks every option here is one it
//! handles).

use crate::config::parse_duration;
use crate::sensor::{Backend, SensorOptions};

mod help;
pub use help::{build_info, completion, features, man_page, revision, usage};

/// How a shell completes an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complete {
    Nothing,
    File,
    Interface,
    Choice(&'static [&'static str]),
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub short: Option<char>,
    pub long: &'static str,
    /// The value's name (`FILE`); `None` for a flag.
    pub value: Option<&'static str>,
    pub help: &'static str,
    pub complete: Complete,
    pub section: &'static str,
}

const fn opt(
    short: Option<char>,
    long: &'static str,
    value: Option<&'static str>,
    complete: Complete,
    section: &'static str,
    help: &'static str,
) -> Opt {
    Opt {
        short,
        long,
        value,
        help,
        complete,
        section,
    }
}

use Complete::{Choice, File, Interface, Nothing};

const INPUT: &str = "Input";
const OUTPUT: &str = "Output";
const DETECT: &str = "Detection and configuration";
const LIVE: &str = "Live capture";
const WEB: &str = "Metrics endpoint";
const LOG: &str = "Logging and information";
const NATS: &str = "Beyond one machine (NATS JetStream)";

/// Every option, in help order.
pub const OPTIONS: &[Opt] = &[
    opt(
        Some('r'),
        "read",
        Some("FILE"),
        File,
        INPUT,
        "capture file to replay: pcap or pcapng, also .gz, '-' for stdin (repeatable, read in order)",
    ),
    opt(
        Some('i'),
        "interface",
        Some("IFACE"),
        Interface,
        INPUT,
        "capture live (AF_PACKET; root or CAP_NET_RAW) until SIGINT/SIGTERM",
    ),
    opt(
        None,
        "replay-speed",
        Some("X"),
        Nothing,
        INPUT,
        "pace the replay by packet time (1 = as recorded)",
    ),
    opt(
        None,
        "workers",
        Some("N"),
        Nothing,
        INPUT,
        "packet threads (default: available cores); detection is sharded by client too; output is the same for any N. Live: N sockets in one fanout group, split by flow in the kernel",
    ),
    opt(
        None,
        "exchanges",
        Some("PATH"),
        File,
        OUTPUT,
        "write every HTTP exchange as JSON lines ('-' = stdout)",
    ),
    opt(
        None,
        "exchanges-format",
        Some("FORMAT"),
        Choice(&["apiwatch", "eve", "zeek"]),
        OUTPUT,
        "apiwatch (default), eve (Suricata http records) or zeek (Zeek http.log JSON)",
    ),
    opt(
        None,
        "alerts",
        Some("PATH"),
        File,
        OUTPUT,
        "alerts as Suricata EVE alert records, JSON lines (default: stdout)",
    ),
    opt(
        None,
        "endpoints",
        Some("PATH"),
        File,
        OUTPUT,
        "the learned API inventory as OpenAPI 3.1 JSON, one document per server when PATH is a directory (refreshed on the state snapshot interval of packet time, and at exit)",
    ),
    opt(
        None,
        "openmetrics-out",
        Some("FILE"),
        File,
        OUTPUT,
        "write the replay's metrics on packet time (OpenMetrics, for backfill)",
    ),
    opt(
        Some('q'),
        "quiet",
        None,
        Nothing,
        OUTPUT,
        "no progress and no summary on stderr",
    ),
    opt(
        None,
        "openapi",
        Some("SPEC"),
        File,
        DETECT,
        "pin routes to your OpenAPI 3.0/3.1 spec (JSON or YAML): requests take its paths; a 2xx outside it is a shadow route",
    ),
    opt(
        None,
        "tls-keylog",
        Some("FILE"),
        File,
        DETECT,
        "decrypt TLS with the secrets of this key log (SSLKEYLOGFILE format, as curl, browsers and openssl write it); the HTTP inside is read like cleartext. AES-GCM, ChaCha20 and (TLS 1.2) AES-CBC suites, TLS 1.2 and 1.3",
    ),
    opt(
        None,
        "learning-period",
        Some("DUR"),
        Nothing,
        DETECT,
        "baseline learning period, e.g. 5m (default 5m)",
    ),
    opt(
        None,
        "memory-limit",
        Some("SIZE"),
        Nothing,
        DETECT,
        "one budget for connections, clients, fragments and buffers (default 512MB)",
    ),
    opt(
        Some('c'),
        "config",
        Some("FILE"),
        File,
        DETECT,
        "TOML configuration (every key optional, see the README)",
    ),
    opt(
        Some('T'),
        "test-config",
        None,
        Nothing,
        DETECT,
        "check the configuration and exit",
    ),
    opt(
        None,
        "ring-size",
        Some("MIB"),
        Nothing,
        LIVE,
        "TPACKET_V3 ring per worker (default 64; 256 shared beyond 4 workers, at least 16 each)",
    ),
    opt(
        None,
        "block-timeout",
        Some("DUR"),
        Nothing,
        LIVE,
        "hand over a ring block that is not full after DUR (default 10ms)",
    ),
    opt(
        None,
        "user",
        Some("NAME"),
        Nothing,
        LIVE,
        "drop root to NAME once sockets and files are open",
    ),
    opt(
        None,
        "capture-backend",
        Some("BACKEND"),
        Choice(&["af-packet", "libpcap"]),
        LIVE,
        "af-packet (default) or libpcap (needs --features libpcap)",
    ),
    opt(
        None,
        "web.listen-address",
        Some("ADDR"),
        Nothing,
        WEB,
        "serve Prometheus metrics, e.g. :9977 (every address) or 127.0.0.1:9977 (repeatable)",
    ),
    opt(
        None,
        "web.systemd-socket",
        None,
        Nothing,
        WEB,
        "serve metrics on the sockets systemd passes (socket activation)",
    ),
    opt(
        None,
        "web.telemetry-path",
        Some("PATH"),
        Nothing,
        WEB,
        "metrics path (default /metrics)",
    ),
    opt(
        None,
        "web.config.file",
        Some("FILE"),
        File,
        WEB,
        "TLS, client certificates, headers, rate limit and basic auth (Prometheus exporter-toolkit format; re-read when it changes)",
    ),
    opt(
        None,
        "web.max-connections",
        Some("N"),
        Nothing,
        WEB,
        "open metrics connections (default 512; past it the oldest idle one is closed)",
    ),
    opt(
        None,
        "web.linger",
        Some("DUR"),
        Nothing,
        WEB,
        "keep serving the final metrics after a replay, e.g. 30s",
    ),
    opt(
        None,
        "log.level",
        Some("LEVEL"),
        Choice(&["debug", "info", "warn", "error"]),
        LOG,
        "log messages at this level and above (default warn; APIWATCH_LOG also sets it)",
    ),
    opt(
        None,
        "log.format",
        Some("FORMAT"),
        Choice(&["logfmt", "json"]),
        LOG,
        "format of every line on stderr (logs, progress, summary, errors): logfmt (default) or json, with the same keys; never coloured",
    ),
    opt(
        None,
        "build-info",
        None,
        Nothing,
        LOG,
        "version, git revision, features and compiler, then exit",
    ),
    opt(
        None,
        "generate-man",
        None,
        Nothing,
        LOG,
        "print the man page (roff) and exit",
    ),
    opt(
        None,
        "completions",
        Some("SHELL"),
        Choice(&["bash", "zsh", "fish"]),
        LOG,
        "print the shell completion script and exit",
    ),
    opt(
        None,
        "publish",
        Some("URL"),
        Nothing,
        NATS,
        "nats://HOST:PORT (tls://HOST:PORT: TLS required; comma-separated for a cluster): run stage 1 only (decode, flows, HTTP) and publish every exchange to a JetStream stream (created if missing) for 'apiwatch detect' processes; no alerts here",
    ),
    opt(
        None,
        "partitions",
        Some("N"),
        Nothing,
        NATS,
        "with --publish: clients are spread over N partitions, one subject each, by a stable hash of the client key (default 64)",
    ),
    opt(
        None,
        "publish-buffer",
        Some("N"),
        Nothing,
        NATS,
        "with --publish: exchanges buffered while the server is slow or away (default 65536); beyond it live capture drops and counts them, a replay waits",
    ),
    opt(
        None,
        "from",
        Some("URL"),
        Nothing,
        NATS,
        "apiwatch detect: the NATS server whose stream the sensors publish to (nats:// or tls://, as --publish)",
    ),
    opt(
        None,
        "shard",
        Some("K/N"),
        Nothing,
        NATS,
        "apiwatch detect: judge the clients of shard K of N (every detector follows the whole stream for the global half; shard 1 writes the global alerts)",
    ),
    opt(
        None,
        "until-idle",
        Some("DURATION"),
        Nothing,
        NATS,
        "apiwatch detect: exit once the stream is drained and nothing new came for DURATION (default: run until SIGINT/SIGTERM)",
    ),
    opt(
        None,
        "max-lateness",
        Some("DURATION"),
        Nothing,
        NATS,
        "apiwatch detect: several sensors' exchanges are merged on packet time; one sensor's wait at most DURATION of packet time for the others' (default 2s; later ones are judged as they come and counted)",
    ),
    opt(
        None,
        "nats-stream",
        Some("NAME"),
        Nothing,
        NATS,
        "the JetStream stream (default APIWATCH)",
    ),
    opt(
        None,
        "nats-subject",
        Some("PREFIX"),
        Nothing,
        NATS,
        "subjects are PREFIX.exchanges.PARTITION and PREFIX.epochs.SHARD (default apiwatch)",
    ),
    opt(
        None,
        "nats-creds",
        Some("FILE"),
        File,
        NATS,
        "a NATS credentials file (user JWT and NKey seed) to connect with; not readable by all users",
    ),
    opt(
        None,
        "nats-nkey",
        Some("FILE"),
        File,
        NATS,
        "authenticate with the user NKey whose seed (SU...) FILE holds, for a server that lists the user's public key; not readable by all users (a user and password or token go in the URL, user:pass@HOST, with a warning: ps shows them)",
    ),
    opt(
        None,
        "nats-tls-ca",
        Some("FILE"),
        File,
        NATS,
        "PEM CA certificates to verify the NATS server's certificate with, instead of the system's roots; makes TLS required even with a nats:// URL (tls:// always requires it)",
    ),
    opt(
        None,
        "nats-tls-cert",
        Some("FILE"),
        File,
        NATS,
        "PEM client certificate (chain) for servers that verify clients (mutual TLS), with --nats-tls-key; makes TLS required",
    ),
    opt(
        None,
        "nats-tls-key",
        Some("FILE"),
        File,
        NATS,
        "PEM private key of --nats-tls-cert; not readable by all users",
    ),
    opt(Some('h'), "help", None, Nothing, LOG, "this help"),
    opt(Some('V'), "version", None, Nothing, LOG, "version"),
];

/// What the command line asks for.
pub enum Command {
    /// Replay or capture with these settings.
    Run(Box<Args>),
    /// Print this on standard output and exit 0 (`--help`, `--version`, ...).
    Print(String),
}

/// A parsed command line, before the configuration file is read.
pub struct Args {
    pub sensor: SensorOptions,
    pub log_level: Option<tracing::Level>,
    pub log_format: crate::logging::LogFormat,
    pub ring_mib: Option<usize>,
    pub block_timeout_ms: Option<u32>,
    pub quiet: bool,
    pub config: Option<String>,
    pub test_config: bool,
    pub learning_period: Option<u64>,
    pub memory_limit: Option<u64>,
    pub web_config: Option<String>,
    pub openapi: Option<std::sync::Arc<crate::routes::spec::Spec>>,
    /// `--tls-keylog` (read once logging is set up: it may warn).
    pub tls_keylog: Option<String>,
    /// `apiwatch detect ...`: stage 2 from NATS instead of a capture.
    pub detect: Option<crate::nats::DetectOptions>,
}

fn string_value(p: &mut lexopt::Parser) -> Result<String, String> {
    use lexopt::ValueExt;
    p.value()
        .map_err(|e| e.to_string())?
        .string()
        .map_err(|e| e.to_string())
}

/// `--log.format`'s value as the command line gives it, looked up before parsing so
/// that even an error in the rest of the line is written in the chosen format.
pub fn log_format_hint(args: &[std::ffi::OsString]) -> crate::logging::LogFormat {
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        let v = match a.strip_prefix("--log.format") {
            Some("") => it.next(),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(f) = v.and_then(|v| v.parse().ok()) {
            return f;
        }
    }
    crate::logging::LogFormat::default()
}

/// Parses the command line (without the program name) against [`OPTIONS`].
/// `Err` is a usage error (exit 2), one line.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut sensor = SensorOptions {
        // As DESIGN.md's CLI says: one worker per available core unless told.
        workers: std::thread::available_parallelism().map_or(1, |n| n.get().min(256)),
        ..Default::default()
    };
    let mut a = Args {
        sensor: SensorOptions::default(),
        log_level: None,
        log_format: crate::logging::LogFormat::default(),
        ring_mib: None,
        block_timeout_ms: None,
        quiet: false,
        config: None,
        test_config: false,
        learning_period: None,
        memory_limit: None,
        web_config: None,
        openapi: None,
        tls_keylog: None,
        detect: None,
    };
    let mut args = args;
    // `apiwatch detect ...`: the subcommand is the first word.
    let detect_mode = args.first().is_some_and(|w| w == "detect");
    if detect_mode {
        args.remove(0);
    }
    let mut p = lexopt::Parser::from_args(args);
    let mut nats = Nats::default();
    // Options that only apply to one kind of run, as the user spelled them.
    let mut live_only = Vec::new();
    let mut web_only = Vec::new();
    let mut positional = Vec::new();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('r') | Long("read") => sensor.files.push(string_value(&mut p)?),
            Short('i') | Long("interface") => sensor.interface = Some(string_value(&mut p)?),
            Long("exchanges") => sensor.exchanges = Some(string_value(&mut p)?),
            Long("exchanges-format") => sensor.exchanges_format = string_value(&mut p)?.parse()?,
            Long("alerts") => sensor.alerts = Some(string_value(&mut p)?),
            Long("endpoints") => sensor.endpoints = Some(string_value(&mut p)?.into()),
            Long("openapi") => {
                let v = string_value(&mut p)?;
                let spec = crate::routes::spec::Spec::load(std::path::Path::new(&v))
                    .map_err(|e| format!("--openapi {v}: {e}"))?;
                a.openapi = Some(std::sync::Arc::new(spec));
            }
            Long("tls-keylog") => a.tls_keylog = Some(string_value(&mut p)?),
            Long("workers") => {
                let v = string_value(&mut p)?;
                match v.parse::<usize>() {
                    Ok(n) if (1..=256).contains(&n) => sensor.workers = n,
                    _ => return Err(format!("--workers: '{v}' is not a number from 1 to 256")),
                }
            }
            Long("learning-period") => {
                let v = string_value(&mut p)?;
                let max = crate::config::max_duration("detect.learning_period");
                match parse_duration(&v) {
                    Some(d) if (1..=max).contains(&d) => a.learning_period = Some(d),
                    _ => {
                        return Err(format!(
                            "--learning-period: '{v}' is not a duration from 1ms to {}h (e.g. 90s, 5m, 1h)",
                            max / 3_600_000_000_000
                        ));
                    }
                }
            }
            Long("memory-limit") => {
                let v = string_value(&mut p)?;
                a.memory_limit = Some(
                    crate::config::memory_limit(&v).map_err(|e| format!("--memory-limit: {e}"))?,
                );
            }
            Long("ring-size") => {
                let v = string_value(&mut p)?;
                match v.parse::<usize>() {
                    Ok(n) if (1..=4096).contains(&n) => a.ring_mib = Some(n),
                    _ => {
                        return Err(format!(
                            "--ring-size: '{v}' is not a size in MiB from 1 to 4096"
                        ));
                    }
                }
                live_only.push("--ring-size");
            }
            Long("block-timeout") => {
                let v = string_value(&mut p)?;
                a.block_timeout_ms =
                    Some(crate::config::parse_block_timeout(&v).ok_or_else(|| {
                        format!("--block-timeout: '{v}' is not a duration from 1ms to 10s")
                    })?);
                live_only.push("--block-timeout");
            }
            Long("user") => {
                sensor.user = Some(string_value(&mut p)?);
                live_only.push("--user");
            }
            Long("capture-backend") => {
                let v = string_value(&mut p)?;
                sensor.backend = match v.as_str() {
                    "af-packet" | "afpacket" => Backend::AfPacket,
                    "libpcap" | "pcap" => Backend::Libpcap,
                    _ => {
                        return Err(format!(
                            "--capture-backend: '{v}' is not af-packet or libpcap"
                        ));
                    }
                };
                live_only.push("--capture-backend");
            }
            Short('c') | Long("config") => a.config = Some(string_value(&mut p)?),
            Short('T') | Long("test-config") => a.test_config = true,
            Long("web.listen-address") => sensor.web.listen.push(string_value(&mut p)?),
            Long("web.systemd-socket") => sensor.web.systemd_socket = true,
            Long("web.max-connections") => {
                let v = string_value(&mut p)?;
                sensor.web.max_connections = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=65_536).contains(n))
                    .ok_or_else(|| {
                        format!("--web.max-connections: '{v}' is not a number from 1 to 65536")
                    })?;
                web_only.push("--web.max-connections");
            }
            Long("web.telemetry-path") => {
                let v = string_value(&mut p)?;
                if !v.starts_with('/') {
                    return Err(format!("--web.telemetry-path: '{v}' must start with '/'"));
                }
                sensor.web.path = v;
                web_only.push("--web.telemetry-path");
            }
            Long("web.linger") => {
                let v = string_value(&mut p)?;
                let d = parse_duration(&v)
                    .ok_or_else(|| format!("--web.linger: '{v}' is not a duration (e.g. 30s)"))?;
                sensor.web_linger = Some(std::time::Duration::from_nanos(d));
                web_only.push("--web.linger");
            }
            Long("web.config.file") => {
                a.web_config = Some(string_value(&mut p)?);
                web_only.push("--web.config.file");
            }
            Long("openmetrics-out") => sensor.openmetrics_out = Some(string_value(&mut p)?),
            Long("replay-speed") => {
                let v = string_value(&mut p)?;
                match v.parse::<f64>() {
                    Ok(x) if (0.001..=1e6).contains(&x) => sensor.replay_speed = Some(x),
                    _ => {
                        return Err(format!(
                            "--replay-speed: '{v}' is not a number from 0.001 to 1000000"
                        ));
                    }
                }
            }
            Short('q') | Long("quiet") => a.quiet = true,
            Long("publish") => nats.publish = Some(string_value(&mut p)?),
            Long("from") => nats.from = Some(string_value(&mut p)?),
            Long("shard") => nats.shard = Some(crate::nats::parse_shard(&string_value(&mut p)?)?),
            Long("until-idle") => {
                let v = string_value(&mut p)?;
                match parse_duration(&v) {
                    Some(d) if d > 0 => nats.until_idle = Some(std::time::Duration::from_nanos(d)),
                    _ => return Err(format!("--until-idle: '{v}' is not a duration (e.g. 2s)")),
                }
            }
            Long("max-lateness") => {
                let v = string_value(&mut p)?;
                match parse_duration(&v) {
                    Some(d) if d <= 3_600_000_000_000 => nats.max_lateness = Some(d),
                    _ => {
                        return Err(format!(
                            "--max-lateness: '{v}' is not a duration up to 1h (e.g. 2s)"
                        ));
                    }
                }
            }
            Long("partitions") => {
                let v = string_value(&mut p)?;
                match v.parse::<u32>() {
                    Ok(n) if (1..=4096).contains(&n) => nats.partitions = Some(n),
                    _ => {
                        return Err(format!(
                            "--partitions: '{v}' is not a number from 1 to 4096"
                        ));
                    }
                }
            }
            Long("publish-buffer") => {
                let v = string_value(&mut p)?;
                match v.parse::<usize>() {
                    Ok(n) if (1..=16_777_216).contains(&n) => nats.buffer = Some(n),
                    _ => {
                        return Err(format!(
                            "--publish-buffer: '{v}' is not a number from 1 to 16777216"
                        ));
                    }
                }
            }
            Long("nats-stream") => nats.stream = Some(string_value(&mut p)?),
            Long("nats-subject") => nats.subject = Some(string_value(&mut p)?),
            Long("nats-creds") => nats.creds = Some(string_value(&mut p)?.into()),
            Long("nats-nkey") => nats.nkey = Some(string_value(&mut p)?.into()),
            Long("nats-tls-ca") => nats.tls.ca = Some(string_value(&mut p)?.into()),
            Long("nats-tls-cert") => nats.tls.cert = Some(string_value(&mut p)?.into()),
            Long("nats-tls-key") => nats.tls.key = Some(string_value(&mut p)?.into()),
            Short('h') | Long("help") => return Ok(Command::Print(usage())),
            Long("log.level") => {
                a.log_level = Some(crate::logging::parse_level(&string_value(&mut p)?)?)
            }
            Long("log.format") => a.log_format = string_value(&mut p)?.parse()?,
            Long("build-info") => return Ok(Command::Print(build_info())),
            Long("generate-man") => return Ok(Command::Print(man_page())),
            Long("completions") => {
                let shell = string_value(&mut p)?;
                let script = completion(&shell)
                    .ok_or_else(|| format!("--completions: '{shell}' is not bash, zsh or fish"))?;
                return Ok(Command::Print(script));
            }
            Short('V') | Long("version") => {
                return Ok(Command::Print(format!(
                    "apiwatch {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            Value(v) => positional.push(v.string().map_err(|e| e.to_string())?),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    if detect_mode {
        return detect_args(a, sensor, nats, &positional);
    }
    if nats.from.is_some()
        || nats.shard.is_some()
        || nats.until_idle.is_some()
        || nats.max_lateness.is_some()
    {
        return Err(
            "--from, --shard, --until-idle and --max-lateness are for 'apiwatch detect'".into(),
        );
    }
    if let Some(url) = nats.publish.take() {
        sensor.publish = Some(crate::nats::PublishOptions {
            nats: nats.options(url)?,
            partitions: nats.partitions.unwrap_or(crate::nats::DEFAULT_PARTITIONS),
            buffer: nats.buffer.unwrap_or(crate::nats::DEFAULT_BUFFER),
            block: sensor.interface.is_none(),
        });
    } else if nats.partitions.is_some()
        || nats.buffer.is_some()
        || nats.stream.is_some()
        || nats.subject.is_some()
        || nats.creds.is_some()
        || nats.nkey.is_some()
        || nats.tls.ca.is_some()
        || nats.tls.cert.is_some()
        || nats.tls.key.is_some()
    {
        return Err("--partitions, --publish-buffer and --nats-* need --publish URL".into());
    }
    // Trailing words are a filter expression, always: every input file has its own
    // `-r` (a file named `80` in the working directory must not turn `tcp port 80`
    // into an input).
    let filter = positional;
    if !filter.is_empty() {
        let f = crate::capture::bpf::Filter::new(&filter.join(" ")).map_err(|e| {
            match filter.iter().find(|w| std::path::Path::new(w).is_file()) {
                Some(file) => format!("{e} ('{file}' is a file: give each input its own -r)"),
                None => e.to_string(),
            }
        })?;
        sensor.filter = Some(f);
    }
    if sensor.files.is_empty() && sensor.interface.is_none() && !a.test_config {
        return Err(
            "nothing to do: give a capture with -r FILE or an interface with -i IFACE".into(),
        );
    }
    if !sensor.files.is_empty() && sensor.interface.is_some() {
        return Err("-r and -i exclude each other: replay files or capture live".into());
    }
    applies_to_this_run(&sensor, a.test_config, &live_only, &web_only)?;
    if sensor.exchanges.as_deref() == Some("-") && sensor.alerts.is_none() {
        // Two record shapes on one stream only when asked for by name.
        return Err(
            "--exchanges - would share stdout with the alerts (stdout by default): \
             give the alerts a file (--alerts PATH), or --alerts - to mix both on stdout"
                .into(),
        );
    }
    sensor.progress = !a.quiet;
    a.sensor = sensor;
    Ok(Command::Run(Box::new(a)))
}

/// The NATS options as given, before the run they belong to is known.
#[derive(Default)]
struct Nats {
    publish: Option<String>,
    from: Option<String>,
    shard: Option<(u32, u32)>,
    until_idle: Option<std::time::Duration>,
    max_lateness: Option<crate::time::Nanos>,
    partitions: Option<u32>,
    buffer: Option<usize>,
    stream: Option<String>,
    subject: Option<String>,
    creds: Option<std::path::PathBuf>,
    nkey: Option<std::path::PathBuf>,
    tls: crate::nats::TlsOptions,
}

impl Nats {
    fn options(&self, url: String) -> Result<crate::nats::NatsOptions, String> {
        if !url
            .split(',')
            .all(|u| u.starts_with("nats://") || u.starts_with("tls://") || !u.contains("://"))
        {
            let shown = crate::nats::NatsOptions::new(url).shown_url();
            return Err(format!(
                "'{shown}' is not a NATS URL (nats://HOST:PORT or tls://HOST:PORT)"
            ));
        }
        let mut o = crate::nats::NatsOptions::new(url);
        if let Some(s) = &self.stream {
            if s.is_empty() || s.contains(['.', '*', '>', ' ', '/', '\\']) {
                return Err(format!("--nats-stream: '{s}' is not a stream name"));
            }
            o.stream = s.clone();
        }
        if let Some(s) = &self.subject {
            if s.is_empty() || s.contains(['*', '>', ' ']) || s.starts_with('.') || s.ends_with('.')
            {
                return Err(format!("--nats-subject: '{s}' is not a subject prefix"));
            }
            o.prefix = s.clone();
        }
        o.creds = self.creds.clone();
        o.nkey = self.nkey.clone();
        o.tls = self.tls.clone();
        // Files are read and checked now: a missing key or a malformed seed is a
        // usage error (exit 2), not a failure at the first connection.
        o.check()?;
        Ok(o)
    }
}

/// `apiwatch detect`: only the options stage 2 reads.
fn detect_args(
    mut a: Args,
    sensor: SensorOptions,
    nats: Nats,
    positional: &[String],
) -> Result<Command, String> {
    if !positional.is_empty() {
        return Err(format!(
            "apiwatch detect takes no filter ('{}')",
            positional.join(" ")
        ));
    }
    if !sensor.files.is_empty() || sensor.interface.is_some() || nats.publish.is_some() {
        return Err(
            "apiwatch detect reads NATS (--from): -r, -i and --publish are for sensors".into(),
        );
    }
    let from = nats
        .from
        .clone()
        .ok_or("apiwatch detect needs --from nats://HOST:PORT")?;
    let shard = nats.shard.unwrap_or((1, 1));
    if nats.partitions.is_some() || nats.buffer.is_some() {
        return Err("--partitions and --publish-buffer are the sensor's (--publish)".into());
    }
    a.detect = Some(crate::nats::DetectOptions {
        nats: nats.options(from)?,
        shard,
        alerts: sensor.alerts.clone(),
        until_idle: nats.until_idle,
        max_lateness: nats.max_lateness.unwrap_or(2_000_000_000),
        endpoints: sensor.endpoints.clone(),
    });
    a.sensor = sensor;
    Ok(Command::Run(Box::new(a)))
}

/// An option that cannot apply to the run asked for is a usage error, never silently
/// ignored: someone who gives `--ring-size` to a replay, or `--web.linger` without a
/// metrics listener, expects it to do something, and a warning among the log lines
/// is easy to miss, while exit 2 is cheap to fix before the run. (Configuration file
/// keys are not checked this way: one file serves replays and live runs alike.)
fn applies_to_this_run(
    sensor: &SensorOptions,
    test_config: bool,
    live_only: &[&str],
    web_only: &[&str],
) -> Result<(), String> {
    if test_config {
        // `-T` checks what it is given (a web configuration file, say) without a run.
        return Ok(());
    }
    let live = sensor.interface.is_some();
    if live {
        if sensor.openmetrics_out.is_some() {
            // Snapshots are kept until the end: fine for a replay, unbounded for a sensor.
            return Err(
                "--openmetrics-out is for replays (-r); scrape /metrics when capturing live".into(),
            );
        }
        if sensor.replay_speed.is_some() {
            return Err(
                "--replay-speed applies to replays (-r); live capture runs in real time".into(),
            );
        }
        if sensor.web_linger.is_some() {
            return Err(
                "--web.linger applies to replays (-r); live capture serves metrics until it stops"
                    .into(),
            );
        }
    } else if let Some(o) = live_only.first() {
        return Err(if *o == "--user" {
            "--user applies to live capture (-i); a replay runs as whoever starts it".into()
        } else {
            format!("{o} applies to live capture (-i), not to a replay (-r)")
        });
    }
    if !sensor.web.enabled()
        && let Some(o) = web_only.first()
    {
        return Err(format!(
            "{o} needs a metrics listener (--web.listen-address or --web.systemd-socket)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lines_fit_a_terminal_and_name_every_option() {
        let u = usage();
        for l in u.lines() {
            assert!(l.chars().count() <= 80, "{l}");
        }
        for o in OPTIONS {
            assert!(u.contains(&format!("--{}", o.long)), "{}", o.long);
        }
        let longs: std::collections::HashSet<_> = OPTIONS.iter().map(|o| o.long).collect();
        assert_eq!(longs.len(), OPTIONS.len(), "an option is listed twice");
    }

    #[test]
    fn man_page_and_completions_cover_every_option() {
        let man = man_page();
        assert!(man.starts_with(".TH APIWATCH 1"));
        for shell in ["bash", "zsh", "fish"] {
            let c = completion(shell).unwrap();
            for o in OPTIONS {
                assert!(c.contains(o.long), "{shell}: {}", o.long);
            }
        }
        assert!(completion("tcsh").is_none());
        for o in OPTIONS {
            assert!(man.contains(&help::roff_escape(o.long)), "{}", o.long);
        }
    }
}
