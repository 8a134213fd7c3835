//! Files that must survive a crash whole: the state snapshot and the endpoint
//! inventory. Each is written to a temporary file beside it (created exclusively,
//! never through a symbolic link), through a buffer, fsync'd, renamed over the old
//! file, and the directory fsync'd, so a reader sees the old file or the new one.
//! Temporary files a killed run left behind are removed at the next start.
//!
//! Writing happens on a [`Saver`] thread: the processing thread only builds the
//! snapshot in memory and hands it over, so a large snapshot never stalls the packet
//! path (at most one is in flight; a snapshot due while the previous one is still
//! being written is skipped and counted).

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// The temporary name for `path`: `.NAME.tmp-PID` in the same directory.
fn temp_path(path: &Path) -> (PathBuf, String) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.tmp-");
    (dir.join(format!("{prefix}{}", std::process::id())), prefix)
}

/// Writes `path` atomically with `body`, which writes through a buffer.
pub fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let (tmp, _) = temp_path(path);
    // A file of this name is this process's own earlier failure: replace it.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        let mut w = BufWriter::with_capacity(256 * 1024, f);
        body(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes temporary files of `path` left by runs that no longer exist (killed
/// before their rename). A file whose process is still alive is left alone.
/// Returns how many were removed.
pub fn remove_leftovers(path: &Path) -> usize {
    let (tmp, prefix) = temp_path(path);
    let Some(dir) = tmp.parent() else {
        return 0;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists();
        if !alive && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            file = %path.display(),
            removed,
            "Removed temporary files an interrupted run left"
        );
    }
    removed
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread that writes snapshots while processing goes on.
pub struct Saver {
    tx: Option<mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Snapshots skipped because the previous one was still being written.
    pub skipped: u64,
}

impl Saver {
    pub fn new() -> Saver {
        let (tx, rx) = mpsc::sync_channel::<Job>(1);
        let thread = std::thread::Builder::new()
            .name("apiwatch-saver".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .map_err(|e| tracing::warn!(%e, "No snapshot thread: snapshots are written inline"))
            .ok();
        Saver {
            tx: thread.as_ref().map(|_| tx),
            thread,
            skipped: 0,
        }
    }

    /// Hands `job` to the thread; runs it here when there is no thread. When the
    /// previous job is still queued, this one is dropped (counted, logged once).
    pub fn submit(&mut self, job: impl FnOnce() + Send + 'static) {
        match &self.tx {
            Some(tx) => match tx.try_send(Box::new(job)) {
                Ok(()) => {}
                Err(mpsc::TrySendError::Full(_)) => {
                    self.skipped += 1;
                    if self.skipped == 1 {
                        tracing::warn!(
                            "A snapshot was due while the previous one was still being written: skipped"
                        );
                    }
                }
                Err(mpsc::TrySendError::Disconnected(job)) => job(),
            },
            None => job(),
        }
    }

    /// Waits until every submitted job is done.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Default for Saver {
    fn default() -> Self {
        Saver::new()
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("apiwatch-durable-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_whole_files_and_never_follows_a_planted_link() {
        let d = dir("link");
        let target = d.join("victim");
        fs::write(&target, b"precious").unwrap();
        let path = d.join("state.json");
        // A link planted where the temporary file will be created.
        let (tmp, _) = temp_path(&path);
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        write_atomic(&path, |w| w.write_all(b"{}\n")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}\n");
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        assert!(!tmp.exists());
    }

    #[test]
    fn leftovers_of_dead_runs_are_removed_and_live_ones_kept() {
        let d = dir("leftovers");
        let path = d.join("state.json");
        let dead = d.join(".state.json.tmp-4000000000");
        let live = d.join(format!(".state.json.tmp-{}", 1));
        let other = d.join(".other.json.tmp-4000000000");
        for p in [&dead, &live, &other] {
            fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_leftovers(&path), 1);
        assert!(!dead.exists());
        assert!(live.exists(), "pid 1 is alive");
        assert!(other.exists());
    }

    #[test]
    fn a_failing_body_leaves_the_old_file_and_no_temporary() {
        let d = dir("fail");
        let path = d.join("inv.json");
        fs::write(&path, b"old").unwrap();
        let r = write_atomic(&path, |_| Err(io::Error::other("boom")));
        assert!(r.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn the_saver_runs_jobs_in_order_and_finish_waits() {
        let mut s = Saver::new();
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            let tx = tx.clone();
            s.submit(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                tx.send(i).unwrap();
            });
        }
        s.finish();
        let got: Vec<i32> = rx.try_iter().collect();
        // The first always runs; while it runs one more may wait, the rest are
        // skipped. What runs, runs in order, and finish() waited for it.
        assert_eq!(got.first(), Some(&0), "{got:?}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert_eq!(got.len() as u64 + s.skipped, 3);
    }
}
