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

#[cfg(not(unix))]
pub fn lookup(user: &str) -> Result<(u32, u32), String> {
    Err(format!("--user {user}: not supported on this system"))
}

#[cfg(not(unix))]
pub fn drop_to(user: &str) -> Result<(), String> {
    Err(format!("--user {user}: not supported on this system"))
}
