//! Reading a spec as hostile input. The file's size is bounded before it is read; one
//! parser reads it, chosen by the extension or the first byte; its nesting is checked
//! by one pass over the bytes before the parser sees them (a YAML parser is quadratic
//! in flow depth: 100 k `[` took 32 s); and every node the parser hands over,
//! including each one an alias repeats, is counted against a budget linear in the
//! file, so a YAML alias bomb (70 KB naming billions of nodes) is refused after
//! about a million, having built nothing: only the few fields a route needs are kept.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Largest spec read (bytes). The largest public specs (cloud providers' whole APIs)
/// are a few MB of JSON; the YAML parser keeps each event of a document, some
/// twenty bytes of memory per byte at worst, so this also bounds reading's memory.
pub const MAX_BYTES: u64 = 16 << 20;
/// Deepest nesting of collections. An OpenAPI document's own structure is some ten
/// levels; inline schemas add two per nested object. Both parsers stop at 128.
pub const MAX_DEPTH: usize = 64;
/// Nodes allowed beyond one per byte: what YAML aliases may add (shared anchors in a
/// hand-written spec repeat a few kilobytes, not a million nodes).
const EXTRA_NODES: u64 = 1 << 20;
/// Nodes a YAML spec may have, counted before parsing: the YAML parser keeps every
/// event of the document, about 136 bytes each (16 MiB of `- 1` lines took 544 MB),
/// so this bounds reading YAML to some 140 MB. A YAML spec has a node every ten bytes
/// or so: this is a 10 MB spec; a larger one can be given as JSON, read streaming.
pub const MAX_YAML_NODES: u64 = 1 << 20;

/// How the spec is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// By the file's extension; without one that says, by the first byte that is
    /// not white space (`{`: JSON).
    pub fn of(path: Option<&std::path::Path>, text: &str) -> Format {
        let ext = path
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => Format::Json,
            Some("yaml" | "yml") => Format::Yaml,
            _ if text.trim_start().starts_with('{') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// The parts of an OpenAPI document that routes come from.
#[derive(Debug, Default)]
pub struct Doc {
    /// `openapi` (3.x) or `swagger` (2.0).
    pub version: Option<String>,
    /// The first server's URL (3.x).
    pub server_url: Option<String>,
    /// `basePath` (2.0).
    pub base_path: Option<String>,
    /// Each path with the HTTP methods it declares, in the document's order; `None`
    /// when there is no `paths` map.
    pub paths: Option<Vec<(String, Vec<&'static str>)>>,
}

const METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
];

/// Reads the document; the error is one line saying what is wrong.
pub fn read(text: &str, format: Format) -> Result<Doc, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let nodes = check_nesting(text.as_bytes())?;
    if format == Format::Yaml && nodes > MAX_YAML_NODES {
        return Err(format!(
            "YAML with more than {MAX_YAML_NODES} nodes (give a spec this large as JSON)"
        ));
    }
    let budget = Budget(Cell::new(text.len() as u64 + EXTRA_NODES));
    let seed = DocSeed(&budget);
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let doc = seed
                .deserialize(&mut de)
                .map_err(|e| format!("JSON: {e}"))?;
            de.end().map_err(|e| format!("JSON: {e}"))?;
            Ok(doc)
        }
        Format::Yaml => seed
            .deserialize(serde_norway::Deserializer::from_str(text))
            .map_err(|e| match e.to_string() {
                // The parser's own bound on alias jumps (a hundred per event).
                e if e.starts_with("repetition limit") => {
                    format!("YAML: aliases repeat more than a hundred times the document ({e})")
                }
                e => format!("YAML: {e}"),
            }),
    }
}

/// Nodes the parser may still hand over.
struct Budget(Cell<u64>);

impl Budget {
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "more nodes than the file has bytes plus a million (YAML aliases expanding?)",
            )),
        }
    }
}

/// Walks a value the routes do not need, counting its nodes (aliases included).
#[derive(Clone, Copy)]
struct Skip<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Skip<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.0.spend()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.spend()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.spend()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // YAML tags (`!thing value`) arrive as enums: the tagged value is walked.
        use de::VariantAccess;
        self.0.spend()?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

