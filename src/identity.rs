//! Who the client is. By default the TCP client address, with IPv4-mapped IPv6
//! addresses normalised so one host has one key. Behind trusted proxies (config
//! `detect.trusted_proxies`), `Forwarded` / `X-Forwarded-For` are walked from the
//! right, skipping trusted hops, to the first untrusted address: the leftmost value is
//! whatever the client wrote and is never trusted on its own.

use std::hash::Hasher;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::http::Exchange;

/// Normalises an address: `::ffff:10.0.0.1` is `10.0.0.1`.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client key of a connection's client address, e.g. `ip:10.77.1.20`.
pub fn client_key(ip: IpAddr) -> String {
    let mut s = String::with_capacity(24);
    write_client_key(&mut s, ip);
    s
}

/// Appends [`client_key`] to `out` (the exchange log's per-record path).
pub fn write_client_key(out: &mut String, ip: IpAddr) {
    out.push_str("ip:");
    crate::export::json::ip(out, normalise(ip));
}

/// An address block such as `10.0.0.0/8` or `2001:db8::/32` (a bare address is /32
/// or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an address or CIDR block"))?;
        let net = normalise(net);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("'{s}': prefix length must be 0-{max}"))?,
            None => max,
        };
        Ok(Cidr { net, len })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, normalise(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// What identifies a client (config `detect.client_key`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeyMode {
    /// The client address (default).
    #[default]
    Ip,
    /// The `X-API-Key` / `Api-Key` header when present, else the address.
    ApiKey,
    /// The bearer token when present, else the address.
    Bearer,
    /// The Basic-auth username when present, else the address.
    Basic,
    /// The value of the named cookie when present, else the address.
    Cookie(String),
}

impl FromStr for KeyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ip" => Ok(KeyMode::Ip),
            "api_key" => Ok(KeyMode::ApiKey),
            "bearer" => Ok(KeyMode::Bearer),
            "basic" => Ok(KeyMode::Basic),
            _ => match s.strip_prefix("cookie:") {
                Some(name) if !name.is_empty() => Ok(KeyMode::Cookie(name.to_string())),
                _ => Err(format!(
                    "'{s}' is not one of ip, api_key, bearer, basic, cookie:NAME"
                )),
            },
        }
    }
}

/// How clients are identified.
#[derive(Debug, Clone, Default)]
pub struct IdentityConfig {
    pub mode: KeyMode,
    /// IPv6 clients are grouped by this prefix length (128: each address alone).
    pub ipv6_prefix: u8,
    /// Key of the principal hash (SipHash-2-4): secret, so a key in an alert cannot
    /// be turned back into the token by hashing guesses.
    pub salt: [u64; 2],
    /// The salt came from the configuration (else it is random per install: made
    /// at first start and kept in the state file).
    pub salt_configured: bool,
}

impl IdentityConfig {
    /// A salt from configuration text (any string; hashed to 128 bits).
    pub fn salt_from(text: &str) -> [u64; 2] {
        let h = |k: u64| {
            let mut s = siphasher::sip::SipHasher24::new_with_keys(k, !k);
            s.write(text.as_bytes());
            s.finish()
        };
        [h(0x5a17), h(0xa5e8)]
    }

    /// A fresh random salt.
    pub fn random_salt() -> [u64; 2] {
        use std::hash::BuildHasher;
        let r = std::collections::hash_map::RandomState::new();
        [r.hash_one(1u8), r.hash_one(2u8)]
    }
}

/// The kind of principal a client is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Principal {
    ApiKey,
    Bearer,
    Basic,
    Cookie,
}

impl Principal {
    /// The name keys and evidence use: `api_key`, `bearer`, `basic`, `cookie`.
    pub fn name(self) -> &'static str {
        match self {
            Principal::ApiKey => "api_key",
            Principal::Bearer => "bearer",
            Principal::Basic => "basic",
            Principal::Cookie => "cookie",
        }
    }
}

