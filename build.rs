//! Build facts for `--build-info` and `apiwatch_build_info`: the git revision (or
//! `APIWATCH_GIT_REVISION` set by a packager building outside a checkout), the
//! compiler, target and profile.

use std::path::Path;
use std::process::Command;

fn main() {
    let revision = std::env::var("APIWATCH_GIT_REVISION").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|r| !r.is_empty())
    });
    println!(
        "cargo:rustc-env=APIWATCH_GIT_REVISION={}",
        revision.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rerun-if-env-changed=APIWATCH_GIT_REVISION");
    // A new commit changes HEAD or the branch it points at.
    let git = Path::new(".git");
    if git.is_dir() {
        for p in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
            if Path::new(p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    } else if git.is_file() {
        println!("cargo:rerun-if-changed=.git");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=APIWATCH_RUSTC_VERSION={version}");
    println!(
        "cargo:rustc-env=APIWATCH_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=APIWATCH_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=build.rs");
}
