//! `--exchanges-format zeek` against Zeek itself. Every capture of Zeek's test corpus
//! that ships Zeek's own expected http.log (`../shared/pcaps/zeek/expected`, when the
//! checkout has it) is replayed, and each record is compared column by column with
//! Zeek's row for the same exchange: connection 4-tuple and `trans_depth` pair them.
//! Logs written by `zeek-cut` without the connection columns (the http/261 smuggling
//! variants, invalid-content-ranges) are compared per column as multisets.
//!
//! Not compared, by design (docs/exchange-log.md, *zeek form*): `ts` (Zeek's test
//! baselines blank it), `uid` (ours is derived from the flow id so that alerts join;
//! Zeek's is random per run), `username`/`password` (never written: no secret leaves
//! the sensor) and the file-analysis columns (`*_fuids`, `*_filenames`,
//! `*_mime_types`: Zeek's file ids are random and its MIME types come from libmagic
//! content sniffing, which apiwatch does not do).
//!
//! The test prints one line per column (agreeing exchanges / compared exchanges) and
//! every disagreement; it fails when a column falls below its floor.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use common::{bin, repo};
use serde_json::Value;

/// Columns compared, in Zeek's order, with the share of compared exchanges that must
/// agree: 1.0 where every exchange agrees today, just below today's figure where
/// the HTTP parsers themselves differ (docs/exchange-log.md explains each
/// disagreement: HTTP/0.9 detection, decompressed body lengths).
const COLUMNS: &[(&str, f64)] = &[
    ("trans_depth", 1.0),
    ("method", 1.0),
    ("host", 0.9),
    ("uri", 1.0),
    ("referrer", 1.0),
    ("version", 0.9),
    ("user_agent", 1.0),
    ("origin", 1.0),
    ("request_body_len", 0.9),
    ("response_body_len", 0.85),
    ("status_code", 0.9),
    ("status_msg", 0.9),
    ("info_code", 1.0),
    ("info_msg", 1.0),
    ("tags", 1.0),
    ("proxied", 1.0),
];

/// Zeek's ASCII log writer's form of one value: `-` unset, `(empty)` an empty string
/// or set, set members joined with `,` (sorted: a set has no order), `\xNN` escapes
/// decoded to bytes.
fn zeek_text(v: Option<&Value>) -> Vec<u8> {
    match v {
        None | Some(Value::Null) => b"-".to_vec(),
        Some(Value::String(s)) if s.is_empty() => b"(empty)".to_vec(),
        Some(Value::String(s)) => unescape(s.as_bytes()),
        Some(Value::Array(a)) if a.is_empty() => b"(empty)".to_vec(),
        Some(Value::Array(a)) => {
            let mut items: Vec<Vec<u8>> = a.iter().map(|x| zeek_text(Some(x))).collect();
            items.sort();
            items.join(&b","[..])
        }
        Some(other) => other.to_string().into_bytes(),
    }
}

/// A TSV cell of Zeek's, sets sorted as in [`zeek_text`].
fn cell_text(cell: &str, set: bool) -> Vec<u8> {
    let b = unescape(cell.as_bytes());
    if !set || cell == "-" || cell == "(empty)" {
        return b;
    }
    let mut items: Vec<&[u8]> = b.split(|c| *c == b',').collect();
    items.sort();
    items.join(&b","[..])
}

/// `\xNN` to the byte it names (Zeek escapes bytes it will not print so; apiwatch
/// writes bytes that are not UTF-8 the same way).
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && s.get(i + 1) == Some(&b'x')
            && let Some(h) = s.get(i + 2..i + 4)
            && let Ok(n) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
        {
            out.push(n);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Zeek's log: its column names and rows. A `#fields` line names the columns; a log
/// written by `zeek-cut` has them as its first plain line instead.
fn read_log(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("read expected log");
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            header = Some(f.split('\t').map(String::from).collect());
        } else if line.starts_with('#') {
        } else if header.is_none() {
            header = Some(line.split('\t').map(String::from).collect());
        } else {
            rows.push(line.split('\t').map(String::from).collect());
        }
    }
    (header.unwrap_or_default(), rows)
}

