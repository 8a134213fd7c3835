//! Capture filters: tcpdump's expression language compiled to classic BPF, run by the
//! kernel on live sockets and by [`Program::matches`] on capture files.
//!
//! Without the `libpcap` feature a built-in compiler handles the forms a sensor
//! usually needs, with libpcap's meaning (checked against tcpdump in tests/filter.rs):
//!
//! - `ip`, `ip6`, `tcp`, `udp`, `icmp`, `arp`
//! - `[src|dst] host ADDR` (IPv4 or IPv6), `[src|dst] net ADDR/LEN`
//! - `[tcp|udp] [src|dst] port N`, `[tcp|udp] [src|dst] portrange N-M`
//! - `and` / `&&`, `or` / `||`, `not` / `!`, parentheses, and tcpdump's shorthand of
//!   leaving out a repeated qualifier (`tcp port 80 or 8080`).
//!
//! With the feature, libpcap compiles the expression, so every form tcpdump accepts
//! works.

use std::collections::HashMap;
use std::net::IpAddr;

use super::BpfInsn;
use crate::decode::linktype;

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
pub const MAX_PROGRAM: usize = 4096;

// Instruction classes and modes (linux/filter.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const AND: u16 = 0x50;
const K: u16 = 0x00;
const X: u16 = 0x08;

/// Bytes a matching packet keeps (the whole packet).
const ACCEPT: u32 = 262_144;

fn insn(code: u16, k: u32) -> BpfInsn {
    BpfInsn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A compiled filter for one link type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(pub Vec<BpfInsn>);

impl Program {
    /// Runs the program over a packet, as the kernel would: true when it accepts.
    /// Loads past the end of the packet reject it.
    pub fn matches(&self, pkt: &[u8]) -> bool {
        let prog = &self.0;
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; 16];
        let mut pc = 0usize;
        let load = |off: u32, size: u16| -> Option<u32> {
            let o = off as usize;
            let n = match size {
                W => 4,
                H => 2,
                _ => 1,
            };
            let b = pkt.get(o..o.checked_add(n)?)?;
            Some(b.iter().fold(0u32, |v, x| (v << 8) | u32::from(*x)))
        };
        // Every jump goes forward, so a program of n instructions runs at most n steps.
        while let Some(i) = prog.get(pc) {
            pc += 1;
            let src = if i.code & X != 0 { x } else { i.k };
            match i.code & 0x07 {
                LD => {
                    a = match i.code & 0xe0 {
                        IMM => i.k,
                        ABS => match load(i.k, i.code & 0x18) {
                            Some(v) => v,
                            None => return false,
                        },
                        IND => match load(x.wrapping_add(i.k), i.code & 0x18) {
                            Some(v) => v,
                            None => return false,
                        },
                        MEM => mem[(i.k & 15) as usize],
                        LEN => pkt.len() as u32,
                        _ => return false,
                    }
                }
                LDX => {
                    x = match i.code & 0xe0 {
                        IMM => i.k,
                        MEM => mem[(i.k & 15) as usize],
                        LEN => pkt.len() as u32,
                        MSH => match load(i.k, B) {
                            Some(v) => 4 * (v & 0xf),
                            None => return false,
                        },
                        _ => return false,
                    }
                }
                ST => mem[(i.k & 15) as usize] = a,
                STX => mem[(i.k & 15) as usize] = x,
                ALU => {
                    a = match i.code & 0xf0 {
                        0x00 => a.wrapping_add(src),
                        0x10 => a.wrapping_sub(src),
                        0x20 => a.wrapping_mul(src),
                        0x30 => match a.checked_div(src) {
                            Some(v) => v,
                            None => return false,
                        },
                        0x40 => a | src,
                        0x50 => a & src,
                        0x60 => a.checked_shl(src).unwrap_or(0),
                        0x70 => a.checked_shr(src).unwrap_or(0),
                        0x80 => a.wrapping_neg(),
                        0x90 => match a.checked_rem(src) {
                            Some(v) => v,
                            None => return false,
                        },
                        0xa0 => a ^ src,
                        _ => return false,
                    }
                }
                JMP => {
                    let taken = match i.code & 0xf0 {
                        JA => {
                            pc = pc.saturating_add(i.k as usize);
                            continue;
                        }
                        JEQ => a == src,
                        JGT => a > src,
                        JGE => a >= src,
                        JSET => a & src != 0,
                        _ => return false,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                RET => {
                    let v = if i.code & 0x18 == 0x10 { a } else { i.k };
                    return v != 0;
                }
                MISC => {
                    if i.code & 0xf8 == 0 {
                        x = a;
                    } else {
                        a = x;
                    }
                }
                _ => return false,
            }
        }
        false
    }
}

/// A filter that does not compile, worded for the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capture filter '{expr}': {why}")]
pub struct FilterError {
    pub expr: String,
    pub why: String,
}

/// A filter expression and its programs, one per link type met.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: String,
    programs: HashMap<u32, Option<Program>>,
}

impl Filter {
    /// Checks the expression once (for Ethernet) so a typo fails before anything runs.
    pub fn new(expr: &str) -> Result<Filter, FilterError> {
        let mut f = Filter {
            expr: expr.to_string(),
            programs: HashMap::new(),
        };
        let p = compile(expr, linktype::ETHERNET)?;
        f.programs.insert(linktype::ETHERNET, Some(p));
        Ok(f)
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The program for `link` (compiled on first use).
    pub fn program(&mut self, link: u32) -> Result<Program, FilterError> {
        if let Some(Some(p)) = self.programs.get(&link) {
            return Ok(p.clone());
        }
        let p = compile(&self.expr, link)?;
        self.programs.insert(link, Some(p.clone()));
        Ok(p)
    }

    /// Whether a captured frame passes. A link type the filter cannot be compiled for
    /// passes nothing (and is reported once).
    pub fn matches(&mut self, link: u32, data: &[u8]) -> bool {
        if !self.programs.contains_key(&link) {
            let p = match compile(&self.expr, link) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(
                        linktype = link,
                        "{e}; packets of this link type are skipped"
                    );
                    None
                }
            };
            self.programs.insert(link, p);
        }
        match &self.programs[&link] {
            Some(p) => p.matches(data),
            None => false,
        }
    }
}

