//! Redaction of request targets: any text never panics, redacting twice changes
//! nothing more, and the value of a query parameter whose name means a credential
//! never survives. Body prefixes as `--publish` seals them (JSON, form, text,
//! GraphQL): any bytes never panic, and a JSON secret field's value never survives.
#![no_main]
use apiwatch::redact::{is_secret_name, redact_body, redact_graphql, redact_uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut seal = |s: &[u8]| format!("<{}>", s.len());
    let _ = redact_body(data, &mut seal);
    let _ = redact_graphql(data, &mut seal);
    // The input's bytes as a JSON secret field's value, after a prefix of the input.
    let value: String = data
        .iter()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .map(|c| *c as char)
        .collect();
    let skeleton = r#"{"a":[1,{"b":"x"}],"password":"","z":1}"#;
    if value.len() >= 6 && !skeleton.contains(&value) {
        let body = format!(r#"{{"a":[1,{{"b":"x"}}],"password":"{value}","z":1}}"#);
        let out = redact_body(body.as_bytes(), &mut seal).expect("a password field");
        assert!(!String::from_utf8_lossy(&out).contains(&value), "{body}");
    }
    let text = String::from_utf8_lossy(data);
    let once = redact_uri(&text).into_owned();
    assert_eq!(redact_uri(&once), once.as_str());
    // `name=value` pairs the input names: a secret name's value is gone.
    if let Some((name, value)) = text.split_once('=') {
        let name: String = name.chars().filter(|c| !"?&#;=/".contains(*c)).collect();
        let value: String = value
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(40)
            .collect();
        if !name.is_empty() && value.len() >= 6 && is_secret_name(&name) && !"REDACTED".contains(&value) {
            let uri = format!("/p?{name}={value}");
            assert!(!redact_uri(&uri).contains(&format!("={value}")), "{uri}");
        }
    }
});
