//! `--user NAME`: after the capture sockets, the metrics listener and the output files
//! are open, apiwatch gives up root: supplementary groups, then the group, then the
//! user (the order matters: a process that is no longer root cannot change groups).

/// The uid and primary gid of `user`.
#[cfg(unix)]
pub fn lookup(user: &str) -> Result<(u32, u32), String> {
    let name =
        std::ffi::CString::new(user).map_err(|_| format!("--user {user}: not a user name"))?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live buffer of the size passed.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(format!("--user {user}: no such user"));
    }
    Ok((pw.pw_uid, pw.pw_gid))
}

/// Switches the process to `user` and that user's primary group. Errors are worded
/// for the command line.
#[cfg(unix)]
pub fn drop_to(user: &str) -> Result<(), String> {
    let (uid, gid) = lookup(user)?;
    let name =
        std::ffi::CString::new(user).map_err(|_| format!("--user {user}: not a user name"))?;
    // SAFETY: plain credential calls on a NUL-terminated name.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 && libc::setgroups(1, &gid) != 0 {
            return Err(format!(
                "--user {user}: cannot set groups: {} (apiwatch must start as root to use --user)",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!(
                "--user {user}: cannot set group {gid}: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setuid(uid) != 0 {
            return Err(format!(
                "--user {user}: cannot set user {uid}: {}",
                std::io::Error::last_os_error()
            ));
        }
        // Paranoia: root must not be recoverable.
        if uid != 0 && libc::setuid(0) == 0 {
            return Err(format!("--user {user}: root privileges could be regained"));
        }
    }
    tracing::info!(user, uid, gid, "Dropped privileges");
    Ok(())
}

/// After [`drop_to`]: warns, once per directory, where the user cannot create files
/// (an output to be reopened after rotation, or the state file, which is replaced
/// atomically), instead of failing hours later at the first SIGHUP or snapshot.
#[cfg(unix)]
pub fn check_directories(user: &str, files: &[&std::path::Path]) {
    use std::os::unix::ffi::OsStrExt;
    let mut seen = Vec::new();
    for f in files {
        // /dev/null, a FIFO...: nothing is rotated or replaced there.
        if std::fs::metadata(f).is_ok_and(|m| !m.is_file()) {
            continue;
        }
        let dir = match f.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        if seen.contains(&dir) {
            continue;
        }
        seen.push(dir);
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: access(2) on a NUL-terminated path; it checks the real ids, which
        // are the user's now.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
            tracing::warn!(
                "{user} cannot create files in {}: log rotation (SIGHUP) and the state file will fail there; give {user} that directory",
                dir.display()
            );
        }
    }
}

#[cfg(not(unix))]
pub fn check_directories(_user: &str, _files: &[&std::path::Path]) {}

#[cfg(not(unix))]
pub fn lookup(user: &str) -> Result<(u32, u32), String> {
    Err(format!("--user {user}: not supported on this system"))
}

#[cfg(not(unix))]
pub fn drop_to(user: &str) -> Result<(), String> {
    Err(format!("--user {user}: not supported on this system"))
}