/// Compiles `expr` for frames of link type `link` (with libpcap when built with it).
pub fn compile(expr: &str, link: u32) -> Result<Program, FilterError> {
    #[cfg(feature = "libpcap")]
    {
        // BSD loopback headers carry the writer's AF_INET6, which differs between
        // systems; libpcap compiling for a dead handle assumes this host's value. The
        // built-in compiler looks at the IP version instead, when it knows the form.
        if (link == linktype::NULL || link == linktype::LOOP)
            && let Ok(p) = compile_builtin(expr, link)
        {
            return Ok(p);
        }
        libpcap_compile(expr, link).map_err(|why| FilterError {
            expr: expr.to_string(),
            why,
        })
    }
    #[cfg(not(feature = "libpcap"))]
    {
        compile_builtin(expr, link)
    }
}

/// The built-in compiler (the forms listed in the module documentation).
pub fn compile_builtin(expr: &str, link: u32) -> Result<Program, FilterError> {
    let err = |why: String| FilterError {
        expr: expr.to_string(),
        why,
    };
    let layout = Layout::of(link).ok_or_else(|| {
        err(format!(
            "the built-in compiler does not know link type {link} (build with --features libpcap)"
        ))
    })?;
    let tree = Parser::new(expr).parse().map_err(err)?;
    let mut g = Gen::default();
    let (t, f) = (g.label(), g.label());
    g.node(&tree, &layout, t, f);
    g.place(t);
    g.code.push(Op::Insn(insn(RET | K, ACCEPT)));
    g.place(f);
    g.code.push(Op::Insn(insn(RET | K, 0)));
    g.finish().map(Program).map_err(err)
}

/// libpcap compiles for the link type, optimised, as tcpdump does.
#[cfg(feature = "libpcap")]
fn libpcap_compile(expr: &str, link: u32) -> Result<Program, String> {
    // libpcap wants DLT_* numbers; they equal LINKTYPE_* except for raw IP.
    let dlt = if link == linktype::RAW {
        12
    } else {
        link as i32
    };
    let cap = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| e.to_string())?;
    let prog = cap.compile(expr, true).map_err(|e| e.to_string())?;
    let insns = prog.get_instructions();
    if insns.len() > MAX_PROGRAM {
        return Err(format!(
            "too long for the kernel ({} instructions, at most {MAX_PROGRAM})",
            insns.len()
        ));
    }
    insns
        .iter()
        .map(|i| {
            // The crate exposes instructions only through Display: "code jt jf k".
            let text = i.to_string();
            let v: Vec<u32> = text.split(' ').filter_map(|x| x.parse().ok()).collect();
            let bad = || format!("unexpected instruction from libpcap: {text}");
            match v[..] {
                [code, jt, jf, k] => Ok(BpfInsn {
                    code: u16::try_from(code).map_err(|_| bad())?,
                    jt: u8::try_from(jt).map_err(|_| bad())?,
                    jf: u8::try_from(jf).map_err(|_| bad())?,
                    k,
                }),
                _ => Err(bad()),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Program)
}

/// Where the network layer starts and how its protocol is told.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Offset of the IP header.
    net: u32,
    /// Offset of a 16-bit EtherType, or `None` to look at the IP version nibble.
    ethertype: Option<u32>,
}

