//! The `apiwatch` command line: parse arguments, run, map errors to exit codes
//! (0 success, 1 runtime error, 2 usage or configuration error). Everything written
//! on stderr, errors included, is a line of the `--log.format` (`logging`).

use std::process::ExitCode;

use apiwatch::cli::Command;
use apiwatch::config::Config;
use apiwatch::export::summary;
use apiwatch::logging::{self, Value};
use apiwatch::sensor::{self, SensorError};

/// A usage error on the command line: one line, exit 2.
fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    logging::emit(
        tracing::Level::ERROR,
        &msg.to_string(),
        &[("hint", Value::from("see apiwatch --help"))],
    );
    ExitCode::from(2)
}

/// A fatal error: one line, then `code`.
fn fail(msg: impl std::fmt::Display, code: u8) -> ExitCode {
    logging::fatal(msg);
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // Even a mistake elsewhere on the line is reported in the format asked for.
    logging::set_format(apiwatch::cli::log_format_hint(&argv));
    let mut args = match apiwatch::cli::parse(argv) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => return usage_error(msg),
    };
    let level = match args.log_level {
        Some(l) => l,
        None => match std::env::var("APIWATCH_LOG") {
            Ok(v) => match logging::parse_level(&v) {
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
    logging::init(level, args.log_format);
    let mut cfg = match args.config.as_deref().map(Config::load).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(msg) => return fail(msg, 2),
    };
    if let Some(limit) = args.memory_limit {
        cfg.memory.limit = limit;
    }
    cfg.apply_memory_budget(args.sensor.workers);
    args.sensor.flow = cfg.flow;
    // A live capture follows the key file as it grows (a server writing its secrets
    // while it runs); a replay reads what it holds.
    let live = args.sensor.interface.is_some();
    let mut keylog = match args.tls_keylog.as_deref() {
        Some(path) => {
            let path = std::path::Path::new(path);
            let opened = if live {
                apiwatch::tls::KeyLog::follow(path)
            } else {
                apiwatch::tls::KeyLog::load(path).map(std::sync::Arc::new)
            };
            match opened {
                Ok(log) => Some(log),
                Err(e) => return fail(format!("--tls-keylog {}: {e}", path.display()), 2),
            }
        }
        None => None,
    };
    // Secrets a pcapng carries (Decryption Secrets Blocks) decrypt it too. A file that
    // cannot be read is the capture reader's to report.
    for path in &args.sensor.files {
        let Ok(mut lines) = apiwatch::capture::file::secrets::tls_key_log(path) else {
            continue;
        };
        if !lines.is_empty() {
            let log =
                keylog.get_or_insert_with(|| std::sync::Arc::new(apiwatch::tls::KeyLog::new()));
            let before = log.stats().secrets;
            log.read(&lines);
            apiwatch::tls::keylog::wipe(&mut lines);
            tracing::info!(
                "{path}: {} TLS secrets from its Decryption Secrets Blocks",
                log.stats().secrets - before
            );
        }
    }
    args.sensor.flow.keylog = keylog;
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
            Err(msg) => return fail(msg, 2),
        }
    }
    if let Some(d) = args.learning_period {
        args.sensor.detect.learning_period = d;
    }
    args.sensor.detect.spec = args.openapi.take();
    if args.test_config {
        logging::emit(
            tracing::Level::INFO,
            &format!(
                "Configuration {} is valid",
                args.config.as_deref().unwrap_or("(defaults)")
            ),
            &[],
        );
        return ExitCode::SUCCESS;
    }
    if let Some(d) = args.detect.take() {
        return match apiwatch::nats::detect(&d, args.sensor.detect.clone()) {
            Ok(r) => {
                if !args.quiet {
                    logging::emit(
                        tracing::Level::INFO,
                        "Detector finished",
                        &[
                            ("shard", Value::from(format!("{}/{}", d.shard.0, d.shard.1))),
                            ("exchanges", Value::from(r.exchanges)),
                            ("judged", Value::from(r.judged)),
                            ("alerts", Value::from(r.alerts)),
                            ("unreadable", Value::from(r.unreadable)),
                            ("late", Value::from(r.late)),
                            ("reordered", Value::from(r.reordered)),
                            ("rewritten", Value::from(r.rewritten)),
                            ("clocks", Value::from(r.clocks)),
                            ("interrupted", Value::from(r.interrupted.unwrap_or("no"))),
                        ],
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e @ apiwatch::nats::DetectError::Usage(_)) => fail(e, 2),
            Err(e) => fail(e, 1),
        };
    }
    match sensor::run(&args.sensor) {
        Ok(report) => {
            if let Some(c) = &report.published
                && !args.quiet
            {
                let fields: Vec<(&str, Value)> = c
                    .summary()
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect();
                logging::emit(tracing::Level::INFO, "Published to NATS", &fields);
            }
            // Errors first, so the first line says what went wrong; the summary only
            // when something was read.
            for e in &report.errors {
                logging::fatal(e);
            }
            let read_any = report.stats.capture.packets > 0;
            if !args.quiet && (report.errors.is_empty() || read_any) {
                summary::emit(
                    &report.stats,
                    &report.engine.stats,
                    &summary::RunInfo {
                        clients: report.engine.clients_tracked(),
                        exchanges: report.exchanges,
                        tls_connections: report.tls_connections,
                        elapsed: report.elapsed,
                        warnings: &report.warnings,
                        interrupted: report.interrupted,
                    },
                );
            }
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(SensorError::Usage(msg)) => fail(msg, 2),
        Err(SensorError::Runtime(msg)) => fail(msg, 1),
        // `apiwatch ... | head`: the reader has what it wanted.
        Err(SensorError::OutputClosed) => ExitCode::SUCCESS,
    }
}