fn zeek_form(capture: &Path) -> Vec<serde_json::Map<String, Value>> {
    let out = bin()
        .arg("-r")
        .arg(capture)
        .args(["--exchanges", "-", "--exchanges-format", "zeek"])
        .args(["--alerts", "/dev/null", "-q"])
        .output()
        .expect("run apiwatch");
    assert!(
        out.status.success(),
        "apiwatch failed on {}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    common::parse_lines(&out.stdout)
        .into_iter()
        .map(|v| match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    agree: usize,
    total: usize,
    disagreements: Vec<String>,
}

#[test]
fn zeek_form_agrees_with_zeeks_http_log() {
    let corpus = repo("../shared/pcaps/zeek");
    let index = corpus.join("expected/INDEX.tsv");
    if !index.exists() {
        common::skip(
            "../shared/pcaps/zeek is not beside this checkout: the zeek form is not compared \
             with Zeek's http.log (only the unit tests in src/export/zeek.rs ran)",
        );
        return;
    }
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let (mut zeek_rows, mut paired, mut unpaired, mut ours_unpaired) = (0, 0, 0, 0);
    let mut logs = 0;
    for line in std::fs::read_to_string(&index).unwrap().lines() {
        let Some((name, trace)) = line.split_once('\t') else {
            continue;
        };
        let (header, rows) = read_log(&corpus.join(format!("expected/{name}.http.log")));
        let ours = zeek_form(&corpus.join(trace));
        logs += 1;
        let col = |c: &str| header.iter().position(|h| h == c);
        let set = |c: &str| matches!(c, "tags" | "proxied");
        if let (Some(oh), Some(op), Some(rh), Some(rp), Some(d)) = (
            col("id.orig_h"),
            col("id.orig_p"),
            col("id.resp_h"),
            col("id.resp_p"),
            col("trans_depth"),
        ) {
            let key = |a: &str, b: &str, c: &str, d: &str, e: &str| format!("{a} {b} {c} {d} #{e}");
            let mut by_key: HashMap<String, &serde_json::Map<String, Value>> = HashMap::new();
            for r in &ours {
                let s = |k: &str| String::from_utf8_lossy(&zeek_text(r.get(k))).into_owned();
                by_key.insert(
                    key(
                        &s("id.orig_h"),
                        &s("id.orig_p"),
                        &s("id.resp_h"),
                        &s("id.resp_p"),
                        &s("trans_depth"),
                    ),
                    r,
                );
            }
            let mut used = 0;
            let zeek_keys: std::collections::HashSet<String> = rows
                .iter()
                .map(|row| key(&row[oh], &row[op], &row[rh], &row[rp], &row[d]))
                .collect();
            for k in by_key.keys().filter(|k| !zeek_keys.contains(*k)) {
                eprintln!("{name}: apiwatch's exchange {k} has no Zeek row");
            }
            for row in &rows {
                zeek_rows += 1;
                let k = key(&row[oh], &row[op], &row[rh], &row[rp], &row[d]);
                let Some(r) = by_key.get(&k) else {
                    unpaired += 1;
                    eprintln!("{name}: Zeek's exchange {k} has no apiwatch record");
                    continue;
                };
                paired += 1;
                used += 1;
                for (c, _) in COLUMNS {
                    let Some(i) = col(c) else { continue };
                    let zeek = cell_text(&row[i], set(c));
                    let mine = zeek_text(r.get(*c));
                    let t = tallies.entry(c).or_default();
                    t.total += 1;
                    if zeek == mine {
                        t.agree += 1;
                    } else {
                        t.disagreements.push(format!(
                            "{name} {k}: zeek {:?} apiwatch {:?}",
                            String::from_utf8_lossy(&zeek),
                            String::from_utf8_lossy(&mine)
                        ));
                    }
                }
            }
            ours_unpaired += ours.len().saturating_sub(used);
        } else {
            // No connection columns: each column's values as a multiset.
            zeek_rows += rows.len();
            for (c, _) in COLUMNS {
                let Some(i) = col(c) else { continue };
                let mut want: Vec<Vec<u8>> =
                    rows.iter().map(|r| cell_text(&r[i], set(c))).collect();
                let t = tallies.entry(c).or_default();
                t.total += rows.len();
                for r in &ours {
                    let mine = zeek_text(r.get(*c));
                    if let Some(p) = want.iter().position(|w| *w == mine) {
                        want.swap_remove(p);
                        t.agree += 1;
                    }
                }
                for w in want {
                    t.disagreements.push(format!(
                        "{name} (zeek-cut, no connection columns): zeek {:?} has no equal apiwatch value",
                        String::from_utf8_lossy(&w)
                    ));
                }
            }
        }
    }
    eprintln!(
        "{logs} logs, {zeek_rows} Zeek exchanges: {paired} paired with an apiwatch record \
         by connection and trans_depth, {unpaired} not; {ours_unpaired} apiwatch records \
         without a Zeek row (in logs with connection columns)"
    );
    let mut low = Vec::new();
    for (c, floor) in COLUMNS {
        let t = tallies.get(c).expect("column compared");
        let share = t.agree as f64 / t.total.max(1) as f64;
        eprintln!("{c:>18}: {:>4} / {:<4} agree", t.agree, t.total);
        for d in &t.disagreements {
            eprintln!("{:>18}  {d}", "");
        }
        if share < *floor {
            low.push(format!("{c} {}/{} < {floor}", t.agree, t.total));
        }
    }
    assert!(paired >= 100, "only {paired} exchanges paired with Zeek's");
    assert!(low.is_empty(), "columns below their floor: {low:?}");
}
