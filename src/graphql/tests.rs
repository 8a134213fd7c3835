use super::*;

fn body(v: serde_json::Value) -> Option<Request> {
    from_body(v.to_string().as_bytes())
}

#[test]
fn an_operation_is_named_by_type_and_name_or_root_fields() {
    let r = body(serde_json::json!({"query": "mutation Login($u: String!, $p: String!) { login(username: $u, password: $p) { token } }", "variables": {"u": "alice", "p": "x"}})).unwrap();
    assert_eq!(r.label().as_deref(), Some("mutation Login"));
    assert_eq!(r.attempts, vec![Some(b"alice".to_vec())]);
    let r = body(serde_json::json!({"query": "{ me { name } orders(userId: 1) { id } }"})).unwrap();
    assert_eq!(r.label().as_deref(), Some("query {me,orders}"));
    assert!(r.attempts.is_empty());
    assert_eq!(r.operations[0].depth, 2);
}

#[test]
fn operation_name_picks_among_several() {
    let r = body(serde_json::json!({"query": "query A { a } query B { b }", "operationName": "B"}))
        .unwrap();
    assert_eq!(r.label().as_deref(), Some("query B"));
}

#[test]
fn aliased_logins_are_one_attempt_each() {
    let fields: Vec<String> = (0..50)
        .map(|i| format!("a{i}: login(username: \"admin\", password: \"pw{i}\") {{ token }}"))
        .collect();
    let q = format!("mutation {{ {} }}", fields.join(" "));
    let r = body(serde_json::json!({ "query": q })).unwrap();
    assert_eq!(r.attempts.len(), 50);
    assert!(
        r.attempts
            .iter()
            .all(|u| u.as_deref() == Some(&b"admin"[..]))
    );
    assert_eq!(r.aliases(), 50);
    assert_eq!(r.label().as_deref(), Some("mutation {login}"));
}

#[test]
fn a_batch_counts_its_elements_and_their_attempts() {
    let ops: Vec<serde_json::Value> = (0..40)
        .map(|i| serde_json::json!({"query": "mutation($u: String!, $p: String!) { login(email: $u, password: $p) { token } }", "variables": {"u": format!("user{i}@x"), "p": "x"}}))
        .collect();
    let r = body(serde_json::Value::Array(ops)).unwrap();
    assert_eq!(r.batch, 40);
    assert_eq!(r.attempts.len(), 40);
    assert_eq!(r.attempts[7].as_deref(), Some(&b"user7@x"[..]));
}

#[test]
fn introspection_and_persisted_queries() {
    let r = body(
        serde_json::json!({"query": "query IntrospectionQuery { __schema { types { name } } }"}),
    )
    .unwrap();
    assert!(r.introspection());
    let r = body(serde_json::json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}})).unwrap();
    assert_eq!(r.label().as_deref(), Some("persisted ecf4edb46db4"));
}

#[test]
fn get_requests_carry_the_query_in_the_target() {
    let r =
        from_target("/graphql?query=query%20Me%20%7B%20me%20%7B%20id%20%7D%20%7D&operationName=Me")
            .unwrap();
    assert_eq!(r.label().as_deref(), Some("query Me"));
    assert!(from_target("/graphql?x=1").is_none());
}

#[test]
fn hostile_queries_stay_bounded() {
    // Deep nesting, a broken document, a huge alias count, not JSON.
    let deep = format!("{{{}}}", "a {".repeat(10_000));
    let r = body(serde_json::json!({ "query": deep }));
    assert!(r.is_none_or(|r| r.depth() <= MAX_RECURSION + 1));
    assert!(
        body(serde_json::json!({"query": "mutation { login(password: "}))
            .is_none_or(|r| r.attempts.len() <= 1)
    );
    let many = format!(
        "mutation {{ {} }}",
        "x: login(password: \"p\") ".repeat(5_000)
    );
    let r = body(serde_json::json!({ "query": many })).unwrap();
    assert!(r.attempts.len() <= MAX_ATTEMPTS);
    assert!(from_body(b"not json").is_none());
    assert!(from_body(b"[1, 2, 3]").is_none());
}
