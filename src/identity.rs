//! Who the client is. By default the TCP client address, with IPv4-mapped IPv6
//! addresses normalised so one host has one key.

use std::net::IpAddr;

/// Normalises an address: `::ffff:10.0.0.1` is `10.0.0.1`.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client key of a connection's client address, e.g. `ip:10.77.1.20`.
pub fn client_key(ip: IpAddr) -> String {
    format!("ip:{}", normalise(ip))
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
}
