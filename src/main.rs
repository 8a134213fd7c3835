//! The `apiwatch` command line: parse arguments, run, map errors to exit codes
//! (0 success, 1 runtime error, 2 usage or configuration error).

use std::process::ExitCode;

use apiwatch::config::{Config, parse_duration};
use apiwatch::export::summary;
use apiwatch::sensor::{self, SensorError, SensorOptions};

struct Args {
    sensor: SensorOptions,
    log_level: Option<tracing::Level>,
    log_format: apiwatch::logging::LogFormat,
    ring_mib: Option<usize>,
    block_timeout_ms: Option<u32>,
    quiet: bool,
    config: Option<String>,
    test_config: bool,
    learning_period: Option<u64>,
    memory_limit: Option<u64>,
    web_config: Option<String>,
    openapi: Option<std::sync::Arc<apiwatch::routes::spec::Spec>>,
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("apiwatch: {msg}");
    eprintln!("Try 'apiwatch --help' for more information.");
    ExitCode::from(2)
}

fn string_value(p: &mut lexopt::Parser) -> Result<String, String> {
    use lexopt::ValueExt;
    p.value()
        .map_err(|e| e.to_string())?
        .string()
        .map_err(|e| e.to_string())
}

fn parse_args() -> Result<Option<Args>, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let mut sensor = SensorOptions {
        // As DESIGN.md's CLI says: one worker per available core unless told.
        workers: std::thread::available_parallelism().map_or(1, |n| n.get().min(256)),
        ..Default::default()
    };
    let mut quiet = false;
    let mut ring_mib = None;
    let mut block_timeout_ms = None;
    let mut config = None;
    let mut test_config = false;
    let mut learning_period = None;
    let mut memory_limit = None;
    let mut openapi = None;
    let mut web_config = None;
    let mut log_level = None;
    let mut log_format = apiwatch::logging::LogFormat::default();
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
                let spec = apiwatch::routes::spec::Spec::load(std::path::Path::new(&v))
                    .map_err(|e| format!("--openapi {v}: {e}"))?;
                openapi = Some(std::sync::Arc::new(spec));
            }
            Long("workers") => {
                let v = string_value(&mut p)?;
                match v.parse::<usize>() {
                    Ok(n) if (1..=256).contains(&n) => sensor.workers = n,
                    _ => return Err(format!("--workers: '{v}' is not a number from 1 to 256")),
                }
            }
            Long("learning-period") => {
                let v = string_value(&mut p)?;
                let max = apiwatch::config::max_duration("detect.learning_period");
                match parse_duration(&v) {
                    Some(d) if (1..=max).contains(&d) => learning_period = Some(d),
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
                memory_limit = Some(
                    apiwatch::config::memory_limit(&v)
                        .map_err(|e| format!("--memory-limit: {e}"))?,
                );
            }
            Long("ring-size") => {
                let v = string_value(&mut p)?;
                match v.parse::<usize>() {
                    Ok(n) if (1..=4096).contains(&n) => ring_mib = Some(n),
                    _ => {
                        return Err(format!(
                            "--ring-size: '{v}' is not a size in MiB from 1 to 4096"
                        ));
                    }
                }
            }
            Long("block-timeout") => {
                let v = string_value(&mut p)?;
                block_timeout_ms =
                    Some(apiwatch::config::parse_block_timeout(&v).ok_or_else(|| {
                        format!("--block-timeout: '{v}' is not a duration from 1ms to 10s")
                    })?);
            }
            Long("user") => sensor.user = Some(string_value(&mut p)?),
            Long("capture-backend") => {
                let v = string_value(&mut p)?;
                sensor.backend = match v.as_str() {
                    "af-packet" | "afpacket" => sensor::Backend::AfPacket,
                    "libpcap" | "pcap" => sensor::Backend::Libpcap,
                    _ => {
                        return Err(format!(
                            "--capture-backend: '{v}' is not af-packet or libpcap"
                        ));
                    }
                };
            }
            Short('c') | Long("config") => config = Some(string_value(&mut p)?),
            Short('T') | Long("test-config") => test_config = true,
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
            }
            Long("web.telemetry-path") => {
                let v = string_value(&mut p)?;
                if !v.starts_with('/') {
                    return Err(format!("--web.telemetry-path: '{v}' must start with '/'"));
                }
                sensor.web.path = v;
            }
            Long("web.linger") => {
                let v = string_value(&mut p)?;
                let d = parse_duration(&v)
                    .ok_or_else(|| format!("--web.linger: '{v}' is not a duration (e.g. 30s)"))?;
                sensor.web_linger = Some(std::time::Duration::from_nanos(d));
            }
            Long("web.config.file") => web_config = Some(string_value(&mut p)?),
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
            Short('q') | Long("quiet") => quiet = true,
            Short('h') | Long("help") => {
                print!("{}", apiwatch::cli::usage());
                return Ok(None);
            }
            Long("log.level") => {
                log_level = Some(apiwatch::logging::parse_level(&string_value(&mut p)?)?)
            }
            Long("log.format") => log_format = string_value(&mut p)?.parse()?,
            Long("build-info") => {
                print!("{}", apiwatch::cli::build_info());
                return Ok(None);
            }
            Long("generate-man") => {
                print!("{}", apiwatch::cli::man_page());
                return Ok(None);
            }
            Long("completions") => {
                let shell = string_value(&mut p)?;
                let script = apiwatch::cli::completion(&shell)
                    .ok_or_else(|| format!("--completions: '{shell}' is not bash, zsh or fish"))?;
                print!("{script}");
                return Ok(None);
            }
            Short('V') | Long("version") => {
                println!("apiwatch {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            Value(v) => positional.push(v.string().map_err(|e| e.to_string())?),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    // Trailing words are a filter expression, always: every input file has its own
    // `-r` (a file named `80` in the working directory must not turn `tcp port 80`
    // into an input).
    let filter = positional;
    if !filter.is_empty() {
        let f = apiwatch::capture::bpf::Filter::new(&filter.join(" ")).map_err(|e| match filter
            .iter()
            .find(|w| std::path::Path::new(w).is_file())
        {
            Some(file) => format!("{e} ('{file}' is a file: give each input its own -r)"),
            None => e.to_string(),
        })?;
        sensor.filter = Some(f);
    }
    if sensor.files.is_empty() && sensor.interface.is_none() && !test_config {
        return Err(
            "nothing to do: give a capture with -r FILE or an interface with -i IFACE".into(),
        );
    }
    if !sensor.files.is_empty() && sensor.interface.is_some() {
        return Err("-r and -i exclude each other: replay files or capture live".into());
    }
    if sensor.interface.is_some() && sensor.openmetrics_out.is_some() {
        // Snapshots are kept until the end: fine for a replay, unbounded for a sensor.
        return Err(
            "--openmetrics-out is for replays (-r); scrape /metrics when capturing live".into(),
        );
    }
    if sensor.interface.is_none() && sensor.user.is_some() {
        return Err(
            "--user applies to live capture (-i); a replay runs as whoever starts it".into(),
        );
    }
    Ok(Some(Args {
        sensor,
        log_level,
        log_format,
        ring_mib,
        block_timeout_ms,
        quiet,
        config,
        test_config,
        learning_period,
        memory_limit,
        web_config,
        openapi,
    }))
}

fn main() -> ExitCode {
    let mut args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(msg) => return usage_error(msg),
    };
    let level = match args.log_level {
        Some(l) => l,
        None => match std::env::var("APIWATCH_LOG") {
            Ok(v) => match apiwatch::logging::parse_level(&v) {
                Ok(l) => l,
                Err(_) => {
                    return usage_error(format!(
                        "APIWATCH_LOG: '{v}' is not debug, info, warn or error"
                    ));
                }
            },
            Err(_) => tracing::Level::WARN,
        },
    };
    apiwatch::logging::init(level, args.log_format);
    let mut cfg = match args.config.as_deref().map(Config::load).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(msg) => {
            eprintln!("apiwatch: {msg}");
            return ExitCode::from(2);
        }
    };
    if let Some(limit) = args.memory_limit {
        cfg.memory.limit = limit;
    }
    cfg.apply_memory_budget(args.sensor.workers);
    args.sensor.flow = cfg.flow;
    args.sensor.ring = cfg.capture;
    if let Some(n) = args.ring_mib {
        args.sensor.ring.ring_mib = n;
    }
    if let Some(ms) = args.block_timeout_ms {
        args.sensor.ring.block_timeout_ms = ms;
    }
    args.sensor.detect = cfg.detect;
    if let Some(path) = args.web_config.as_deref() {
        match apiwatch::metrics::webconfig::WebSource::load(path) {
            Ok((source, cfg)) => {
                for w in &cfg.warnings {
                    tracing::warn!("{path}: {w}");
                }
                args.sensor.web.config = std::sync::Arc::new(source);
            }
            Err(msg) => {
                eprintln!("apiwatch: {msg}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(d) = args.learning_period {
        args.sensor.detect.learning_period = d;
    }
    args.sensor.detect.spec = args.openapi.take();
    if args.test_config {
        eprintln!(
            "apiwatch: configuration {} is valid",
            args.config.as_deref().unwrap_or("(defaults)")
        );
        return ExitCode::SUCCESS;
    }
    match sensor::run(&args.sensor) {
        Ok(report) => {
            // Errors first, so the first line says what went wrong; the summary only
            // when something was read.
            for e in &report.errors {
                eprintln!("apiwatch: {e}");
            }
            let read_any = report.stats.capture.packets > 0;
            if !args.quiet && (report.errors.is_empty() || read_any) {
                eprint!(
                    "{}",
                    summary::render(
                        &report.stats,
                        &report.engine.stats,
                        report.engine.clients_tracked(),
                        report.exchanges,
                        report.elapsed,
                        &report.warnings
                    )
                );
            }
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(SensorError::Usage(msg)) => {
            eprintln!("apiwatch: {msg}");
            ExitCode::from(2)
        }
        Err(SensorError::Runtime(msg)) => {
            eprintln!("apiwatch: {msg}");
            ExitCode::from(1)
        }
        // `apiwatch ... | head`: the reader has what it wanted.
        Err(SensorError::OutputClosed) => ExitCode::SUCCESS,
    }
}