/// A client: an address (or IPv6 prefix), or a hashed principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientId {
    Ip(IpAddr),
    Net(IpAddr, u8),
    Principal(Principal, u64),
}

impl ClientId {
    /// The key written in alerts: `ip:10.0.0.1`, `ip:2001:db8::/64`, `bearer:9f...`.
    pub fn key(&self) -> String {
        let mut s = String::with_capacity(40);
        self.write_key(&mut s);
        s
    }

    /// Appends [`ClientId::key`] to `out` (no allocation, no `format!`).
    pub fn write_key(&self, out: &mut String) {
        use crate::export::json;
        match self {
            ClientId::Ip(ip) => {
                out.push_str("ip:");
                json::ip(out, *ip);
            }
            ClientId::Net(ip, len) => {
                out.push_str("ip:");
                json::ip(out, *ip);
                out.push('/');
                json::uint(out, u64::from(*len));
            }
            ClientId::Principal(kind, h) => {
                out.push_str(kind.name());
                out.push(':');
                let mut hex = [0u8; 16];
                for (i, d) in hex.iter_mut().enumerate() {
                    *d = json::HEX[((h >> ((15 - i) * 4)) & 15) as usize];
                }
                out.push_str(json::ascii(&hex));
            }
        }
    }
}

/// What identity needs of an exchange's secrets, worked out by the sensor that saw
/// them before it sealed them for the wire ([`crate::nats`]): the principal the
/// request authenticates as, and the client key when clients are keyed by a
/// principal. Read back, these stand in for the sealed header values, so every
/// detector keys and names clients exactly as one process would.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub principal: Option<(Principal, u64)>,
    pub client: Option<(Principal, u64)>,
}

impl Sealed {
    /// What a sensor with identity settings `cfg` publishes for `ex` whose client
    /// is `id`.
    pub fn of(ex: &Exchange, id: ClientId, cfg: &IdentityConfig) -> Sealed {
        Sealed {
            principal: principal(ex, cfg.salt),
            client: match id {
                ClientId::Principal(kind, h) => Some((kind, h)),
                _ => None,
            },
        }
    }
}

fn keyed_hash(salt: [u64; 2], kind: Principal, value: &[u8]) -> u64 {
    let mut h = siphasher::sip::SipHasher24::new_with_keys(salt[0], salt[1]);
    h.write_u8(kind as u8);
    h.write(value);
    h.finish()
}

fn cookie_value<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies
        .split([';', ','])
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The principal a request authenticates as, whatever the client key mode: its API
/// key, else its bearer token, else its Basic-auth user name, as a keyed hash.
pub fn principal(ex: &Exchange, salt: [u64; 2]) -> Option<(Principal, u64)> {
    if let Some(s) = ex.sealed.as_deref() {
        return s.principal;
    }
    let h = &ex.request_headers;
    if let Some(k) = h
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        return Some((
            Principal::ApiKey,
            keyed_hash(salt, Principal::ApiKey, k.as_bytes()),
        ));
    }
    let auth = h.authorization.as_deref()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let t = rest.trim();
        return (!t.is_empty()).then(|| {
            (
                Principal::Bearer,
                keyed_hash(salt, Principal::Bearer, t.as_bytes()),
            )
        });
    }
    let user = crate::credentials::basic_username(auth).filter(|u| !u.is_empty())?;
    Some((Principal::Basic, keyed_hash(salt, Principal::Basic, &user)))
}