impl Layout {
    fn of(link: u32) -> Option<Layout> {
        Some(match link {
            linktype::ETHERNET => Layout {
                net: 14,
                ethertype: Some(12),
            },
            linktype::LINUX_SLL => Layout {
                net: 16,
                ethertype: Some(14),
            },
            linktype::LINUX_SLL2 => Layout {
                net: 20,
                ethertype: Some(0),
            },
            linktype::RAW | linktype::IPV4 | linktype::IPV6 | 12 | 14 => Layout {
                net: 0,
                ethertype: None,
            },
            linktype::NULL | linktype::LOOP => Layout {
                net: 4,
                ethertype: None,
            },
            _ => return None,
        })
    }
}

/// The expression tree.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Prim(Prim),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Ip,
    Ip6,
    Tcp,
    Udp,
    Icmp,
    Arp,
}

#[derive(Debug, Clone, PartialEq)]
enum Prim {
    Proto(Proto),
    /// Address and prefix length.
    Host(Dir, IpAddr, u8),
    /// Transport (`None`: tcp or udp), direction, inclusive range.
    Port(Option<Proto>, Dir, u16, u16),
}

/// What a bare value after `and`/`or` means: the qualifiers of the last primitive.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Host,
    Net,
    Port,
    PortRange,
}

/// Bounds that keep the compiler's recursion shallow whatever the input.
const MAX_TOKENS: usize = 1024;
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    toks: Vec<&'a str>,
    pos: usize,
    depth: usize,
    last: Option<(Option<Proto>, Dir, Kind)>,
}

const SUPPORTED: &str = "supported without libpcap: ip, ip6, tcp, udp, icmp, arp, \
[src|dst] host ADDR, [src|dst] net ADDR/LEN, [tcp|udp] [src|dst] port N, \
[tcp|udp] [src|dst] portrange N-M, and/or/not, parentheses";

