//! `--web.config.file`: TLS and basic authentication for the metrics endpoint, in the
//! Prometheus exporter-toolkit format:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//! basic_auth_users:
//!   prometheus: $2y$10$...      # bcrypt hash
//! ```
//!
//! Only these keys are understood (relative paths are relative to the file); any
//! other key is an error naming it, so a setting is never silently ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the metrics server enforces.
#[derive(Clone, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name and bcrypt hash.
    pub users: Vec<(String, String)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field(
                "users",
                &self.users.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(v)
}

impl WebConfig {
    /// Reads and checks the file; errors name the file and the key.
    pub fn load(path: &str) -> Result<WebConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: cannot read web configuration: {e}"))?;
        let dir = Path::new(path).parent().unwrap_or(Path::new("."));
        let err = |line: usize, what: String| format!("{path}:{line}: {what}");
        let (mut section, mut cert, mut key) = (String::new(), None::<PathBuf>, None::<PathBuf>);
        let mut users = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = match raw.find(" #") {
                Some(c) if !raw.trim_start().starts_with('#') => &raw[..c],
                _ if raw.trim_start().starts_with('#') => "",
                _ => raw,
            };
            if line.trim().is_empty() {
                continue;
            }
            let indented = line.starts_with(' ') || line.starts_with('\t');
            let (k, v) = line
                .trim()
                .split_once(':')
                .ok_or_else(|| err(n, format!("'{}' is not a 'key: value' line", line.trim())))?;
            let (k, v) = (k.trim(), unquote(v));
            if !indented {
                match k {
                    "tls_server_config" | "basic_auth_users" if v.is_empty() => {
                        section = k.to_string()
                    }
                    "tls_server_config" | "basic_auth_users" => {
                        return Err(err(n, format!("{k}: expected a nested block")));
                    }
                    _ => {
                        return Err(err(
                            n,
                            format!(
                                "{k}: unsupported key (tls_server_config and basic_auth_users are)"
                            ),
                        ));
                    }
                }
                continue;
            }
            match (section.as_str(), k) {
                ("tls_server_config", "cert_file") => cert = Some(dir.join(v)),
                ("tls_server_config", "key_file") => key = Some(dir.join(v)),
                ("tls_server_config", other) => {
                    return Err(err(
                        n,
                        format!(
                            "tls_server_config.{other}: unsupported key (cert_file and key_file are)"
                        ),
                    ));
                }
                ("basic_auth_users", user) => {
                    if !(v.starts_with("$2a$") || v.starts_with("$2b$") || v.starts_with("$2y$")) {
                        return Err(err(
                            n,
                            format!("basic_auth_users.{user}: not a bcrypt hash"),
                        ));
                    }
                    users.push((user.to_string(), v.to_string()));
                }
                _ => return Err(err(n, format!("{k}: outside any section"))),
            }
        }
        let tls = match (cert, key) {
            (None, None) => None,
            (Some(c), Some(k)) => Some(Arc::new(
                tls_config(&c, &k).map_err(|e| format!("{path}: tls_server_config: {e}"))?,
            )),
            _ => {
                return Err(format!(
                    "{path}: tls_server_config needs both cert_file and key_file"
                ));
            }
        };
        Ok(WebConfig { tls, users })
    }

    /// Whether an `Authorization` header value admits the request.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some(creds) = authorization
            .and_then(|a| a.trim().split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
            .and_then(|(_, b)| crate::detect::login::base64_decode(b.trim()))
        else {
            return false;
        };
        let Some(colon) = creds.iter().position(|b| *b == b':') else {
            return false;
        };
        let (user, pass) = (&creds[..colon], &creds[colon + 1..]);
        self.users
            .iter()
            .find(|(u, _)| u.as_bytes() == user)
            .is_some_and(|(_, hash)| bcrypt::verify(pass, hash).unwrap_or(false))
    }
}

fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not fit: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        format!(
            "{}/tests/fixtures/web-config.yml",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn the_fixture_loads_with_tls_and_a_user() {
        let c = WebConfig::load(&fixture()).unwrap();
        assert!(c.tls.is_some());
        assert_eq!(c.users.len(), 1);
        // prometheus:scrape-me-please
        assert!(c.admits(Some("Basic cHJvbWV0aGV1czpzY3JhcGUtbWUtcGxlYXNl")));
        assert!(!c.admits(Some("Basic cHJvbWV0aGV1czp3cm9uZw==")));
        assert!(!c.admits(None));
        assert!(!c.admits(Some("Bearer x")));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_them() {
        let dir = std::env::temp_dir().join(format!("apiwatch-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.to_string_lossy().into_owned()
        };
        let e =
            WebConfig::load(&write("a.yml", "http_server_config:\n  http2: true\n")).unwrap_err();
        assert!(
            e.contains("http_server_config") && e.contains("a.yml"),
            "{e}"
        );
        let e =
            WebConfig::load(&write("b.yml", "basic_auth_users:\n  bob: plaintext\n")).unwrap_err();
        assert!(e.contains("basic_auth_users.bob"), "{e}");
        let e = WebConfig::load(&write(
            "c.yml",
            "tls_server_config:\n  cert_file: /nope.crt\n  key_file: /nope.key\n",
        ))
        .unwrap_err();
        assert!(e.contains("/nope.crt"), "{e}");
        let e = WebConfig::load(&write(
            "d.yml",
            "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n",
        ))
        .unwrap_err();
        assert!(e.contains("client_auth_type"), "{e}");
        assert!(
            WebConfig::load("/no/such/web.yml")
                .unwrap_err()
                .contains("/no/such/web.yml")
        );
        // No users and no TLS: everything is admitted (plain endpoint).
        assert!(
            WebConfig::load(&write("e.yml", "# nothing\n"))
                .unwrap()
                .admits(None)
        );
    }
}
