use super::engine::Ids;
use super::*;

/// An exchange owned by a test, from which an [`Obs`] borrows.
pub struct Owned {
    pub ex: Exchange,
}

impl Owned {
    pub fn obs(&self) -> Obs<'_> {
        Obs::new(&self.ex, None).unwrap()
    }

    pub fn no_status(mut self) -> Self {
        self.ex.status = None;
        self
    }
}

pub use crate::http::testing::exchange;

/// A deterministic stand-in for the engine's keyed hash.
pub fn test_hash(b: &[u8]) -> u64 {
    b.iter()
        .fold(7u64, |a, c| a.wrapping_mul(31).wrapping_add(u64::from(*c)))
}

pub fn obs_at(ts: Nanos, method: &str, uri: &str, status: Option<u16>) -> Owned {
    Owned {
        ex: exchange(ts, 1, method, uri, status),
    }
}

#[test]
fn signature_ids_are_stable_and_distinct() {
    let ids: Vec<u32> = Kind::ALL.iter().map(|k| k.signature_id()).collect();
    assert_eq!(
        ids,
        [
            9100001, 9100002, 9100003, 9100004, 9100005, 9100006, 9100007, 9100008, 9100009,
            9100010, 9100011, 9100012, 9100013
        ]
    );
}

#[test]
fn one_alert_per_episode_and_a_re_report_after_cooldown() {
    let mut e = Engine::new(DetectConfig::default());
    let mut out = Vec::new();
    // A wordlist scan that goes on for 15 minutes at 20 req/s.
    for i in 0..(15 * 60 * 20u64) {
        let ex = exchange(SEC + i * SEC / 20, 66, "GET", &format!("/w{i}"), Some(404));
        e.observe(&ex, &mut out);
    }
    let scans: Vec<&Alert> = out
        .iter()
        .filter(|a| a.finding.kind == Kind::EndpointScan)
        .collect();
    assert_eq!(
        scans.len(),
        2,
        "first report plus one after the 10-minute cooldown"
    );
    assert_eq!(scans[1].report, 2);
    assert!(scans[0].ts < 3 * SEC, "fired within 2 s of the start");
}

#[test]
fn benign_mixed_traffic_raises_nothing() {
    let mut e = Engine::new(DetectConfig::default());
    let mut out = Vec::new();
    // 30 clients for 20 minutes: each a request every 2-5 s over a handful of
    // endpoints, an occasional 404 and a mistyped password.
    let endpoints = [
        "/api/items",
        "/api/items/17",
        "/api/cart",
        "/api/profile",
        "/static/app.js",
    ];
    for t in 0..(20 * 60u64) {
        for c in 0..30u8 {
            if !(t + c as u64).is_multiple_of(2 + c as u64 % 4) {
                continue;
            }
            let i = (t as usize + c as usize) % endpoints.len();
            let status = if t % 97 == 0 { 404 } else { 200 };
            let ex = exchange(
                t * SEC + c as u64 * 1000,
                c,
                "GET",
                endpoints[i],
                Some(status),
            );
            e.observe(&ex, &mut out);
        }
        if t % 300 == 0 {
            let mut ex = exchange(
                t * SEC + 5,
                (t / 300) as u8,
                "POST",
                "/api/login",
                Some(401),
            );
            ex.request_body_prefix = br#"{"username":"me","password":"oops"}"#.to_vec();
            e.observe(&ex, &mut out);
        }
    }
    assert!(
        out.is_empty(),
        "{:?}",
        out.iter().map(|a| &a.finding.summary).collect::<Vec<_>>()
    );
}