impl<'a> Parser<'a> {
    fn new(expr: &'a str) -> Self {
        let mut toks = Vec::new();
        let mut rest = expr;
        while let Some(i) = rest.find(|c: char| !c.is_whitespace()) {
            rest = &rest[i..];
            let n = if rest.starts_with("&&") || rest.starts_with("||") {
                2
            } else if rest.starts_with(['(', ')', '!']) {
                1
            } else {
                rest.find(|c: char| {
                    c.is_whitespace() || "()!".contains(c) || rest.starts_with("&&")
                })
                .unwrap_or(rest.len())
                .max(1)
            };
            toks.push(&rest[..n]);
            rest = &rest[n..];
        }
        Parser {
            toks,
            pos: 0,
            depth: 0,
            last: None,
        }
    }

    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<&'a str> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn parse(mut self) -> Result<Node, String> {
        if self.toks.is_empty() {
            return Err("empty expression".into());
        }
        if self.toks.len() > MAX_TOKENS {
            return Err(format!("longer than {MAX_TOKENS} words"));
        }
        let n = self.or()?;
        match self.peek() {
            None => Ok(n),
            Some(t) => Err(format!("unexpected '{t}' ({SUPPORTED})")),
        }
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut n = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.next();
            n = Node::Or(Box::new(n), Box::new(self.and()?));
        }
        Ok(n)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut n = self.unary()?;
        while matches!(self.peek(), Some("and" | "&&")) {
            self.next();
            n = Node::And(Box::new(n), Box::new(self.unary()?));
        }
        Ok(n)
    }

    fn unary(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let n = self.unary_inner();
        self.depth -= 1;
        n
    }

    fn unary_inner(&mut self) -> Result<Node, String> {
        match self.peek() {
            Some("not" | "!") => {
                self.next();
                Ok(Node::Not(Box::new(self.unary()?)))
            }
            Some("(") => {
                self.next();
                let n = self.or()?;
                match self.next() {
                    Some(")") => Ok(n),
                    _ => Err("missing ')'".into()),
                }
            }
            Some(_) => self.primitive().map(Node::Prim),
            None => Err("expression ends too early".into()),
        }
    }

    fn primitive(&mut self) -> Result<Prim, String> {
        let mut proto = None;
        let mut dir = None;
        loop {
            match self.peek() {
                Some("ip") => proto = Some(Proto::Ip),
                Some("ip6") => proto = Some(Proto::Ip6),
                Some("tcp") => proto = Some(Proto::Tcp),
                Some("udp") => proto = Some(Proto::Udp),
                Some("icmp") => proto = Some(Proto::Icmp),
                Some("arp") => proto = Some(Proto::Arp),
                Some("src") => dir = Some(Dir::Src),
                Some("dst") => dir = Some(Dir::Dst),
                _ => break,
            }
            self.next();
        }
        let kind = match self.peek() {
            Some("host") => Some(Kind::Host),
            Some("net") => Some(Kind::Net),
            Some("port") => Some(Kind::Port),
            Some("portrange") => Some(Kind::PortRange),
            _ => None,
        };
        if kind.is_some() {
            self.next();
        }
        let (proto, dir, kind) = match (proto, dir, kind) {
            (Some(p), None, None) => return Ok(Prim::Proto(p)),
            (p, d, Some(k)) => (p, d.unwrap_or(Dir::Either), k),
            (None, None, None) => match self.last {
                // `port 80 or 8080`: a bare value repeats the last qualifiers.
                Some(l) => l,
                None => {
                    let t = self.peek().unwrap_or("");
                    return Err(format!("'{t}' is not a filter primitive ({SUPPORTED})"));
                }
            },
            (_, Some(_), None) => {
                return Err(format!(
                    "'src'/'dst' must be followed by host, net, port or portrange ({SUPPORTED})"
                ));
            }
        };
        let v = self
            .next()
            .ok_or_else(|| "a value is missing at the end".to_string())?;
        self.last = Some((proto, dir, kind));
        let bad = |what: &str| format!("'{v}' is not {what}");
        match kind {
            Kind::Host | Kind::Net => {
                if !matches!(proto, None | Some(Proto::Ip | Proto::Ip6 | Proto::Arp)) {
                    return Err(format!("host/net cannot follow tcp or udp ({SUPPORTED})"));
                }
                let (addr, len) = match (kind, v.split_once('/')) {
                    (Kind::Net, Some((a, l))) => (a, l.parse::<u8>().map_err(|_| bad("ADDR/LEN"))?),
                    (Kind::Net, None) => (v, 255),
                    _ => (v, 255),
                };
                let ip: IpAddr = addr.parse().map_err(|_| bad("an IP address"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len = if len == 255 { max } else { len };
                if len > max {
                    return Err(bad("a valid prefix"));
                }
                if proto == Some(Proto::Ip6) && ip.is_ipv4()
                    || proto == Some(Proto::Ip) && ip.is_ipv6()
                {
                    return Err(bad("an address of that protocol"));
                }
                Ok(Prim::Host(dir, ip, len))
            }
            Kind::Port | Kind::PortRange => {
                if !matches!(proto, None | Some(Proto::Tcp | Proto::Udp)) {
                    return Err(format!(
                        "port needs tcp, udp or nothing before it ({SUPPORTED})"
                    ));
                }
                let (lo, hi) = match kind {
                    Kind::PortRange => v.split_once('-').ok_or_else(|| bad("a range N-M"))?,
                    _ => (v, v),
                };
                let lo: u16 = lo.parse().map_err(|_| bad("a port number"))?;
                let hi: u16 = hi.parse().map_err(|_| bad("a port number"))?;
                Ok(Prim::Port(proto, dir, lo.min(hi), lo.max(hi)))
            }
        }
    }
}

/// One test: the loads that put a value in A, then a comparison.
#[derive(Debug, Clone)]
struct Check {
    loads: Vec<BpfInsn>,
    /// JEQ, JGT, JGE or JSET with its constant.
    cmp: u16,
    k: u32,
    /// The check passes when the comparison is false.
    negate: bool,
}

fn ld(size: u16, off: u32) -> BpfInsn {
    insn(LD | size | ABS, off)
}

fn eq(loads: Vec<BpfInsn>, k: u32) -> Check {
    Check {
        loads,
        cmp: JEQ,
        k,
        negate: false,
    }
}

/// A primitive as alternatives of conjunctions.
type Dnf = Vec<Vec<Check>>;

fn is_v4(l: &Layout) -> Check {
    match l.ethertype {
        Some(o) => eq(vec![ld(H, o)], 0x0800),
        None => eq(vec![ld(B, l.net), insn(ALU | AND | K, 0xf0)], 0x40),
    }
}

fn is_v6(l: &Layout) -> Check {
    match l.ethertype {
        Some(o) => eq(vec![ld(H, o)], 0x86dd),
        None => eq(vec![ld(B, l.net), insn(ALU | AND | K, 0xf0)], 0x60),
    }
}

fn ethertype(l: &Layout, t: u32) -> Option<Check> {
    l.ethertype.map(|o| eq(vec![ld(H, o)], t))
}

fn v4_proto(l: &Layout, p: u32) -> Vec<Check> {
    vec![is_v4(l), eq(vec![ld(B, l.net + 9)], p)]
}

/// IPv6 next header `p`, directly or after a fragment header (as libpcap's `tcp`).
fn v6_proto(l: &Layout, p: u32) -> Dnf {
    vec![
        vec![is_v6(l), eq(vec![ld(B, l.net + 6)], p)],
        vec![
            is_v6(l),
            eq(vec![ld(B, l.net + 6)], 44),
            eq(vec![ld(B, l.net + 40)], p),
        ],
    ]
}

fn masked(loads: Vec<BpfInsn>, mask: u32, k: u32) -> Check {
    let mut loads = loads;
    if mask != u32::MAX {
        loads.push(insn(ALU | AND | K, mask));
    }
    eq(loads, k & mask)
}

fn addr_checks(l: &Layout, off: u32, ip: IpAddr, len: u8) -> Vec<Check> {
    let words: Vec<u32> = match ip {
        IpAddr::V4(a) => vec![u32::from(a)],
        IpAddr::V6(a) => a
            .octets()
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let bits = (i32::from(len) - 32 * i as i32).clamp(0, 32) as u32;
        if bits == 0 {
            break;
        }
        let mask = if bits == 32 {
            u32::MAX
        } else {
            !(u32::MAX >> bits)
        };
        out.push(masked(vec![ld(W, l.net + off + 4 * i as u32)], mask, *w));
    }
    out
}

fn dirs(d: Dir) -> &'static [Dir] {
    match d {
        Dir::Src => &[Dir::Src],
        Dir::Dst => &[Dir::Dst],
        Dir::Either => &[Dir::Src, Dir::Dst],
    }
}

