//! Carrying out the core's rotation plan for the agent (`crate::rotate`, the plan): the survey
//! of a service's files, the renames and deletions of a pass, the check that no process still
//! holds a renamed file open (`/proc/<pid>/fd`), and compression through a temporary name.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::logs::files;
use crate::logs::line;
use crate::rotate::{plan, FileAction, LogPolicy, Seen};

/// Looks at a service's files (sizes; first and last line of live files).
pub fn survey(dir: &Path) -> Vec<Seen> {
    let mut out = Vec::new();
    for (d, archived) in [(dir.to_path_buf(), false), (dir.join("archive"), true)] {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Some(file) = files::classify(&e.path()) else {
                continue;
            };
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            let (first, last) = if file.day.is_none() && size > 0 {
                let first = std::fs::File::open(&file.path).ok().and_then(|f| {
                    let mut line = String::new();
                    std::io::BufRead::read_line(&mut std::io::BufReader::new(f), &mut line).ok()?;
                    line::parse_ts(&line).map(|(t, _)| t)
                });
                let last = files::tail_raw(&file.path, 1)
                    .ok()
                    .and_then(|l| l.first().and_then(|l| line::parse_ts(l).map(|(t, _)| t)));
                (first, last.or(first))
            } else {
                (None, None)
            };
            out.push(Seen {
                file,
                size,
                archived,
                first,
                last,
            });
        }
    }
    out
}

/// Whether any process still has `path` open (the writer, before it reopened its logs).
pub fn held_open(path: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return false;
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    for p in procs.flatten() {
        if !p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l == target) {
                return true;
            }
        }
    }
    false
}

/// Compresses a plain rotated file: `<name>.gz.tmp`, synced, renamed to `<name>.gz`, then the
/// plain file removed.
pub fn compress(from: &Path) -> std::io::Result<PathBuf> {
    let gz = PathBuf::from(format!("{}.gz", from.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", from.display()));
    {
        let mut input = std::fs::File::open(from)?;
        let out = std::fs::File::create(&tmp)?;
        let mut enc = flate2::write::GzEncoder::new(
            std::io::BufWriter::new(out),
            flate2::Compression::default(),
        );
        std::io::copy(&mut input, &mut enc)?;
        let mut w = enc.finish()?;
        w.flush()?;
        w.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(from)?;
    Ok(gz)
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct Pass {
    /// Live files were renamed: PM2 must reopen its logs now.
    pub reopen: bool,
    pub done: Vec<String>,
}

/// One pass over every service's log directory: rotations (renames) and retention. Compression
/// is `compress_ready`'s, after PM2 reopened its logs.
pub fn run(log_root: &Path, now: DateTime<Utc>, p: &LogPolicy) -> Pass {
    let mut pass = Pass::default();
    let Ok(rd) = std::fs::read_dir(log_root) else {
        return pass;
    };
    for svc in rd.flatten().filter(|e| e.path().is_dir()) {
        let dir = svc.path();
        for a in plan(&dir, &survey(&dir), now, p) {
            let r = match &a {
                FileAction::Rotate { from, to, .. } => {
                    pass.reopen = true;
                    std::fs::rename(from, to)
                }
                FileAction::Archive { from, to } => std::fs::create_dir_all(dir.join("archive"))
                    .and_then(|_| std::fs::rename(from, to)),
                FileAction::Delete { path, .. } => std::fs::remove_file(path),
                FileAction::Compress { .. } => continue,
            };
            match r {
                Ok(()) => pass.done.push(format!("{a:?}")),
                Err(e) => pass.done.push(format!("{a:?} failed: {e}")),
            }
        }
    }
    pass
}

/// Compresses every plain rotated file nobody holds open any more. Leftover `.gz.tmp` files (a
/// crash mid-compression) are removed first; their plain original is still there.
pub fn compress_ready(log_root: &Path) -> Vec<String> {
    let mut done = Vec::new();
    let Ok(rd) = std::fs::read_dir(log_root) else {
        return done;
    };
    for svc in rd.flatten().filter(|e| e.path().is_dir()) {
        let dir = svc.path();
        if let Ok(files) = std::fs::read_dir(&dir) {
            for f in files.flatten() {
                if f.file_name().to_string_lossy().ends_with(".gz.tmp") {
                    if let Err(e) = std::fs::remove_file(f.path()) {
                        tracing::warn!(file = %f.path().display(), error = %e, "could not remove an interrupted compression");
                    }
                }
            }
        }
        for s in survey(&dir) {
            if s.file.day.is_some() && !s.file.gz && !held_open(&s.file.path) {
                match compress(&s.file.path) {
                    Ok(gz) => done.push(format!("compressed {}", gz.display())),
                    Err(e) => {
                        done.push(format!("compressing {} failed: {e}", s.file.path.display()))
                    }
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{read_service, Query, Stream};

    #[test]
    fn compression_goes_through_a_temporary_name_and_round_trips() {
        let d = std::env::temp_dir().join(format!("orch-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let plain = d.join("out-2026-11-25.log");
        std::fs::write(
            &plain,
            "2026-11-25T10:00:00.000Z a\n2026-11-25T10:00:01.000Z b\n",
        )
        .unwrap();
        let gz = compress(&plain).unwrap();
        assert!(!plain.exists() && gz.exists() && !d.join("out-2026-11-25.log.gz.tmp").exists());
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(&gz).unwrap()),
            &mut text,
        )
        .unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!held_open(&gz));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Rotation and compression run while `logs` reads (as the agent does): a read never misses
    /// lines that were already written, whatever name they are under at that moment.
    #[test]
    fn reads_racing_rotation_and_compression_never_lose_a_line() {
        let d = std::env::temp_dir().join(format!("orch-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let live = d.join("out.log");
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w = written.clone();
        let dir = d.clone();
        let writer = std::thread::spawn(move || {
            let mut n = 0usize;
            for part in 0..150u32 {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&live)
                    .unwrap();
                for _ in 0..20 {
                    let ms = n as i64;
                    let t = DateTime::from_timestamp_millis(1_764_000_000_000 + ms).unwrap();
                    writeln!(
                        f,
                        "{}: line {n}",
                        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    )
                    .unwrap();
                    n += 1;
                }
                w.store(n, std::sync::atomic::Ordering::SeqCst);
                let rotated = dir.join(format!("out-2025-11-24.{part}.log"));
                std::fs::rename(&live, &rotated).unwrap();
                std::fs::File::create(&live).unwrap();
                compress(&rotated).unwrap();
                // The agent rotates every 2 s at most; here every few ms, still far faster.
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        let q = Query {
            streams: vec![Stream::Out],
            ..Default::default()
        };
        let mut reads = 0;
        loop {
            let before = written.load(std::sync::atomic::Ordering::SeqCst);
            let got = read_service(&d, "svc", &q).unwrap();
            assert!(
                got.len() >= before,
                "read {} lines, {before} were written before the read",
                got.len()
            );
            for (i, e) in got.iter().enumerate() {
                assert_eq!(e.line, format!("line {i}"), "in order, none twice");
            }
            reads += 1;
            if writer.is_finished() && before == 3000 {
                break;
            }
        }
        writer.join().unwrap();
        assert!(reads > 5, "the reads raced the rotations ({reads} reads)");
        let _ = std::fs::remove_dir_all(&d);
    }
}
