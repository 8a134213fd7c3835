//! Capture files mapped into memory, safe against truncation.
//!
//! Replay borrows packets straight from a read-only mapping of the file. If another
//! process shrinks the file meanwhile (copytruncate log rotation, a writer that
//! restarts), touching a page past the new end raises `SIGBUS`, which would kill the
//! process with no summary and no state. A `SIGBUS` handler checks whether the
//! faulting address lies in one of the registered mappings; if so it maps zero pages
//! over the rest of that mapping (`MAP_FIXED`, anonymous, read-only), marks the
//! mapping as shrunk and returns, so the faulting read sees zeros instead. The
//! reader checks the mark before and after each record and ends the file with a
//! "shrank while read" warning: what came before the cut was processed, every output
//! is written. A `SIGBUS` outside the registered mappings keeps its default action.
//!
//! `mmap` is not on POSIX's list of async-signal-safe functions, but on Linux it is a
//! plain system call wrapper with no locks, which is what the handler relies on.

use std::ops::Deref;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Mappings watched at once (one per open capture file; replay opens one at a time).
const SLOTS: usize = 32;

struct Region {
    start: AtomicUsize,
    len: AtomicUsize,
    shrank: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Region = Region {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    shrank: AtomicBool::new(false),
};

static REGIONS: [Region; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for r in &REGIONS {
        let start = r.start.load(Ordering::Acquire);
        let len = r.len.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= start + len {
            continue;
        }
        let from = addr & !(page - 1);
        let rest = start + len - from;
        // SAFETY: replaces pages inside a mapping this process owns and registered;
        // the range stays mapped (zeros) until the owner unmaps the whole mapping.
        let p = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                rest,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            r.shrank.store(true, Ordering::Release);
            return;
        }
    }
    // Not a watched mapping (a real fault): the default action, on return the
    // instruction faults again and the process ends as it would have.
    // SAFETY: resetting a disposition is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf and sigaction with a zeroed, filled-in struct.
        unsafe {
            let p = libc::sysconf(libc::_SC_PAGESIZE);
            if p > 0 {
                PAGE.store(p as usize, Ordering::Relaxed);
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) != 0 {
                tracing::warn!("Cannot install the SIGBUS handler: a capture file truncated while read would end the process");
            }
        }
    });
}

/// A read-only mapping of a whole capture file, watched for truncation.
pub struct MappedFile {
    map: memmap2::Mmap,
    slot: Option<usize>,
}

impl MappedFile {
    /// Maps `f` and registers the mapping with the `SIGBUS` handler. `None` when the
    /// file cannot be mapped.
    pub fn map(f: &std::fs::File) -> Option<MappedFile> {
        install();
        // SAFETY: read-only and private; truncation by another process is handled by
        // the SIGBUS handler above instead of killing the process.
        let map = unsafe { memmap2::Mmap::map(f) }.ok()?;
        let start = map.as_ptr() as usize;
        let slot = REGIONS.iter().position(|r| {
            r.start
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        match slot {
            Some(i) => {
                let r = &REGIONS[i];
                r.shrank.store(false, Ordering::Relaxed);
                r.len.store(map.len(), Ordering::Release);
                r.start.store(start, Ordering::Release);
            }
            None => tracing::warn!(
                "Too many mapped capture files: this one is not protected against truncation"
            ),
        }
        Some(MappedFile { map, slot })
    }

    /// Whether the file shrank under the mapping (pages past the cut read as zeros).
    pub fn shrank(&self) -> bool {
        self.slot
            .is_some_and(|i| REGIONS[i].shrank.load(Ordering::Acquire))
    }

    pub fn mmap(&self) -> &memmap2::Mmap {
        &self.map
    }
}

impl Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let r = &REGIONS[i];
            r.len.store(0, Ordering::Release);
            r.start.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_truncated_under_its_mapping_reads_as_zeros_and_is_marked() {
        let path = std::env::temp_dir().join(format!("apiwatch-mapped-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![0xab; 1 << 20]).unwrap();
        drop(f);
        let f = std::fs::File::open(&path).unwrap();
        let m = MappedFile::map(&f).unwrap();
        assert_eq!(m[100], 0xab);
        assert!(!m.shrank());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(8192)
            .unwrap();
        // Without the handler this read would kill the test process with SIGBUS.
        let tail = std::hint::black_box(m[(1 << 20) - 1]);
        assert_eq!(tail, 0);
        assert!(m.shrank());
        assert_eq!(m[100], 0xab, "pages before the cut are untouched");
        drop(m);
        let _ = std::fs::remove_file(&path);
    }
}