fn prim(p: &Prim, l: &Layout) -> Dnf {
    let mut dnf: Dnf = Vec::new();
    match p {
        Prim::Proto(Proto::Ip) => dnf.push(vec![is_v4(l)]),
        Prim::Proto(Proto::Ip6) => dnf.push(vec![is_v6(l)]),
        Prim::Proto(Proto::Arp) => dnf.extend(ethertype(l, 0x0806).map(|c| vec![c])),
        Prim::Proto(Proto::Icmp) => dnf.push(v4_proto(l, 1)),
        Prim::Proto(t @ (Proto::Tcp | Proto::Udp)) => {
            let n = if *t == Proto::Tcp { 6 } else { 17 };
            dnf.push(v4_proto(l, n));
            dnf.extend(v6_proto(l, n));
        }
        Prim::Host(d, ip @ IpAddr::V4(_), len) => {
            for d in dirs(*d) {
                let off = if *d == Dir::Src { 12 } else { 16 };
                let mut c = vec![is_v4(l)];
                c.extend(addr_checks(l, off, *ip, *len));
                dnf.push(c);
            }
            // libpcap's `host` also matches ARP and RARP with that address.
            for t in [0x0806, 0x8035] {
                for d in dirs(*d) {
                    let off = if *d == Dir::Src { 14 } else { 24 };
                    if let Some(e) = ethertype(l, t) {
                        let mut c = vec![e];
                        c.extend(addr_checks(l, off, *ip, *len));
                        dnf.push(c);
                    }
                }
            }
        }
        Prim::Host(d, ip, len) => {
            for d in dirs(*d) {
                let off = if *d == Dir::Src { 8 } else { 24 };
                let mut c = vec![is_v6(l)];
                c.extend(addr_checks(l, off, *ip, *len));
                dnf.push(c);
            }
        }
        Prim::Port(t, d, lo, hi) => {
            let protos: &[u32] = match t {
                Some(Proto::Tcp) => &[6],
                Some(Proto::Udp) => &[17],
                _ => &[6, 17, 132],
            };
            let range = |load: BpfInsn| -> Vec<Check> {
                if lo == hi {
                    vec![eq(vec![load], u32::from(*lo))]
                } else {
                    vec![
                        Check {
                            loads: vec![load],
                            cmp: JGE,
                            k: u32::from(*lo),
                            negate: false,
                        },
                        Check {
                            loads: vec![load],
                            cmp: JGT,
                            k: u32::from(*hi),
                            negate: true,
                        },
                    ]
                }
            };
            for p in protos {
                for d in dirs(*d) {
                    let o = if *d == Dir::Src { 0 } else { 2 };
                    // IPv4: not a later fragment; the header length from IHL.
                    let mut c = v4_proto(l, *p);
                    c.push(Check {
                        loads: vec![ld(H, l.net + 6)],
                        cmp: JSET,
                        k: 0x1fff,
                        negate: true,
                    });
                    let mut r = range(insn(LD | H | IND, l.net + o));
                    r[0].loads.insert(0, insn(LDX | B | MSH, l.net));
                    if r.len() > 1 {
                        r[1].loads.insert(0, insn(LDX | B | MSH, l.net));
                    }
                    c.extend(r);
                    dnf.push(c);
                }
            }
            for p in protos {
                for d in dirs(*d) {
                    let o = if *d == Dir::Src { 0 } else { 2 };
                    let mut c = vec![is_v6(l), eq(vec![ld(B, l.net + 6)], *p)];
                    c.extend(range(ld(H, l.net + 40 + o)));
                    dnf.push(c);
                }
            }
        }
    }
    dnf
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Insn(BpfInsn),
    /// Conditional jump to labels.
    Jump {
        code: u16,
        k: u32,
        t: usize,
        f: usize,
    },
    Goto(usize),
    Label(usize),
}

