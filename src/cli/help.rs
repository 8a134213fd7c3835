//! What the option table renders: `--help`, the man page (`--generate-man`), the
//! shell completions (`--completions SHELL`) and `--build-info`.

use std::fmt::Write as _;

use super::Complete::*;
use super::{OPTIONS, Opt};

const SYNOPSIS: [&str; 3] = [
    "apiwatch -r FILE [-r FILE]... [OPTIONS] [FILTER...]",
    "apiwatch -i IFACE [OPTIONS] [FILTER...]",
    "apiwatch detect --from nats://HOST:PORT --shard K/N [OPTIONS]",
];

const ABOUT: &str = "Passive API-traffic anomaly detector: reassembles TCP, reconstructs HTTP/1.x \
exchanges, learns per-client baselines and raises alerts (bursts, credential stuffing, brute \
force, endpoint scans, unusual endpoints, object enumeration) as Suricata EVE records and \
Prometheus metrics.";

const FILTER_HELP: &str =
    "Trailing words are a capture filter, as tcpdump's: apiwatch -i eth0 tcp port 80 or 8080";

fn flag_text(o: &Opt) -> String {
    let mut s = match o.short {
        Some(c) => format!("-{c}, --{}", o.long),
        None => format!("    --{}", o.long),
    };
    if let Some(v) = o.value {
        let _ = write!(s, " <{v}>");
    }
    s
}

/// Words of `text` in lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for w in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.len() + 1 + w.len() > width {
            lines.push(w.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(w);
        }
    }
    lines
}

/// `--help`.
pub fn usage() -> String {
    let mut s = String::new();
    for (i, syn) in SYNOPSIS.iter().enumerate() {
        let _ = writeln!(s, "{} {syn}", if i == 0 { "Usage:" } else { "      " });
    }
    for l in wrap(ABOUT, 78) {
        let _ = writeln!(s, "{l}");
    }
    const COL: usize = 30;
    let mut section = "";
    for o in OPTIONS {
        if o.section != section {
            section = o.section;
            let _ = writeln!(s, "\n{section}:");
        }
        let flag = flag_text(o);
        let help = wrap(o.help, 78 - COL);
        if flag.len() + 2 < COL {
            let _ = writeln!(s, "  {flag:<w$}{}", help[0], w = COL - 2);
        } else {
            let _ = writeln!(s, "  {flag}");
            let _ = writeln!(s, "{:COL$}{}", "", help[0]);
        }
        for l in &help[1..] {
            let _ = writeln!(s, "{:COL$}{l}", "");
        }
    }
    let _ = writeln!(s);
    for l in wrap(FILTER_HELP, 78) {
        let _ = writeln!(s, "{l}");
    }
    s
}

