use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Requests as (seconds, address, principal number); the findings' reasons and the
/// address that raised each.
fn run(t: &mut Tokens, reqs: &[(u64, &str, u64)]) -> Vec<(String, String)> {
    let cfg = Config::default();
    let mut out = Vec::new();
    let mut found = Vec::new();
    for &(s, a, p) in reqs {
        t.observe(
            &cfg,
            600 * SEC,
            s * SEC,
            ip(a),
            (Principal::Bearer, p),
            false,
            &mut out,
        );
        for r in out.drain(..) {
            found.push((
                r.finding.evidence["reason"].as_str().unwrap().to_string(),
                a.to_string(),
            ));
        }
    }
    found
}

#[test]
fn a_token_replayed_from_ten_addresses_is_shared_and_a_roaming_phone_is_not() {
    let mut t = Tokens::default();
    let mut reqs = Vec::new();
    // Roaming: token 1 from one address for 5 minutes, then from another.
    for s in 0..300 {
        reqs.push((s, "10.0.0.1", 1));
    }
    for s in 300..600 {
        reqs.push((s, "172.16.0.9", 1));
    }
    // The victim, all along, and from minute 5 ten other addresses within a minute.
    for s in (0..600).step_by(5) {
        reqs.push((s, "10.0.0.2", 2));
    }
    for i in 0..10u64 {
        let a: &'static str = Box::leak(format!("198.51.100.{}", 10 + i).into_boxed_str());
        for k in 0..3 {
            reqs.push((300 + i * 6 + k, a, 2));
        }
    }
    reqs.sort_by_key(|r| r.0);
    let found = run(&mut t, &reqs);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "shared_principal");
    // Raised by the address that made it five.
    assert_eq!(found[0].1, "198.51.100.13");
}

#[test]
fn an_address_cycling_thirty_keys_is_caught_and_an_office_is_not() {
    let mut t = Tokens::default();
    let mut reqs = Vec::new();
    // The office: 12 users behind one address arriving over a minute, then side by
    // side, a request every 12 s each, for 10 minutes.
    for u in 0..12u64 {
        for s in (5 * u..600).step_by(12) {
            reqs.push((s, "192.0.2.1", 100 + u));
        }
    }
    // Fifty ordinary users, each with their own token and address.
    for u in 0..50u64 {
        let a: &'static str = Box::leak(format!("10.9.0.{u}").into_boxed_str());
        for s in (u..600).step_by(20) {
            reqs.push((s, a, 5000 + u));
        }
    }
    // The cycler: 30 keys, four requests each, one key after the other.
    for k in 0..30u64 {
        for r in 0..4 {
            reqs.push((200 + k * 4 + r, "203.0.113.7", 1000 + k));
        }
    }
    reqs.sort_by_key(|r| r.0);
    let found = run(&mut t, &reqs);
    assert_eq!(
        found,
        [("principal_cycling".to_string(), "203.0.113.7".to_string())]
    );
}

#[test]
fn a_fleet_sharing_one_key_all_along_has_that_as_its_usual() {
    let cfg = Config::default();
    let mut t = Tokens::default();
    let mut out = Vec::new();
    // 20 servers share key 7 from the start; the first window is the learning one.
    for s in 0..1800u64 {
        let a = ip(&format!("10.1.0.{}", s % 20));
        t.observe(
            &cfg,
            600 * SEC,
            s * SEC,
            a,
            (Principal::ApiKey, 7),
            s < 300,
            &mut out,
        );
    }
    assert!(out.is_empty(), "{}", out.len());
}

#[test]
fn the_tables_are_bounded() {
    let cfg = Config {
        max_tracked: 64,
        ..Config::default()
    };
    let mut t = Tokens::default();
    let mut out = Vec::new();
    for i in 0..10_000u64 {
        let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
        t.observe(
            &cfg,
            600 * SEC,
            i * SEC,
            a,
            (Principal::Bearer, i),
            true,
            &mut out,
        );
    }
    assert!(t.principals.len() <= 64 && t.addresses.len() <= 64);
    assert!(t.evicted > 0);
}

/// A gateway with more users at once than the table keeps (a proxy, a carrier
/// NAT): users dropped from the table come back, never counted as cycling.
#[test]
fn a_gateway_with_hundreds_of_users_is_not_cycling() {
    let mut t = Tokens::default();
    let mut reqs = Vec::new();
    for u in 0..200u64 {
        for s in (u % 60..900).step_by(60) {
            reqs.push((s, "192.0.2.99", 10_000 + u));
        }
    }
    reqs.sort_by_key(|r| r.0);
    assert_eq!(run(&mut t, &reqs), Vec::<(String, String)>::new());
}
