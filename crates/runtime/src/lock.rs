//! The workspace lock (`.orchestrator/lock`): commands that change PM2 state hold it from reading
//! PM2's table to the end of their readiness wait, so two racing `start`s cannot both launch.
//! An OS file lock: released by the kernel if the holder dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

pub struct WorkspaceLock {
    file: Option<File>,
}

pub fn acquire(root: &Path, timeout: Duration) -> Result<WorkspaceLock> {
    let path = crate::layout::lock_file(root);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            op: crate::error::IoOp::Write,
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| Error::Io {
            op: crate::error::IoOp::Write,
            path: path.clone(),
            source,
        })?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                // The holder's pid, when it wrote one.
                let mut text = String::new();
                file.read_to_string(&mut text).ok();
                return Err(Error::WorkspaceBusy {
                    lock_file: path,
                    holder_pid: text.trim().parse().ok(),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(Error::Io {
                    op: crate::error::IoOp::Write,
                    path,
                    source,
                })
            }
        }
    }
    // The holder's pid, for the message of a command that waits: helpful, not needed.
    if let Err(e) = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| write!(file, "{}", std::process::id()))
    {
        tracing::debug!(error = %e, "could not write our pid into the lock file");
    }
    Ok(WorkspaceLock { file: Some(file) })
}

impl WorkspaceLock {
    pub fn release(&mut self) {
        if let Some(f) = self.file.take() {
            // Closing the file releases the lock as well.
            if let Err(e) = f.unlock() {
                tracing::debug!(error = %e, "unlock failed; the lock goes with the file");
            }
        }
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_times_out_naming_the_holder() {
        let dir = std::env::temp_dir().join(format!("orch-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut first = acquire(&dir, Duration::from_secs(1)).unwrap();
        // A lock on a second open file description conflicts even within one process.
        let err = acquire(&dir, Duration::from_millis(200))
            .err()
            .expect("second acquire must fail");
        match err {
            Error::WorkspaceBusy { holder_pid, .. } => {
                assert_eq!(holder_pid, Some(std::process::id()))
            }
            other => panic!("unexpected {other:?}"),
        }
        first.release();
        let _again = acquire(&dir, Duration::from_millis(200)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
