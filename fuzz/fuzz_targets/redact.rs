//! Redaction of request targets: any text never panics, redacting twice changes
//! nothing more, and the value of a query parameter whose name means a credential
//! never survives.
#![no_main]
use apiwatch::redact::{is_secret_name, redact_uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
