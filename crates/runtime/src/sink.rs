//! The container runner's log files, written directly (docs/faults.md): PM2's log writer drops
//! the writes still queued in it when it reopens its files for a rotation, so the runner appends
//! the container's lines (and its own) to `apps/logs/<service>/{out,error}.log` itself, with
//! `O_APPEND`, and PM2's own files for the runner are `/dev/null` (the lines still go to the
//! runner's stdout/stderr, so PM2's bus — live `pm2 logs` — shows them). When the agent renames a
//! file to rotate it, the sink notices within 200 ms of the next write, or within a second when
//! idle (`tick`), that the path names another file, and opens the new one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use crate::layout::{ERR_ENV, OUT_ENV};

pub struct Sink {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    checked: Instant,
}

impl Sink {
    pub fn open(path: PathBuf) -> Sink {
        let mut s = Sink {
            path,
            file: None,
            ino: 0,
            checked: Instant::now(),
        };
        s.reopen();
        s
    }

    fn reopen(&mut self) {
        if let Some(dir) = self.path.parent() {
            // The open below fails (and says so) when the directory cannot be made.
            std::fs::create_dir_all(dir).ok();
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ok();
        self.ino = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino())
            .unwrap_or(0);
        self.checked = Instant::now();
    }

    /// Reopens when the path names another file than ours (renamed by a rotation) or none.
    pub fn check(&mut self, every: Duration) {
        if self.file.is_some() && self.checked.elapsed() < every {
            return;
        }
        self.checked = Instant::now();
        let now = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if self.file.is_none() || now != Some(self.ino) {
            self.reopen();
        }
    }

    /// Appends whole lines; false when the file cannot be written.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        self.check(Duration::from_millis(200));
        self.file
            .as_mut()
            .is_some_and(|f| f.write_all(bytes).is_ok())
    }
}

struct Sinks {
    out: Option<Sink>,
    err: Option<Sink>,
}

fn sinks() -> &'static Mutex<Sinks> {
    static SINKS: OnceLock<Mutex<Sinks>> = OnceLock::new();
    SINKS.get_or_init(|| {
        let open = |var: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(|p| Sink::open(PathBuf::from(p)))
        };
        Mutex::new(Sinks {
            out: open(OUT_ENV),
            err: open(ERR_ENV),
        })
    })
}

/// Writes to the stream's file (when the runner has one) and to the process's own stream (PM2's
/// bus; PM2 writes it to a file only for runners started before sinks existed).
pub fn write(stderr: bool, text: &str) {
    if let Ok(mut s) = sinks().lock() {
        let sink = if stderr {
            s.err.as_mut()
        } else {
            s.out.as_mut()
        };
        if let Some(sink) = sink {
            sink.write(text.as_bytes());
        }
    }
    if stderr {
        // The copy for PM2's bus: the file above is the record, and a trace would go to this
        // same stderr.
        let mut e = std::io::stderr().lock();
        e.write_all(text.as_bytes()).and_then(|_| e.flush()).ok();
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(text.as_bytes()).and_then(|_| o.flush()).ok();
    }
}

/// The idle check: a renamed file is let go within a second even when nothing is written.
pub fn tick() {
    if let Ok(mut guard) = sinks().lock() {
        let s = &mut *guard;
        for sink in [s.out.as_mut(), s.err.as_mut()].into_iter().flatten() {
            sink.check(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_file_is_let_go_and_the_path_written_again() {
        let dir = std::env::temp_dir().join(format!("orch-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let live = dir.join("out.log");
        let mut s = Sink::open(live.clone());
        assert!(s.write(b"one\n"));
        std::fs::rename(&live, dir.join("out-1.log")).unwrap();
        // Within the check interval the writer keeps appending to the renamed file (nothing lost).
        assert!(s.write(b"two\n"));
        s.check(Duration::ZERO);
        assert!(s.write(b"three\n"));
        assert_eq!(
            std::fs::read_to_string(dir.join("out-1.log")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&live).unwrap(), "three\n");
        // A file removed (not renamed) is recreated.
        std::fs::remove_file(&live).unwrap();
        s.check(Duration::ZERO);
        assert!(s.write(b"four\n"));
        assert_eq!(std::fs::read_to_string(&live).unwrap(), "four\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
