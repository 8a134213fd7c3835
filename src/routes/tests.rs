use super::*;
use crate::http::testing::exchange;

#[test]
fn identifier_segments_become_classes() {
    let cases = [
        ("/users/1234", "/users/{id}"),
        (
            "/orders/3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f/items",
            "/orders/{uuid}/items",
        ),
        ("/blobs/5f2b8c1e1d2a4c3b9e8f0a1b", "/blobs/{hex}"),
        ("/users/alice@example.com", "/users/{email}"),
        ("/reset/eyJhbGciOiJIUzI1NiJ9abc123", "/reset/{token}"),
        ("/api/v1/login?user=x", "/api/v1/login"),
        ("/oauth2/token", "/oauth2/token"),
        ("http://example.com/a/7", "/a/{id}"),
        (
            "/api/articles/lessons-from-a-year-of-zero-downtime-deploys/favorite",
            "/api/articles/{name}/favorite",
        ),
        ("/books/v1/draf-notes-2", "/books/v1/{name}"),
        ("/profile/%40alice%3Achat.example", "/profile/{name}"),
        ("/api/auth/access-token", "/api/auth/access-token"),
        ("*", "*"),
        ("", "/"),
    ];
    for (uri, want) in cases {
        assert_eq!(template(uri), want, "{uri}");
    }
}

/// A templater fed exchanges, with a response body and a client each.
struct Feed {
    t: Templater,
}

impl Feed {
    fn new() -> Self {
        Feed {
            t: Templater::new(LearnConfig::default()),
        }
    }

    fn get(&mut self, uri: &str, status: u16, client: u64, body: &str) -> String {
        self.call("GET", uri, status, client, body)
    }

    fn call(&mut self, method: &str, uri: &str, status: u16, client: u64, body: &str) -> String {
        let mut ex = exchange(1, 1, method, uri, Some(status));
        ex.response_body_prefix = body.as_bytes().to_vec();
        ex.response_headers = Some(crate::http::Headers {
            content_type: (!body.is_empty()).then(|| "application/json".into()),
            ..Default::default()
        });
        self.t.template(&ex, client).to_string()
    }
}

#[test]
fn scanners_misses_teach_nothing_and_the_first_segment_stays() {
    let mut f = Feed::new();
    for i in 0..500 {
        f.get(&format!("/word{i}"), 200, i, "");
        f.get(&format!("/api/word{i}"), 404, i, "");
    }
    assert_eq!(f.get("/api/items", 200, 1, ""), "/api/items");
    assert_eq!(f.get("/word7", 200, 1, ""), "/word7");
}

#[test]
fn a_few_book_titles_with_the_same_answer_shape_are_one_route_from_the_start() {
    let mut f = Feed::new();
    let book = |t: &str| format!(r#"{{"book_title":"{t}","secret":"s","user":"u"}}"#);
    let titles = ["dune", "emma", "ulysses", "beloved", "middlemarch"];
    let got: Vec<String> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| f.get(&format!("/books/v1/{t}"), 200, i as u64 % 2, &book(t)))
        .collect();
    // Four siblings answered alike: from the fourth on they are one route.
    assert_eq!(got[3], "/books/v1/{name}");
    assert_eq!(got[4], "/books/v1/{name}");
    // A new title, a miss, and an unseen title under it all map there.
    assert_eq!(f.get("/books/v1/a-new-one", 404, 9, ""), "/books/v1/{name}");
    assert_eq!(
        f.get("/books/v1/hamlet", 200, 9, &book("hamlet")),
        "/books/v1/{name}"
    );
    // Routes learned late merge with their early literal forms.
    assert_eq!(f.t.lookup("/books/v1/dune"), "/books/v1/{name}");
}