/// The client of an exchange whose (proxy-resolved) address is `ip`.
#[inline]
pub fn client_id(ex: &Exchange, ip: IpAddr, cfg: &IdentityConfig) -> ClientId {
    let h = &ex.request_headers;
    let auth = h.authorization.as_deref().map(str::trim);
    let principal = match &cfg.mode {
        KeyMode::Ip => None,
        // Read back from a sensor: its principals stand in for the sealed values.
        _ if ex.sealed.is_some() => {
            if let Some((kind, h)) = ex.sealed.as_deref().and_then(|s| s.client) {
                return ClientId::Principal(kind, h);
            }
            None
        }
        KeyMode::ApiKey => h
            .api_key
            .as_deref()
            .map(|v| (Principal::ApiKey, v.trim().as_bytes().to_vec())),
        KeyMode::Bearer => auth
            .and_then(|a| a.split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| (Principal::Bearer, t.trim().as_bytes().to_vec())),
        KeyMode::Basic => auth
            .and_then(crate::credentials::basic_username)
            .map(|u| (Principal::Basic, u)),
        KeyMode::Cookie(name) => h
            .cookie
            .as_deref()
            .and_then(|c| cookie_value(c, name))
            .map(|v| (Principal::Cookie, v.as_bytes().to_vec())),
    };
    if let Some((kind, value)) = principal.filter(|(_, v)| !v.is_empty()) {
        return ClientId::Principal(kind, keyed_hash(cfg.salt, kind, &value));
    }
    match normalise(ip) {
        IpAddr::V6(v6) if cfg.ipv6_prefix > 0 && cfg.ipv6_prefix < 128 => {
            let bits = u128::from(v6) & (u128::MAX << (128 - u32::from(cfg.ipv6_prefix)));
            ClientId::Net(IpAddr::V6(bits.into()), cfg.ipv6_prefix)
        }
        other => ClientId::Ip(other),
    }
}

/// One hop of `Forwarded: for=...` or `X-Forwarded-For`, without port or brackets.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    // IPv4 with a port.
    s.rsplit_once(':').and_then(|(a, _)| a.parse().ok())
}

/// Hops named by the request, nearest last: `Forwarded` when present, else XFF.
fn hops(ex: &Exchange) -> Vec<Option<IpAddr>> {
    let h = &ex.request_headers;
    if let Some(fwd) = &h.forwarded {
        return fwd
            .split(',')
            .map(|elem| {
                elem.split(';')
                    .find_map(|pair| {
                        let (k, v) = pair.split_once('=')?;
                        k.trim().eq_ignore_ascii_case("for").then_some(v)
                    })
                    .and_then(parse_hop)
            })
            .collect();
    }
    match &h.x_forwarded_for {
        Some(xff) => xff.split(',').map(parse_hop).collect(),
        None => Vec::new(),
    }
}