#[derive(Default)]
struct Gen {
    code: Vec<Op>,
    labels: usize,
}

impl Gen {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    fn place(&mut self, l: usize) {
        self.code.push(Op::Label(l));
    }

    fn node(&mut self, n: &Node, l: &Layout, t: usize, f: usize) {
        match n {
            Node::And(a, b) => {
                let mid = self.label();
                self.node(a, l, mid, f);
                self.place(mid);
                self.node(b, l, t, f);
            }
            Node::Or(a, b) => {
                let mid = self.label();
                self.node(a, l, t, mid);
                self.place(mid);
                self.node(b, l, t, f);
            }
            Node::Not(a) => self.node(a, l, f, t),
            Node::Prim(p) => {
                let dnf = prim(p, l);
                // Conditional jumps reach 255 instructions at most: they stay inside
                // the primitive, and unconditional jumps (any distance) leave it.
                let out = self.label();
                if dnf.is_empty() {
                    self.code.push(Op::Goto(f));
                }
                for (i, conj) in dnf.iter().enumerate() {
                    let fail = if i + 1 == dnf.len() {
                        out
                    } else {
                        self.label()
                    };
                    for c in conj {
                        let pass = self.label();
                        for i in &c.loads {
                            self.code.push(Op::Insn(*i));
                        }
                        let (jt, jf) = if c.negate { (fail, pass) } else { (pass, fail) };
                        self.code.push(Op::Jump {
                            code: JMP | c.cmp | K,
                            k: c.k,
                            t: jt,
                            f: jf,
                        });
                        self.place(pass);
                    }
                    self.code.push(Op::Goto(t));
                    if i + 1 != dnf.len() {
                        self.place(fail);
                    }
                }
                if !dnf.is_empty() {
                    self.place(out);
                    self.code.push(Op::Goto(f));
                }
            }
        }
    }