/// Twelve minutes of a small API's traffic with an attack of every kind in it.
fn mixed_with_attacks() -> Vec<Exchange> {
    let mut v = Vec::new();
    let login = |ts, client, user: &str, status| {
        let mut ex = exchange(ts, client, "POST", "/api/login", Some(status));
        ex.request_body_prefix = format!(r#"{{"username":"{user}","password":"x"}}"#).into_bytes();
        ex
    };
    for t in 0..(12 * 60u64) {
        for c in 1..=40u8 {
            if (t + c as u64).is_multiple_of(2 + c as u64 % 5) {
                let uri = format!("/api/items/{}", (t + c as u64) % 7);
                v.push(exchange(
                    t * SEC + c as u64 * 997,
                    c,
                    "GET",
                    &uri,
                    Some(200),
                ));
            }
        }
        match t {
            // A client bursting, a brute force, a wordlist scan, an enumeration.
            400..=409 => (0..60).for_each(|i| {
                v.push(exchange(
                    t * SEC + i * 1000,
                    3,
                    "GET",
                    "/api/items/1",
                    Some(200),
                ))
            }),
            420..=440 => (0..3).for_each(|i| {
                v.push(login(t * SEC + i * 5000, 201, "admin", 401));
            }),
            450..=470 => (0..5).for_each(|i| {
                let uri = format!("/w{t}-{i}.php");
                v.push(exchange(t * SEC + i * 3000, 202, "GET", &uri, Some(404)))
            }),
            480..=500 => (0..5).for_each(|i| {
                let uri = format!("/api/users/{}", t * 5 + i);
                v.push(exchange(t * SEC + i * 7000, 203, "GET", &uri, Some(200)))
            }),
            // Many clients, one failed login each, different accounts.
            520..=580 => {
                let c = 100 + (t % 60) as u8;
                v.push(login(t * SEC + 11, c, &format!("user{t}"), 401));
            }
            // An established client on an admin endpoint; a shadow endpoint.
            600 => {
                v.push(exchange(t * SEC + 13, 5, "GET", "/admin/export", Some(200)));
                v.push(exchange(
                    t * SEC + 17,
                    6,
                    "GET",
                    "/api/v2/hidden",
                    Some(200),
                ));
            }
            _ => {}
        }
    }
    v.sort_by_key(|e| e.ts);
    v
}

fn alerts_of(engine: Engine, exchanges: &[Exchange]) -> (Vec<String>, usize) {
    alerts_and_snapshots(engine, exchanges, 5000)
}

/// Every alert (in order) and a snapshot every `every` exchanges, as text.
fn alerts_and_snapshots(
    mut engine: Engine,
    exchanges: &[Exchange],
    every: usize,
) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut snapshots = Vec::new();
    for (i, ex) in exchanges.iter().enumerate() {
        engine.observe(ex, &mut out);
        if i % every == every - 1 {
            let s = engine.snapshot(&mut out);
            snapshots.push(serde_json::to_string(&s).unwrap());
        }
    }
    engine.finish(&mut out);
    let mut lines: Vec<String> = out
        .iter()
        .map(|a| {
            format!(
                "{} {:?} {:?} {} {} {:?}",
                a.ts, a.client_key, a.finding, a.report, a.episode_start, a.samples
            )
        })
        .collect();
    lines.extend(snapshots);
    (lines, engine.clients_tracked())
}

fn fixed(max_clients: usize) -> DetectConfig {
    let mut cfg = DetectConfig {
        max_clients,
        ..Default::default()
    };
    cfg.identity.salt = [1, 2];
    cfg.identity.salt_configured = true;
    cfg
}