/// The client address of an exchange, honouring trusted proxies.
#[inline]
pub fn client_ip(ex: &Exchange, trusted: &[Cidr]) -> IpAddr {
    let peer = normalise(ex.client_ip);
    if trusted.is_empty() || !trusted.iter().any(|n| n.contains(peer)) {
        return peer;
    }
    let mut last_trusted = peer;
    for hop in hops(ex).into_iter().rev() {
        match hop.map(normalise) {
            Some(ip) if trusted.iter().any(|n| n.contains(ip)) => last_trusted = ip,
            Some(ip) => return ip,
            // Garbage in the chain: stop at the last hop we could vouch for.
            None => return last_trusted,
        }
    }
    last_trusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_are_normalised() {
        assert_eq!(
            client_key("::ffff:10.0.0.1".parse().unwrap()),
            "ip:10.0.0.1"
        );
        assert_eq!(client_key("2001:db8::1".parse().unwrap()), "ip:2001:db8::1");
    }

    #[test]
    fn principals_are_keyed_hashes_and_fall_back_to_the_address() {
        let mut cfg = IdentityConfig {
            mode: KeyMode::Bearer,
            ipv6_prefix: 128,
            salt: [1, 2],
            salt_configured: true,
        };
        let mut e = ex("10.0.0.5", None, None);
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(client_id(&e, ip, &cfg), ClientId::Ip(ip));
        e.request_headers.authorization = Some("Bearer eyJhbGciOi.secret.token".into());
        let id = client_id(&e, ip, &cfg);
        assert!(matches!(id, ClientId::Principal(Principal::Bearer, _)));
        assert!(id.key().starts_with("bearer:") && !id.key().contains("secret"));
        // Another salt, another key: the hash is keyed.
        cfg.salt = [3, 4];
        assert_ne!(client_id(&e, ip, &cfg), id);
        cfg.mode = KeyMode::Cookie("sid".into());
        e.request_headers.cookie = Some("theme=dark; sid=abc123".into());
        assert!(matches!(
            client_id(&e, ip, &cfg),
            ClientId::Principal(Principal::Cookie, _)
        ));
        cfg.mode = "basic".parse().unwrap();
        e.request_headers.authorization = Some("Basic Y2Fyb2w6aHVudGVyMg==".into());
        assert!(matches!(
            client_id(&e, ip, &cfg),
            ClientId::Principal(Principal::Basic, _)
        ));
        assert!("cookie:".parse::<KeyMode>().is_err());
    }

    #[test]
    fn ipv6_clients_can_be_grouped_by_prefix() {
        let cfg = IdentityConfig {
            mode: KeyMode::Ip,
            ipv6_prefix: 64,
            salt: [0, 0],
            salt_configured: true,
        };
        let e = ex("2001:db8:1:2:aaaa::1", None, None);
        let id = client_id(&e, e.client_ip, &cfg);
        assert_eq!(id.key(), "ip:2001:db8:1:2::/64");
        let v4 = ex("10.0.0.1", None, None);
        assert_eq!(client_id(&v4, v4.client_ip, &cfg).key(), "ip:10.0.0.1");
    }

    #[test]
    fn cidr_blocks() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/33".parse().unwrap();
        assert!(v6.contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:8000::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        assert!(
            "192.0.2.1"
                .parse::<Cidr>()
                .unwrap()
                .contains("192.0.2.1".parse().unwrap())
        );
    }

    fn ex(peer: &str, xff: Option<&str>, fwd: Option<&str>) -> Exchange {
        let mut e = crate::http::testing::exchange(0, 1, "GET", "/", Some(200));
        e.client_ip = peer.parse().unwrap();
        e.request_headers.x_forwarded_for = xff.map(String::from);
        e.request_headers.forwarded = fwd.map(String::from);
        e
    }

    #[test]
    fn a_long_spoofed_chain_cannot_push_out_the_trusted_proxys_hop() {
        use crate::http::parser::{Role, parse_head};
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let block = format!(
            "GET / HTTP/1.1\r\nX-Forwarded-For: {}1.1.1.1\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n",
            "6.6.6.6, ".repeat(600)
        );
        let head = parse_head(Role::Request, block.as_bytes()).unwrap();
        let mut e = ex("10.0.0.1", None, None);
        e.request_headers = head.headers;
        assert_eq!(
            client_ip(&e, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_chains_are_walked_from_the_right_over_trusted_hops_only() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        // Not behind a trusted proxy: the header is ignored.
        assert_eq!(
            client_ip(&ex("203.0.113.9", Some("1.2.3.4"), None), &trusted),
            ip("203.0.113.9")
        );
        // Behind one: the first untrusted hop from the right, not the spoofed leftmost.
        let e = ex("10.0.0.5", Some("6.6.6.6, 198.51.100.7, 10.0.0.4"), None);
        assert_eq!(client_ip(&e, &trusted), ip("198.51.100.7"));
        // Forwarded wins over XFF, with quoted IPv6 and ports.
        let e = ex(
            "10.0.0.5",
            Some("9.9.9.9"),
            Some(r#"for="[2001:db8::7]:4711";proto=https, for=10.0.0.2"#),
        );
        assert_eq!(client_ip(&e, &trusted), ip("2001:db8::7"));
        // No header, or garbage in the chain: the last hop we can vouch for.
        assert_eq!(
            client_ip(&ex("10.0.0.5", None, None), &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_ip(&ex("10.0.0.5", Some("junk, 10.0.0.3"), None), &trusted),
            ip("10.0.0.3")
        );
        // Without trusted proxies configured nothing changes.
        assert_eq!(
            client_ip(&ex("10.0.0.5", Some("1.2.3.4"), None), &[]),
            ip("10.0.0.5")
        );
    }
}
