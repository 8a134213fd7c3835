//! Signals of a long-running sensor: SIGINT / SIGTERM stop the capture cleanly,
//! SIGHUP reopens the output files (after log rotation). The handlers only set
//! atomics; the loops that own the work look at them.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// 0 while running; the signal that asked for a stop, or -1 for [`request_stop`].
static STOP: AtomicI32 = AtomicI32::new(0);
static REOPEN: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_stop(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

#[cfg(unix)]
extern "C" fn on_hangup(_: libc::c_int) {
    REOPEN.store(true, Ordering::SeqCst);
}

/// Installs the handlers (live capture and replay alike).
pub fn install() {
    #[cfg(unix)]
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, on_hangup as *const () as libc::sighandler_t);
    }
}

/// Whether a stop was requested.
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst) != 0
}

/// The signal that stopped the run (`SIGINT`, `SIGTERM`), if one did.
pub fn stopped_by() -> Option<&'static str> {
    match STOP.load(Ordering::SeqCst) {
        #[cfg(unix)]
        libc::SIGINT => Some("SIGINT"),
        #[cfg(unix)]
        libc::SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}

/// Asks every loop to stop (as SIGTERM would, but the run is not reported as
/// interrupted by a signal).
pub fn request_stop() {
    let _ = STOP.compare_exchange(0, -1, Ordering::SeqCst, Ordering::SeqCst);
}

/// Whether SIGHUP arrived since the last call.
pub fn take_reopen() -> bool {
    // A plain load first: this is asked once per exchange.
    REOPEN.load(Ordering::Relaxed) && REOPEN.swap(false, Ordering::SeqCst)
}