pub(super) fn roff_escape(t: &str) -> String {
    let t = t.replace('\\', "\\e").replace('-', "\\-");
    // A line starting with a dot or quote would be a request.
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The man page, section 1, in roff (man macros).
pub fn man_page() -> String {
    let mut s = String::new();
    let version = env!("CARGO_PKG_VERSION");
    let _ = writeln!(
        s,
        ".TH APIWATCH 1 \"\" \"apiwatch {version}\" \"User Commands\""
    );
    let _ = writeln!(
        s,
        ".SH NAME\napiwatch \\- passive API\\-traffic anomaly detector"
    );
    let _ = writeln!(s, ".SH SYNOPSIS");
    for syn in SYNOPSIS {
        let _ = writeln!(s, ".B {}\n.br", roff_escape(syn));
    }
    let _ = writeln!(s, ".SH DESCRIPTION\n{}", roff_escape(ABOUT));
    let _ = writeln!(s, ".PP\n{}", roff_escape(FILTER_HELP));
    let mut section = "";
    for o in OPTIONS {
        if o.section != section {
            section = o.section;
            let _ = writeln!(s, ".SH {}", roff_escape(&section.to_uppercase()));
        }
        let mut flag = match o.short {
            Some(c) => format!("\\fB\\-{c}\\fR, \\fB\\-\\-{}\\fR", roff_escape(o.long)),
            None => format!("\\fB\\-\\-{}\\fR", roff_escape(o.long)),
        };
        if let Some(v) = o.value {
            let _ = write!(flag, " \\fI{v}\\fR");
        }
        let _ = writeln!(s, ".TP\n{flag}\n{}", roff_escape(o.help));
    }
    let _ = writeln!(
        s,
        ".SH EXIT STATUS\n0 success, 1 runtime error, 2 usage or configuration error."
    );
    let _ = writeln!(
        s,
        ".SH SIGNALS\nSIGINT and SIGTERM finish what was read, write alerts, summary (which says the run was interrupted) and state, and exit 0. SIGHUP reopens the output files (log rotation)."
    );
    let _ = writeln!(
        s,
        ".SH ENVIRONMENT\n.TP\n.B APIWATCH_LOG\nlog level when \\fB\\-\\-log.level\\fR is not given (debug, info, warn, error)."
    );
    let _ = writeln!(
        s,
        ".SH SEE ALSO\n.BR tcpdump (8),\n.BR zeek (8),\n.BR suricata (1),\n.BR prometheus (1)"
    );
    s
}

fn values_of(o: &Opt) -> Option<String> {
    match o.complete {
        Choice(c) => Some(c.join(" ")),
        _ => None,
    }
}

/// A completion script for `shell` (bash, zsh or fish).
pub fn completion(shell: &str) -> Option<String> {
    let mut s = String::new();
    match shell {
        "bash" => {
            let words: Vec<String> = OPTIONS
                .iter()
                .flat_map(|o| {
                    let mut v = vec![format!("--{}", o.long)];
                    v.extend(o.short.map(|c| format!("-{c}")));
                    v
                })
                .collect();
            let _ = writeln!(
                s,
                "# bash completion for apiwatch (generated: apiwatch --completions bash)"
            );
            let _ = writeln!(s, "_apiwatch() {{");
            let _ = writeln!(s, "    local cur prev");
            let _ = writeln!(s, "    cur=\"${{COMP_WORDS[COMP_CWORD]}}\"");
            let _ = writeln!(s, "    prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"");
            let _ = writeln!(s, "    case \"$prev\" in");
            for o in OPTIONS.iter().filter(|o| o.value.is_some()) {
                let mut names = format!("--{}", o.long);
                if let Some(c) = o.short {
                    let _ = write!(names, "|-{c}");
                }
                let action = match o.complete {
                    File => "COMPREPLY=($(compgen -f -- \"$cur\"))".to_string(),
                    Interface => {
                        "COMPREPLY=($(compgen -W \"$(ls /sys/class/net 2>/dev/null)\" -- \"$cur\"))"
                            .to_string()
                    }
                    Choice(_) => format!(
                        "COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))",
                        values_of(o).unwrap_or_default()
                    ),
                    Nothing => "COMPREPLY=()".to_string(),
                };
                let _ = writeln!(s, "        {names}) {action}; return ;;");
            }
            let _ = writeln!(s, "    esac");
            let _ = writeln!(
                s,
                "    COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))",
                words.join(" ")
            );
            let _ = writeln!(s, "}}\ncomplete -F _apiwatch apiwatch");
        }
        "zsh" => {
            let _ = writeln!(
                s,
                "#compdef apiwatch\n# zsh completion for apiwatch (generated: apiwatch --completions zsh)"
            );
            let _ = writeln!(s, "_arguments -s \\");
            for o in OPTIONS {
                let help = o
                    .help
                    .replace('\'', "'\\''")
                    .replace('[', "(")
                    .replace(']', ")")
                    .replace(':', "\\:");
                let action = match (o.value, o.complete) {
                    (None, _) => String::new(),
                    (Some(v), File) => format!(":{v}:_files"),
                    (Some(v), Interface) => format!(":{v}:_net_interfaces"),
                    (Some(v), Choice(_)) => format!(":{v}:({})", values_of(o).unwrap_or_default()),
                    (Some(v), Nothing) => format!(":{v}: "),
                };
                let repeat = if matches!(o.long, "read" | "web.listen-address") {
                    "*"
                } else {
                    ""
                };
                match o.short {
                    Some(c) => {
                        let _ = writeln!(
                            s,
                            "  '{repeat}(-{c} --{l})'{{-{c},--{l}}}'[{help}]{action}' \\",
                            l = o.long
                        );
                    }
                    None => {
                        let _ = writeln!(s, "  '{repeat}--{}[{help}]{action}' \\", o.long);
                    }
                }
            }
            let _ = writeln!(s, "  '*:filter expression: '");
        }
        "fish" => {
            let _ = writeln!(
                s,
                "# fish completion for apiwatch (generated: apiwatch --completions fish)"
            );
            for o in OPTIONS {
                let mut line = format!("complete -c apiwatch -l {}", o.long);
                if let Some(c) = o.short {
                    let _ = write!(line, " -s {c}");
                }
                match (o.value, o.complete) {
                    (None, _) => {}
                    (Some(_), File) => line.push_str(" -r -F"),
                    (Some(_), Interface) => line.push_str(" -x -a '(__fish_print_interfaces)'"),
                    (Some(_), Choice(_)) => {
                        let _ = write!(line, " -x -a '{}'", values_of(o).unwrap_or_default());
                    }
                    (Some(_), Nothing) => line.push_str(" -x"),
                }
                let _ = write!(line, " -d '{}'", o.help.replace('\'', "\\'"));
                let _ = writeln!(s, "{line}");
            }
        }
        _ => return None,
    }
    Some(s)
}

/// `--build-info`: what a bug report needs.
pub fn build_info() -> String {
    format!(
        "apiwatch {}\nrevision: {}\nfeatures: {}\nrustc: {}\ntarget: {}\nprofile: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("APIWATCH_GIT_REVISION"),
        features(),
        env!("APIWATCH_RUSTC_VERSION"),
        env!("APIWATCH_TARGET"),
        env!("APIWATCH_PROFILE"),
    )
}

/// Cargo features compiled in.
pub fn features() -> &'static str {
    if cfg!(feature = "libpcap") {
        "libpcap"
    } else {
        "(none)"
    }
}

/// The git revision the binary was built from (`unknown` outside a checkout).
pub fn revision() -> &'static str {
    env!("APIWATCH_GIT_REVISION")
}