/// An established client reads the human documentation (HTML under `/docs/`),
/// then probes the admin area (redirected to its login) and writes to someone
/// else's object, all within one cooldown: the documentation raises nothing, the
/// probe and the write are each reported.
#[test]
fn weak_evidence_does_not_use_up_the_episode_that_strong_evidence_needs() {
    let mut engine = Engine::new(fixed(1000));
    let mut out = Vec::new();
    let html = |mut e: Exchange| {
        e.response_headers = Some(crate::http::Headers {
            content_type: Some("text/html; charset=utf-8".into()),
            ..Default::default()
        });
        e
    };
    // Learning: ten clients use the API; client 1 is established.
    for t in 0..300u64 {
        let c = 1 + (t % 10) as u8;
        engine.observe(
            &exchange(
                t * SEC,
                c,
                "GET",
                &format!("/api/items/{}", t % 7),
                Some(200),
            ),
            &mut out,
        );
        if t % 10 == 0 {
            let note = format!("/api/notes/{}", 4242 + t % 20);
            engine.observe(&exchange(t * SEC + 1, 2, "GET", &note, Some(200)), &mut out);
        }
    }
    assert!(out.is_empty(), "{out:?}");
    let kinds = |out: &[Alert]| -> Vec<String> {
        out.iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a.finding.evidence["rule"],
                    a.finding.endpoint.clone().unwrap_or_default()
                )
            })
            .collect()
    };
    for (i, page) in ["/docs/intro", "/docs/guide/", "/swagger-ui/index.html"]
        .iter()
        .enumerate()
    {
        engine.observe(
            &html(exchange((400 + i as u64) * SEC, 1, "GET", page, Some(200))),
            &mut out,
        );
    }
    assert!(
        out.is_empty(),
        "human documentation is not sensitive: {:?}",
        kinds(&out)
    );
    // The machine description is.
    engine.observe(
        &exchange(410 * SEC, 1, "GET", "/v3/api-docs", Some(200)),
        &mut out,
    );
    assert_eq!(kinds(&out).len(), 1, "{:?}", kinds(&out));
    // Minutes later, within the cooldown: the admin area, refused by a redirect
    // to its login, is a new kind of evidence.
    let mut probe = exchange(500 * SEC, 1, "GET", "/admin/users/", Some(302));
    probe.response_headers = Some(crate::http::Headers {
        location: Some("/admin/login/?next=/admin/users/".into()),
        ..Default::default()
    });
    engine.observe(&probe, &mut out);
    // Someone else's note, changed.
    engine.observe(
        &exchange(560 * SEC, 1, "DELETE", "/api/notes/4242", Some(204)),
        &mut out,
    );
    let k = kinds(&out);
    assert_eq!(k.len(), 3, "{k:?}");
    assert!(
        k[1].contains("sensitive_route") && k[1].contains("/admin"),
        "{k:?}"
    );
    assert!(k[2].contains("foreign_object_write"), "{k:?}");
    assert_eq!(out.iter().map(|a| a.report).collect::<Vec<_>>(), [1, 2, 3]);
    // The same kind again within the cooldown is not reported again.
    engine.observe(&probe_at(600 * SEC, "/admin/users/export"), &mut out);
    engine.observe(
        &exchange(610 * SEC, 1, "PUT", "/api/notes/4250", Some(200)),
        &mut out,
    );
    assert_eq!(out.len(), 3, "{:?}", kinds(&out));
}

fn probe_at(ts: Nanos, path: &str) -> Exchange {
    exchange(ts, 1, "GET", path, Some(403))
}

#[test]
fn object_ids_keep_every_value_in_order_inline_or_spilled() {
    for n in 0..10u64 {
        let mut ids = Ids::default();
        for v in 0..n {
            ids.push(v * 7);
        }
        let want: Vec<u64> = (0..n).map(|v| v * 7).collect();
        assert_eq!(ids.as_slice(), &want[..], "{n}");
    }
}

#[test]
fn sharded_detection_raises_the_same_alerts_in_the_same_order() {
    let exchanges = mixed_with_attacks();
    let (inline, clients) = alerts_of(Engine::new(fixed(100_000)), &exchanges);
    let kinds: std::collections::HashSet<&str> = Kind::ALL
        .iter()
        .map(|k| k.name())
        .filter(|k| {
            inline
                .iter()
                .any(|l| l.contains(&format!("kind: {}", camel(k))))
        })
        .collect();
    assert!(
        kinds.len() >= 5,
        "the scenario raises most kinds: {kinds:?}\n{inline:#?}"
    );
    for shards in [2, 3, 5] {
        let engine = Engine::sharded(fixed(100_000), shards);
        assert_eq!(engine.shards(), shards);
        let (got, n) = alerts_of(engine, &exchanges);
        assert_eq!(got, inline, "{shards} shards");
        assert_eq!(n, clients);
    }
}

#[test]
fn sharded_detection_evicts_the_same_clients() {
    let exchanges = mixed_with_attacks();
    let (inline, _) = alerts_of(Engine::new(fixed(24)), &exchanges);
    let (sharded, _) = alerts_of(Engine::sharded(fixed(24), 3), &exchanges);
    assert_eq!(sharded, inline);
}