    /// Resolves labels into forward offsets.
    fn finish(self) -> Result<Vec<BpfInsn>, String> {
        let mut at = vec![0usize; self.labels];
        let mut n = 0;
        for op in &self.code {
            match op {
                Op::Label(l) => at[*l] = n,
                _ => n += 1,
            }
        }
        if n > MAX_PROGRAM {
            return Err(format!(
                "too long for the kernel ({MAX_PROGRAM} instructions)"
            ));
        }
        let mut out = Vec::with_capacity(n);
        for op in &self.code {
            let pc = out.len() + 1;
            let rel = |l: usize| -> Result<u8, String> {
                u8::try_from(at[l] - pc).map_err(|_| {
                    "too complex for the built-in compiler (build with --features libpcap)".into()
                })
            };
            match op {
                Op::Insn(i) => out.push(*i),
                Op::Jump { code, k, t, f } => out.push(BpfInsn {
                    code: *code,
                    jt: rel(*t)?,
                    jf: rel(*f)?,
                    k: *k,
                }),
                Op::Goto(l) => out.push(insn(JMP | JA, (at[*l] - pc) as u32)),
                Op::Label(_) => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame.
    fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00]);
        f.extend([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend(src);
        f.extend(dst);
        f.extend(sport.to_be_bytes());
        f.extend(dport.to_be_bytes());
        f.extend([0u8; 16]);
        f
    }

    fn m(expr: &str, frame: &[u8]) -> bool {
        compile_builtin(expr, linktype::ETHERNET)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(frame)
    }

    #[test]
    fn ports_hosts_nets_and_boolean_operators() {
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 8080);
        assert!(m("tcp", &f));
        assert!(!m("udp", &f));
        assert!(m("tcp port 8080", &f));
        assert!(m("port 80 or 8080", &f));
        assert!(!m("tcp port 80", &f));
        assert!(m("tcp port 80 or tcp port 8080", &f));
        assert!(m("dst port 8080 and src port 40000", &f));
        assert!(!m("src port 8080", &f));
        assert!(m("portrange 8000-8100", &f));
        assert!(!m("portrange 1-1024", &f));
        assert!(m("host 10.0.0.2", &f));
        assert!(m("src host 10.0.0.1 && dst net 10.0.0.0/24", &f));
        assert!(!m("dst host 10.0.0.1", &f));
        assert!(m("not (udp or port 22)", &f));
        assert!(m("! port 22", &f));
        assert!(!m("ip6", &f));
        assert!(m("net 10.0.0.0/8 and not net 192.168.0.0/16", &f));
    }

    #[test]
    fn later_ipv4_fragments_have_no_ports() {
        let mut f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80);
        f[20] = 0x00;
        f[21] = 0x10; // fragment offset 16
        assert!(m("tcp", &f));
        assert!(!m("port 80", &f));
    }

    #[test]
    fn errors_say_what_is_supported() {
        for bad in [
            "",
            "tcp port",
            "port eighty",
            "ether host 1:2:3:4:5:6",
            "(tcp",
            "tcp host 1.2.3.4",
            "src",
        ] {
            let e = compile_builtin(bad, linktype::ETHERNET).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("capture filter '{bad}': ")),
                "{e}"
            );
        }
    }

    #[test]
    fn hostile_expressions_are_refused_not_recursed_into() {
        let deep = "(".repeat(100_000) + "tcp" + &")".repeat(100_000);
        assert!(compile_builtin(&deep, 1).unwrap_err().why.contains("words"));
        let deep = "(".repeat(200) + "tcp" + &")".repeat(200);
        assert!(
            compile_builtin(&deep, 1)
                .unwrap_err()
                .why
                .contains("nested")
        );
        let nots = "not ".repeat(500) + "tcp";
        assert!(
            compile_builtin(&nots, 1)
                .unwrap_err()
                .why
                .contains("nested")
        );
        let long = vec!["tcp"; 400].join(" or ");
        let e = compile_builtin(&long, 1).unwrap_err();
        assert!(e.why.contains("4096"), "{e}");
        // Long but reasonable chains compile: jumps out of a primitive have no limit.
        let ports: Vec<String> = (8020..8040).map(|p| format!("port {p}")).collect();
        let p = compile_builtin(&ports.join(" or "), 1).unwrap();
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 8039);
        assert!(p.matches(&f));
        let all = format!("tcp and {}", vec!["not port 22"; 30].join(" and "));
        assert!(compile_builtin(&all, 1).unwrap().matches(&f));
    }

    #[test]
    fn raw_ip_and_short_frames() {
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80);
        let p = compile_builtin("tcp port 80", linktype::RAW).unwrap();
        assert!(p.matches(&f[14..]));
        assert!(!p.matches(&f[14..30]), "a load past the end rejects");
        assert!(!p.matches(&[]));
    }
}
