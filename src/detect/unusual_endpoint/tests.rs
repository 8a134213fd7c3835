use super::*;
use crate::detect::tests::obs_at;

const SEC: Nanos = 1_000_000_000;
/// Learning ends at 300 s; its second half starts at 150 s.
const END: Nanos = 300 * SEC;

/// One inventory seen by several clients, ten clients known.
struct World {
    cfg: Config,
    inv: Inventory,
    /// Whether another client used the objects of the next calls before.
    others_objects: bool,
    /// With a spec: whether the next calls are outside it.
    outside_spec: Option<bool>,
}

impl World {
    fn new() -> Self {
        World {
            cfg: Config::default(),
            inv: Inventory::default(),
            others_objects: true,
            outside_spec: None,
        }
    }

    /// `client` (with its profile) calls `method path` at `secs`; the endpoint hash
    /// is the template's length plus its bytes (distinct enough for a test).
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        prof: &mut Profile,
        client: u64,
        secs: u64,
        method: &str,
        path: &str,
        status: u16,
        objects: &[u64],
    ) -> Option<Finding> {
        let o = obs_at(secs * SEC, method, path, Some(status));
        let obs = o.obs();
        let ep =
            obs.endpoint.bytes().map(u64::from).sum::<u64>() * 1000 + obs.endpoint.len() as u64;
        let seen = inventory(
            &self.cfg,
            &mut self.inv,
            &obs,
            Use {
                ts: obs.ts,
                endpoint: &obs.endpoint,
                endpoint_hash: ep,
                client_hash: client,
                principal: None,
                status: obs.status,
                request_type: None,
                response_type: None,
                slash_redirect: false,
                sensitive: None,
                server: ([10, 0, 0, 2].into(), 8080),
            },
            self.outside_spec,
            (END / 2, END),
        );
        profile(
            &self.cfg,
            prof,
            &obs,
            ClientSide {
                endpoint_hash: ep,
                seen,
                clients_known: 10,
                learning_end: END,
                objects,
                others_objects: self.others_objects,
            },
        )
    }
}

/// A client that browsed `/api/items` and its own item 5 during learning.
fn established(w: &mut World, client: u64) -> Profile {
    let mut prof = Profile::default();
    for i in 0..40u64 {
        assert!(
            w.call(&mut prof, client, i, "GET", "/api/items", 200, &[])
                .is_none()
        );
        w.call(&mut prof, client, i, "GET", "/api/items/5", 200, &[5]);
    }
    prof
}

#[test]
fn a_sensitive_route_few_others_use() {
    let mut w = World::new();
    let mut prof = established(&mut w, 7);
    // The usual route after learning: quiet.
    assert!(
        w.call(&mut prof, 7, 400, "GET", "/api/items", 200, &[])
            .is_none()
    );
    // An operator used /admin/users during learning (so it is not shadow).
    let mut other = Profile::default();
    w.call(&mut other, 8, 10, "GET", "/admin/users", 200, &[]);
    let f = w
        .call(&mut prof, 7, 401, "GET", "/admin/users", 200, &[])
        .expect("unusual");
    assert_eq!(f.evidence["rule"], "sensitive_route");
    assert_eq!(f.evidence["usual_routes"][0], "GET /api/items");
}

#[test]
fn a_new_object_on_a_known_route_is_never_unusual() {
    let mut w = World::new();
    let mut prof = established(&mut w, 7);
    for id in 100..200u64 {
        let path = format!("/api/items/{id}");
        assert!(
            w.call(&mut prof, 7, 400 + id, "GET", &path, 200, &[id])
                .is_none()
        );
    }
}

#[test]
fn writes_to_objects_the_client_never_touched() {
    let mut w = World::new();
    let mut prof = established(&mut w, 7);
    // Its own object: fine.
    assert!(
        w.call(&mut prof, 7, 400, "PUT", "/api/items/5", 200, &[5])
            .is_none()
    );
    let mut prof = established(&mut w, 9);
    let f = w
        .call(&mut prof, 9, 401, "DELETE", "/api/items/77", 403, &[77])
        .expect("foreign write");
    assert_eq!(f.evidence["rule"], "foreign_object_write");
    // An object nobody else ever used is not someone else's (a client-made id, as
    // `PUT /send/{txnId}`), however new it is to this client.
    let mut prof = established(&mut w, 11);
    w.others_objects = false;
    assert!(
        w.call(&mut prof, 11, 403, "PUT", "/api/items/99", 200, &[99])
            .is_none()
    );
    w.others_objects = true;
    // Created objects are its own (the engine touches what a creation hands out).
    let mut prof = established(&mut w, 10);
    prof.touch(88);
    assert!(
        w.call(&mut prof, 10, 402, "DELETE", "/api/items/88", 204, &[88])
            .is_none()
    );
}