#[test]
fn outside_a_spec_each_client_is_told_once_from_the_first_packet_sharded_or_not() {
    let spec = crate::routes::spec::Spec::parse(
        "openapi: 3.0.0\npaths:\n  /api/items:\n    get: {}\n  /api/items/{id}.json:\n    get: {}\n",
    )
    .unwrap();
    let mut cfg = fixed(100_000);
    cfg.spec = Some(std::sync::Arc::new(spec));
    // Learning lasts its default: all of this is during it.
    let exchanges: Vec<Exchange> = (0..40u64)
        .flat_map(|t| {
            [1u8, 2].map(|c| {
                let uri = match t % 4 {
                    0 => "/api/items".to_string(),
                    1 => format!("/api/items/{t}.json"),
                    // `{id}.json` is not `{id}`: outside the spec.
                    2 => format!("/api/items/{t}"),
                    _ => "/api/hidden".to_string(),
                };
                exchange(t * SEC + u64::from(c), c, "GET", &uri, Some(200))
            })
        })
        .collect();
    let shadow = |engine: Engine| {
        let (lines, _) = alerts_of(engine, &exchanges);
        let got: Vec<String> = lines
            .iter()
            .filter(|l| l.contains("shadow_route"))
            .map(|l| {
                let ep = l.split("endpoint: Some(\"").nth(1).unwrap_or_default();
                let ip = l.split("Some(\"ip:").nth(1).unwrap_or_default();
                format!(
                    "{} {}",
                    ip.split('"').next().unwrap_or_default(),
                    ep.split('"').next().unwrap_or_default()
                )
            })
            .collect();
        (lines, got)
    };
    let (inline, got) = shadow(Engine::new(cfg.clone()));
    assert_eq!(
        got,
        [
            "10.0.0.1 GET /api/items/{id}",
            "10.0.0.2 GET /api/items/{id}",
            "10.0.0.1 GET /api/hidden",
            "10.0.0.2 GET /api/hidden",
        ],
        "{inline:#?}"
    );
    let (sharded, _) = shadow(Engine::sharded(cfg, 2));
    assert_eq!(sharded, inline);
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Any traffic, with request times out of order as exchanges finish, a full
    /// client table or not: the sharded engine raises what the inline one does.
    #[test]
    fn any_traffic_gives_the_same_alerts_inline_and_sharded(
        steps in proptest::collection::vec(
            (0u64..400, 0u64..3000, 0u8..6, 0u8..6, 0u16..2000, proptest::bool::ANY),
            1..1500,
        ),
        max_clients in 2usize..8,
        shards in 2usize..5,
    ) {
        let mut ts = 1_700_000_000 * SEC;
        let mut exchanges = Vec::new();
        for (gap_ms, back_ms, client, kind, n, ok) in steps {
            ts += gap_ms * 1_000_000;
            let at = ts.saturating_sub(back_ms * 1_000_000);
            let status = Some(if ok { 200 } else { 404 });
            let ex = match kind {
                0 => exchange(at, client, "GET", &format!("/w/{n}"), status),
                1 => exchange(at, client, "GET", &format!("/api/users/{n}"), status),
                2 => {
                    let mut e = exchange(at, client, "POST", "/api/login", Some(if ok { 200 } else { 401 }));
                    e.request_body_prefix = format!(r#"{{"username":"u{}","password":"p"}}"#, n % 50).into_bytes();
                    e
                }
                3 => exchange(at, client, "DELETE", &format!("/admin/items/{}", n % 3), status),
                _ => exchange(at, client, "GET", "/api/items", status),
            };
            exchanges.push(ex);
        }
        let mut cfg = fixed(max_clients);
        cfg.learning_period = 20 * SEC;
        let (inline, _) = alerts_and_snapshots(Engine::new(cfg.clone()), &exchanges, 97);
        let (sharded, _) = alerts_and_snapshots(Engine::sharded(cfg, shards), &exchanges, 97);
        proptest::prop_assert_eq!(sharded, inline);
    }
}
