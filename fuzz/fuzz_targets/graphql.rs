//! GraphQL requests as apiwatch reads them: a POST body (an operation object or a
//! batch array, the query parsed by apollo-parser within its bounds) and a GET
//! target. No panic, bounded work; what is found stays within its caps.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(r) = apiwatch::graphql::from_body(data) {
        assert!(r.operations.len() <= apiwatch::graphql::MAX_OPERATIONS);
        assert!(r.attempts.len() <= apiwatch::graphql::MAX_ATTEMPTS);
        let _ = (r.label(), r.introspection(), r.aliases(), r.depth());
    }
    // The same bytes as a query, in a body and in a target.
    let q = String::from_utf8_lossy(data);
    let body = serde_json::json!({ "query": q }).to_string();
    if let Some(r) = apiwatch::graphql::from_body(body.as_bytes()) {
        assert!(r.label().is_some_and(|l| l.len() <= apiwatch::graphql::MAX_LABEL + 8));
    }
    let _ = apiwatch::graphql::from_target(&format!("/graphql?query={q}"));
});