#[test]
fn a_page_size_far_above_the_clients_own() {
    let mut w = World::new();
    let mut prof = established(&mut w, 7);
    assert!(
        w.call(&mut prof, 7, 400, "GET", "/api/items?limit=20", 200, &[])
            .is_none()
    );
    let f = w
        .call(
            &mut prof,
            7,
            401,
            "GET",
            "/api/items?page=1&_limit=10000",
            200,
            &[],
        )
        .expect("bulk");
    assert_eq!(f.evidence["rule"], "bulk_query");
    assert_eq!(page_size("/x?per_page=50&page[size]=900"), Some(900));
}

#[test]
fn shadow_endpoint_is_reported_once() {
    let mut w = World::new();
    let mut prof = Profile::default();
    let f = w
        .call(&mut prof, 1, 500, "GET", "/api/v2/hidden", 200, &[])
        .expect("shadow");
    assert_eq!(f.evidence["shadow"], true);
    assert!(
        w.call(&mut prof, 1, 500, "GET", "/api/v2/hidden", 200, &[])
            .is_none()
    );
    // A 404 on a new path is a scan's business, not a shadow endpoint.
    assert!(
        w.call(&mut prof, 1, 501, "GET", "/nothing-here", 404, &[])
            .is_none()
    );
}

#[test]
fn outside_the_spec_every_client_is_told_once_from_the_first_packet() {
    let mut w = World::new();
    w.outside_spec = Some(true);
    let (mut a, mut b) = (Profile::default(), Profile::default());
    // During learning: a spec needs none.
    let f = w
        .call(&mut a, 1, 5, "GET", "/api/v2/hidden", 200, &[])
        .expect("shadow during learning");
    assert_eq!(f.evidence["rule"], "shadow_route");
    assert_eq!(f.evidence["outside_spec"], true);
    assert_eq!(f.evidence["during_learning"], true);
    assert!(
        w.call(&mut a, 1, 6, "GET", "/api/v2/hidden", 200, &[])
            .is_none()
    );
    // Another client on the same route is told too, once.
    assert!(
        w.call(&mut b, 2, 7, "GET", "/api/v2/hidden", 200, &[])
            .is_some()
    );
    assert!(
        w.call(&mut b, 2, 500, "GET", "/api/v2/hidden", 200, &[])
            .is_none()
    );
    // Not an answer, or a static file: nothing.
    assert!(
        w.call(&mut a, 1, 8, "GET", "/api/v2/other", 404, &[])
            .is_none()
    );
    assert!(w.call(&mut a, 1, 8, "GET", "/app.js", 200, &[]).is_none());
    // The 404 was no report: the route's first 2xx for this client is.
    assert!(
        w.call(&mut a, 1, 9, "GET", "/api/v2/other", 200, &[])
            .is_some()
    );
    // Inside the spec: nothing, learning or not.
    w.outside_spec = Some(false);
    assert!(
        w.call(&mut a, 1, 10, "GET", "/api/v2/in", 200, &[])
            .is_none()
    );
    assert!(
        w.call(&mut a, 1, 500, "GET", "/api/v2/in2", 200, &[])
            .is_none()
    );
}

#[test]
fn a_client_is_told_of_at_most_the_cap_of_shadow_routes() {
    let mut w = World::new();
    w.outside_spec = Some(true);
    let mut a = Profile::default();
    let told = (0..SHADOW_CAP + 10)
        .filter(|i| {
            // Distinct lengths: distinct endpoint hashes here.
            let path = format!("/api/hidden/{}", "x".repeat(i + 1));
            w.call(&mut a, 1, 5, "GET", &path, 200, &[]).is_some()
        })
        .count();
    assert_eq!(told, SHADOW_CAP);
}

#[test]
fn no_shadow_alerts_while_the_service_keeps_revealing_endpoints() {
    let mut w = World::new();
    let mut prof = Profile::default();
    for i in 0..10u64 {
        let path = format!("/api/feature{}", (b'a' + i as u8) as char);
        assert!(
            w.call(&mut prof, 1, 200 + i, "GET", &path, 200, &[])
                .is_none()
        );
    }
    assert!(
        w.call(&mut prof, 1, 500, "GET", "/api/feature-new", 200, &[])
            .is_none()
    );
}

#[test]
fn sensitivity_by_name_and_by_mutation() {
    let cfg = Config::default();
    assert!(sensitive(&cfg, "GET", "/api/admin/users"));
    assert!(sensitive(&cfg, "GET", "/internal/debug"));
    assert!(sensitive(&cfg, "GET", "/users/v1/_debug"));
    assert!(sensitive(&cfg, "DELETE", "/api/users/{id}"));
    assert!(!sensitive(&cfg, "GET", "/api/users/{id}"));
    assert!(!sensitive(&cfg, "GET", "/api/environmental-data"));
    assert!(!sensitive_by_name(&cfg, "/api/{name}/items"));
}