#[test]
fn route_words_stay_literal_beside_names() {
    let mut f = Feed::new();
    let user = |n: &str| format!(r#"{{"username":"{n}","email":"{n}@x.io"}}"#);
    for (i, n) in ["ann", "bob", "cyd", "dee", "eve", "fay"]
        .iter()
        .enumerate()
    {
        f.get(&format!("/users/v1/{n}"), 200, i as u64, &user(n));
    }
    assert_eq!(
        f.get("/users/v1/gus", 200, 7, &user("gus")),
        "/users/v1/{name}"
    );
    assert_eq!(
        f.call("POST", "/users/v1/login", 200, 7, ""),
        "/users/v1/login"
    );
    assert_eq!(
        f.get("/users/v1/_debug", 200, 7, r#"{"users":[]}"#),
        "/users/v1/_debug"
    );
    assert_eq!(f.get("/users/v1/me", 200, 7, &user("gus")), "/users/v1/me");
    assert_eq!(f.get("/users/v1/v2", 200, 7, ""), "/users/v1/v2");
}

#[test]
fn names_handed_out_or_logged_in_with_are_data() {
    let mut f = Feed::new();
    f.t.note_value(b"carol");
    f.get(
        "/api/people",
        200,
        1,
        r#"[{"handle":"dave"},{"handle":"erin"}]"#,
    );
    assert_eq!(f.get("/api/people/carol", 200, 1, ""), "/api/people/carol");
    // A second value known from elsewhere makes the position a parameter.
    assert_eq!(f.get("/api/people/dave", 200, 2, ""), "/api/people/{name}");
    assert_eq!(f.get("/api/people/erin", 200, 3, ""), "/api/people/{name}");
}

#[test]
fn each_clients_own_objects_become_a_parameter() {
    let mut f = Feed::new();
    // Six users each polling their own profile, HTML answers (no JSON shape).
    for round in 0..5 {
        for (c, n) in ["ann", "bob", "cyd", "dee", "eve", "fay"]
            .iter()
            .enumerate()
        {
            let got = f.get(&format!("/u/{n}/home"), 200, c as u64, "");
            if round == 4 {
                assert_eq!(got, "/u/{name}/home", "round {round}");
            }
        }
    }
}

#[test]
fn many_busy_static_routes_are_not_merged() {
    let mut f = Feed::new();
    let routes: Vec<String> = (0..40)
        .map(|i| format!("resource{}", (b'a' + i as u8 % 26) as char).repeat(1 + i / 26))
        .map(|r| r.replace(char::is_numeric, ""))
        .collect();
    for round in 0..10u64 {
        for (i, r) in routes.iter().enumerate() {
            // Every route used by several clients, each with its own JSON shape.
            let body = format!(r#"{{"{r}":[],"count_{i}":0}}"#);
            let got = f.get(&format!("/api/v1/{r}"), 200, round % 4, &body);
            if round == 9 {
                assert_eq!(got, format!("/api/v1/{r}"));
            }
        }
    }
}

#[test]
fn learned_routes_do_not_split_again() {
    let mut f = Feed::new();
    for i in 0..20 {
        f.get(&format!("/p/post-number-{i}-of-many"), 200, i, "");
    }
    for i in 0..200 {
        let got = f.get(
            &format!("/p/w{i}"),
            if i % 2 == 0 { 200 } else { 404 },
            i,
            "",
        );
        assert_eq!(got, "/p/{name}");
    }
}

#[test]
fn positions_are_bounded() {
    let mut t = Templater::new(LearnConfig {
        max_positions: 16,
        ..LearnConfig::default()
    });
    for i in 0..1000 {
        t.template(
            &exchange(1, 1, "GET", &format!("/a/p{i}/x/y"), Some(200)),
            1,
        );
    }
    assert!(t.positions.len() <= 16);
    assert!(t.evicted > 0);
}

#[test]
fn segments_are_what_split_gives() {
    for p in [
        "",
        "/",
        "//",
        "/a",
        "/a/",
        "a/b",
        "/api/v1/users/42",
        "///x//y/",
        "/ü/✓/",
    ] {
        let mine: Vec<&str> = segments(p).collect();
        let std: Vec<&str> = p.split('/').collect();
        assert_eq!(mine, std, "{p:?}");
    }
}

#[test]
fn contains_any_agrees_with_str_contains() {
    let words = ["login", "sign-in", "auth", "a"];
    for s in [
        "",
        "a",
        "/api/login",
        "/v1/sign-in/x",
        "/oauth2/token",
        "/users/{id}",
        "logi",
        "sign-i",
    ] {
        let want = words.iter().any(|w| s.contains(w));
        assert_eq!(contains_any(s.as_bytes(), &words), want, "{s}");
        let want = words[..3].iter().any(|w| s.contains(w));
        assert_eq!(contains_any(s.as_bytes(), &words[..3]), want, "{s}");
    }
    assert!(!contains_any(b"anything", &[]));
}

#[test]
fn plain_lower_case_words_are_literal_unless_long_hex() {
    for (seg, want) in [
        ("api", None),
        ("users", None),
        ("a", None),
        ("deadbeefdeadbee", None),
        ("deadbeefdeadbeef", Some("{hex}")),
        ("deadbeefdeadbeefcafe", Some("{hex}")),
        ("deadbeefdeadbeefx", None),
        ("abcdefghijklmnopqrstuvwxyz", None),
    ] {
        assert_eq!(segment_class(seg), want, "{seg}");
    }
}

#[test]
fn paths_are_normalised_as_servers_route_them() {
    for (path, want) in [
        ("/api/login", "/api/login"),
        ("/api/%6cogin", "/api/login"),
        ("/api/%6Cogin", "/api/login"),
        ("/%61pi/./login", "/api/login"),
        ("//api//login", "/api/login"),
        ("/api/x/../login", "/api/login"),
        ("/api/x/%2e%2e/login", "/api/login"),
        ("/api;v=1/login;jsessionid=x", "/api/login"),
        ("/admin/..;/secret", "/secret"),
        ("/../../etc", "/etc"),
        ("/a/b/", "/a/b/"),
        ("/a//", "/a/"),
        ("/", "/"),
        ("//", "/"),
        ("/..", "/"),
        // Escapes of reserved and non-ASCII bytes are data.
        ("/files/a%2Fb", "/files/a%2Fb"),
        ("/users/%40alice%3Ax", "/users/%40alice%3Ax"),
        ("/caf%C3%A9/é%", "/caf%C3%A9/é%"),
        ("/bad/%zz%4", "/bad/%zz%4"),
        ("*", "*"),
        ("", ""),
    ] {
        assert_eq!(normalized(path), want, "{path}");
    }
    assert!(matches!(
        normalized("/api/users/17"),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn long_routes_are_cut_and_marked() {
    let short: crate::http::Text = "/api/users/{id}".into();
    assert_eq!(capped(short.clone()), short);
    let long = format!("/{}", "é".repeat(8000));
    let c = capped(long.as_str().into());
    assert!(c.len() <= LONG_ROUTE_KEEP + 6, "{}", c.len());
    assert!(c.ends_with("{long}") && long.starts_with(c.trim_end_matches("{long}")));
}