/// A map key or scalar as text (`None` for anything else, which is walked).
struct Text<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Text<'_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("text")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
        self.0.spend()?;
        Ok(Some(v.to_string()))
    }
    // `openapi: 3.1` in YAML is a number.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<String>, E> {
        self.0.spend()?;
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<String>, E> {
        self.0.spend()?;
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<String>, E> {
        self.0.spend()?;
        Ok(Some(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<String>, E> {
        Skip(self.0).visit_bool(v).map(|()| None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Skip(self.0).visit_unit().map(|()| None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<String>, E> {
        Skip(self.0).visit_none().map(|()| None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<String>, A::Error> {
        Skip(self.0).visit_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<String>, A::Error> {
        Skip(self.0).visit_map(map).map(|()| None)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Option<String>, A::Error> {
        Skip(self.0).visit_enum(data).map(|()| None)
    }
}

/// Implements the seed and the visitor's boilerplate for a visitor of maps whose
/// other values are walked as [`Skip`].
macro_rules! map_seed {
    ($name:ident, $out:ty, $what:literal) => {
        impl<'de> DeserializeSeed<'de> for $name<'_> {
            type Value = $out;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<$out, D::Error> {
                d.deserialize_any(self)
            }
        }
        impl<'de> Visitor<'de> for $name<'_> {
            type Value = $out;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str($what)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$out, A::Error> {
                self.0.spend()?;
                self.map(map)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<$out, D::Error> {
                d.deserialize_any(self)
            }
            // Anything else is walked and yields nothing.
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<$out, E> {
                self.0.spend().map(|()| Default::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<$out, E> {
                self.0.spend().map(|()| Default::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<$out, E> {
                self.0.spend().map(|()| Default::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<$out, E> {
                self.0.spend().map(|()| Default::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<$out, E> {
                self.0.spend().map(|()| Default::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<$out, E> {
                self.0.spend().map(|()| Default::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<$out, E> {
                self.0.spend().map(|()| Default::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<$out, A::Error> {
                self.seq(seq)
            }
            fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<$out, A::Error> {
                Skip(self.0).visit_enum(data).map(|()| Default::default())
            }
        }
    };
}

/// The whole document.
struct DocSeed<'b>(&'b Budget);
map_seed!(DocSeed, Doc, "an OpenAPI document (a map)");

impl DocSeed<'_> {
    fn map<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut doc = Doc::default();
        while let Some(key) = map.next_key_seed(Text(self.0))? {
            match key.as_deref() {
                Some("openapi") => doc.version = map.next_value_seed(Text(self.0))?,
                Some("swagger") if doc.version.is_none() => {
                    doc.version = map.next_value_seed(Text(self.0))?
                }
                Some("basePath") => doc.base_path = map.next_value_seed(Text(self.0))?,
                Some("servers") => doc.server_url = map.next_value_seed(Servers(self.0))?,
                Some("paths") => doc.paths = map.next_value_seed(Paths(self.0))?,
                _ => map.next_value_seed(Skip(self.0))?,
            }
        }
        Ok(doc)
    }

    fn seq<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Doc, A::Error> {
        Skip(self.0).visit_seq(seq).map(|()| Doc::default())
    }
}

/// `servers`: the first one's `url`.
struct Servers<'b>(&'b Budget);
map_seed!(Servers, Option<String>, "a list of servers");

impl Servers<'_> {
    fn map<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut url = None;
        while let Some(key) = map.next_key_seed(Text(self.0))? {
            if key.as_deref() == Some("url") && url.is_none() {
                url = map.next_value_seed(Text(self.0))?;
            } else {
                map.next_value_seed(Skip(self.0))?;
            }
        }
        Ok(url)
    }

    fn seq<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        self.0.spend()?;
        // The first server only; a list of servers inside `servers` is not one.
        let first = seq.next_element_seed(ServerSeed(self.0))?.flatten();
        while seq.next_element_seed(Skip(self.0))?.is_some() {}
        Ok(first)
    }
}

/// One server object.
struct ServerSeed<'b>(&'b Budget);
map_seed!(ServerSeed, Option<String>, "a server");

impl ServerSeed<'_> {
    fn map<'de, A: MapAccess<'de>>(self, map: A) -> Result<Option<String>, A::Error> {
        Servers(self.0).map(map)
    }
    fn seq<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Option<String>, A::Error> {
        Skip(self.0).visit_seq(seq).map(|()| None)
    }
}

/// `paths`: each path and the methods of its item.
struct Paths<'b>(&'b Budget);
type PathList = Option<Vec<(String, Vec<&'static str>)>>;
map_seed!(Paths, PathList, "a map of paths");

impl Paths<'_> {
    fn map<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<PathList, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key_seed(Text(self.0))? {
            let methods = map.next_value_seed(Item(self.0))?;
            // A key that is not text is no path (refused by the caller as such).
            out.push((key.unwrap_or_default(), methods));
        }
        Ok(Some(out))
    }

    fn seq<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<PathList, A::Error> {
        Skip(self.0).visit_seq(seq).map(|()| None)
    }
}

/// A path item: the methods it declares.
struct Item<'b>(&'b Budget);
map_seed!(Item, Vec<&'static str>, "a path item");

impl Item<'_> {
    fn map<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<&'static str>, A::Error> {
        let mut methods = Vec::new();
        while let Some(key) = map.next_key_seed(Text(self.0))? {
            map.next_value_seed(Skip(self.0))?;
            let Some(key) = key else { continue };
            if let Some(m) = METHODS.iter().find(|m| m.eq_ignore_ascii_case(&key))
                && key.bytes().all(|b| b.is_ascii_lowercase())
                && !methods.contains(m)
            {
                methods.push(*m);
            }
        }
        Ok(methods)
    }

    fn seq<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<&'static str>, A::Error> {
        Skip(self.0).visit_seq(seq).map(|()| Vec::new())
    }
}

/// Refuses text nested deeper than [`MAX_DEPTH`] collections, in one pass over the
/// bytes, before a parser sees it. Flow collections (`[`, `{`: all of JSON) are
/// counted outside quoted scalars and comments, where a YAML parser would open one;
/// block nesting by the column its deepest node starts at. It errs towards counting
/// (a bracket inside a multi-line plain scalar counts), never towards missing one.
/// Returns how many nodes start in it (scalars and collections, as the scan sees them).
fn check_nesting(text: &[u8]) -> Result<u64, String> {
    /// Deepest block nesting, by column: two columns a level.
    const MAX_COLUMN: usize = 2 * MAX_DEPTH + 64;
    let mut depth = 0usize;
    let mut nodes = 0u64;
    let mut line = 1usize;
    let mut i = 0;
    let n = text.len();
    // Where the current line starts; whether a node may start here; the column of the
    // line's innermost block node; right after a quoted scalar (`"a":` is a key).
    let mut line_start = 0;
    let mut node = true;
    let mut block_col = 0;
    let mut after_quoted = false;
    // Inside a block scalar (`|`, `>`): lines indented past this column are text.
    let mut literal: Option<usize> = None;
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let at = |j: usize| text.get(j).copied();
    let nesting = |line: usize| format!("nested deeper than {MAX_DEPTH} levels (line {line})");
    let mut fresh_line = true;
    while i < n {
        if fresh_line {
            fresh_line = false;
            let indent = text[i..].iter().take_while(|b| **b == b' ').count();
            let rest = at(i + indent);
            let blank = matches!(rest, None | Some(b'\n' | b'\r' | b'#'));
            if let Some(col) = literal {
                if blank || indent > col {
                    i = memchr::memchr(b'\n', &text[i..]).map_or(n, |k| i + k);
                    continue;
                }
                literal = None;
            }
            if depth == 0 {
                node = true;
                block_col = indent;
                if text[i + indent..].starts_with(b"---") && at(i + indent + 3).is_none_or(space) {
                    i += indent + 3;
                    continue;
                }
            }
            if indent > MAX_COLUMN {
                return Err(nesting(line));
            }
            i += indent;
            continue;
        }
        let c = text[i];
        let prev_space = i == line_start || space(text[i - 1]);
        let next_space = at(i + 1).is_none_or(space);
        match c {
            b'\n' => {
                line += 1;
                line_start = i + 1;
                fresh_line = true;
            }
            b'#' if prev_space => {
                i = memchr::memchr(b'\n', &text[i..]).map_or(n, |k| i + k);
                continue;
            }
            b'"' | b'\'' if node => {
                nodes += 1;
                i = skip_quoted(text, i, &mut line, &mut line_start);
                node = false;
                after_quoted = true;
                continue;
            }
            b'[' | b'{' if node || depth > 0 => {
                nodes += 1;
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(nesting(line));
                }
                node = true;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                node = false;
            }
            b',' if depth > 0 => node = true,
            b':' if next_space
                || after_quoted
                || (depth > 0 && matches!(at(i + 1), Some(b',' | b'[' | b']' | b'{' | b'}'))) =>
            {
                node = true
            }
            b'-' | b'?' if node && next_space => {
                if depth == 0 {
                    block_col = i - line_start;
                    if block_col > MAX_COLUMN {
                        return Err(nesting(line));
                    }
                }
            }
            b'|' | b'>' if node && depth == 0 => {
                literal = Some(block_col);
                i = memchr::memchr(b'\n', &text[i..]).map_or(n, |k| i + k);
                continue;
            }
            b'&' | b'!' if node => {
                // An anchor or a tag: the node comes after it (its name ends at
                // a flow indicator too).
                while i < n
                    && !space(text[i])
                    && !matches!(text[i], b',' | b'[' | b']' | b'{' | b'}')
                {
                    i += 1;
                }
                continue;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => {
                if node {
                    nodes += 1;
                    if depth == 0 {
                        block_col = i - line_start;
                    }
                }
                node = false;
            }
        }
        if !matches!(c, b' ' | b'\t' | b'\r') {
            after_quoted = false;
        }
        i += 1;
    }
    Ok(nodes)
}

/// The position after the quoted scalar opening at `i` (the end of the text when it
/// is never closed: the parser will say so).
fn skip_quoted(text: &[u8], i: usize, line: &mut usize, line_start: &mut usize) -> usize {
    let q = text[i];
    let mut j = i + 1;
    while j < text.len() {
        match text[j] {
            b'\\' if q == b'"' => j += 1,
            b'\'' if q == b'\'' && text.get(j + 1) == Some(&b'\'') => j += 1,
            b'\n' => {
                *line += 1;
                // A continuation line of a quoted scalar starts no node.
                *line_start = j + 1;
            }
            c if c == q => return j + 1,
            _ => {}
        }
        j += 1;
    }
    text.len()
}

#[cfg(test)]
mod tests;
