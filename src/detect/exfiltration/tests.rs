use super::*;
use crate::detect::tests::{obs_at, test_hash};

/// One GET of `uri` at `ts` answered with `len` bytes; the finding if any, and what
/// it contributed.
fn get(
    st: &mut State,
    pop: &Population,
    ts: Nanos,
    uri: &str,
    status: u16,
    len: u64,
) -> (Option<Finding>, Vec<Contribution>) {
    let cfg = Config::default();
    let mut o = obs_at(ts, "GET", uri, Some(status));
    o.ex.response_body_len = Some(len);
    let obs = o.obs();
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    let mut c = Vec::new();
    let f = observe(
        &cfg,
        st,
        pop,
        &obs,
        query,
        test_hash(obs.endpoint.as_bytes()),
        &test_hash,
        &mut c,
        &|| true,
    );
    (f, c)
}

#[test]
fn page_parameters_by_convention_are_pages_and_others_are_not() {
    let h = &test_hash;
    for q in [
        "page=3",
        "per_page=50&page=2",
        "offset=100&limit=50",
        "cursor=eyJpZCI6MTB9",
        "page%5Bnumber%5D=4",
        "page[offset]=20",
        "starting_after=cus_123",
        "$skip=40",
    ] {
        assert!(page_of(q, h).is_some(), "{q}");
    }
    for q in [
        "",
        "limit=50",
        "q=shoes&sort=asc",
        "page=",
        "pages=3",
        "id=7",
    ] {
        assert!(page_of(q, h).is_none(), "{q}");
    }
    assert_eq!(page_of("page=3&per_page=20", h).unwrap().1, Some(3));
    assert_ne!(page_of("page=3", h), page_of("page=4", h));
}

#[test]
fn a_user_reading_the_first_pages_is_not_a_walk_but_a_scraper_to_the_end_is() {
    let pop = Population::default();
    let mut user = State::default();
    for p in 1..=3 {
        let (f, _) = get(
            &mut user,
            &pop,
            p * SEC,
            &format!("/api/customers?page={p}"),
            200,
            4000,
        );
        assert!(f.is_none());
    }
    let mut scraper = State::default();
    let mut found = None;
    for p in 1..=12u64 {
        // The last page is partial.
        let len = if p == 12 { 900 } else { 4000 };
        let (f, _) = get(
            &mut scraper,
            &pop,
            100 * SEC + p * SEC / 2,
            &format!("/api/customers?page={p}&per_page=50"),
            200,
            len,
        );
        if f.is_some() && found.is_none() {
            found = f;
        }
    }
    let f = found.expect("the walk to the end");
    assert_eq!(f.kind, Kind::DataExfiltration);
    assert_eq!(f.evidence["reason"], "paging");
    assert_eq!(f.evidence["pages"], 12);
    assert_eq!(f.evidence["reached_end"], true);
    assert_eq!(f.evidence["first_page"], 1);
    assert_eq!(f.evidence["last_page"], 12);
}

#[test]
fn a_walk_without_an_end_needs_twice_the_pages() {
    let pop = Population::default();
    let mut st = State::default();
    let mut first = None;
    for p in 1..=20u64 {
        let (f, _) = get(
            &mut st,
            &pop,
            p * SEC,
            &format!("/feed?cursor=c{p}"),
            200,
            3000,
        );
        if f.is_some() && first.is_none() {
            first = Some(p);
        }
    }
    assert_eq!(first, Some(16), "2 × min_pages distinct cursors");
}

#[test]
fn a_client_that_always_syncs_everything_has_that_as_its_usual() {
    let pop = Population::default();
    let mut st = State::default();
    // A nightly-style sync: 12 pages to the end, every 11 minutes, five times.
    let mut alerts = 0;
    for round in 0..5u64 {
        for p in 1..=12u64 {
            let len = if p == 12 { 500 } else { 4000 };
            let ts = SEC + round * 660 * SEC + p * SEC;
            let (f, _) = get(&mut st, &pop, ts, &format!("/api/items?page={p}"), 200, len);
            alerts += usize::from(f.is_some());
        }
    }
    // The first sync is new; after that the client's usual is twelve pages.
    assert!(alerts > 0 && alerts <= 2, "{alerts}");
    assert!(st.usual_pages.mean >= 6.0, "{:?}", st.usual_pages);
}

#[test]
fn ten_times_the_usual_volume_above_the_floor_is_exfiltration() {
    let mut pop = Population::default();
    for _ in 0..20 {
        pop.add(Contribution::Bytes(50_000.0));
    }
    let mut st = State::default();
    // Five minutes at 40 KB a minute.
    for s in 0..300u64 {
        if s % 6 == 0 {
            let (f, _) = get(&mut st, &pop, SEC + s * SEC, "/api/me", 200, 4000);
            assert!(f.is_none());
        }
    }
    // Then 2 MB in 20 s.
    let mut found = None;
    for i in 0..20u64 {
        let (f, _) = get(
            &mut st,
            &pop,
            301 * SEC + i * SEC,
            "/api/export",
            200,
            100_000,
        );
        found = found.or(f);
    }
    let f = found.expect("volume");
    assert_eq!(f.evidence["reason"], "volume");
    assert!(f.evidence["response_bytes"].as_u64().unwrap() >= 1 << 20);
}

#[test]
fn a_big_download_below_the_floor_is_not_exfiltration() {
    let mut pop = Population::default();
    for _ in 0..20 {
        pop.add(Contribution::Bytes(5_000.0));
    }
    let mut st = State::default();
    for s in 0..10u64 {
        get(&mut st, &pop, SEC + s * 30 * SEC, "/api/me", 200, 500);
    }
    let (f, _) = get(&mut st, &pop, 400 * SEC, "/api/report.pdf", 200, 900_000);
    assert!(f.is_none());
}
