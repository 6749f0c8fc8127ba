//! `--follow`: live files read as they grow, across rotations, nothing lost or read twice.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::files::*;
use super::line::*;
use super::read::*;
use super::request::*;

/// One live file followed by `--follow`: read on the same descriptor as it grows; when the path
/// names a new file (rotation renamed the old one and the writer reopened), the old descriptor
/// is read to its end first, then the new file from its start — nothing lost, nothing twice.
pub struct Tailer {
    pub service: String,
    pub stream: Stream,
    pub instance: Option<u32>,
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    pending: Vec<u8>,
    /// The last timestamp seen (nanoseconds): a continuation line takes it.
    last: Option<i64>,
    /// The file before a rotation, read a little longer: its writer may still flush into it.
    retired: Option<(Box<Tailer>, std::time::Instant)>,
}

fn ino_of(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.ino()
}

impl Tailer {
    /// Starts at `from` bytes into the live file (its end when `None`).
    pub fn open(service: &str, stream: Stream, path: PathBuf, from: Option<u64>) -> Tailer {
        let mut t = Tailer {
            service: service.into(),
            stream,
            instance: classify(&path).and_then(|f| f.instance),
            path,
            file: None,
            ino: 0,
            pending: Vec::new(),
            last: None,
            retired: None,
        };
        if let Ok(mut f) = File::open(&t.path) {
            if let Ok(m) = f.metadata() {
                t.ino = ino_of(&m);
                if let Err(e) = f.seek(SeekFrom::Start(from.unwrap_or(m.len()).min(m.len()))) {
                    tracing::debug!(file = %t.path.display(), error = %e, "could not seek; following from the start");
                }
            }
            t.file = Some(f);
        }
        t
    }

    fn drain(&mut self, out: &mut Vec<Entry>, filter: &Filter) {
        let Some(f) = self.file.as_mut() else { return };
        let mut chunk = Vec::new();
        if f.read_to_end(&mut chunk).is_err() {
            return;
        }
        self.pending.extend_from_slice(&chunk);
        let Some(end) = memchr::memrchr(b'\n', &self.pending) else {
            return;
        };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        for raw in complete[..end].split(|b| *b == b'\n') {
            let mut e = raw.len();
            while e > 0 && raw[e - 1] == b'\r' {
                e -= 1;
            }
            let raw = &raw[..e];
            let (time, rest) = match super::ts::parse_ts_bytes(raw) {
                Some((t, off)) => {
                    self.last = Some(t);
                    (t, &raw[off..])
                }
                None => match self.last {
                    Some(t) => (t, raw),
                    None => continue,
                },
            };
            let entry = entry_of(&self.service, self.instance, self.stream, time, rest);
            if filter.keeps(&entry) {
                out.push(entry);
            }
        }
    }

    /// New complete lines since the last call, across a rotation, in time order.
    pub fn poll(&mut self, filter: &Filter) -> Vec<Entry> {
        let mut out = Vec::new();
        if let Some((old, until)) = self.retired.as_mut() {
            old.drain(&mut out, filter);
            if std::time::Instant::now() > *until {
                self.retired = None;
            }
        }
        self.drain(&mut out, filter);
        let now_ino = std::fs::metadata(&self.path).ok().map(|m| ino_of(&m));
        if now_ino.is_some() && now_ino != Some(self.ino) {
            // Rotated: the path is a new file. Keep reading the old one for a while (the writer
            // may still flush into it), and read the new one from its start.
            let fresh = Tailer::open(&self.service, self.stream, self.path.clone(), Some(0));
            let old = std::mem::replace(self, fresh);
            let mut old = Box::new(old);
            old.retired = None;
            self.last = old.last;
            self.retired = Some((
                old,
                std::time::Instant::now() + std::time::Duration::from_secs(3),
            ));
            self.drain(&mut out, filter);
        }
        out.sort_by_key(|e| e.time);
        out
    }
}

/// The live files of a `--follow`, read as they grow (across rotations).
pub struct Follower {
    tailers: Vec<Tailer>,
    filter: Filter,
}

impl Follower {
    /// The lines written since the last poll, in time order.
    pub fn poll(&mut self) -> Vec<Entry> {
        let mut batch: Vec<Entry> = self
            .tailers
            .iter_mut()
            .flat_map(|t| t.poll(&self.filter))
            .collect();
        batch.sort_by_key(|e| e.time);
        batch
    }
}

/// The start of a `--follow`: the window's start (rotated files when `since` is given, then
/// the live files from the window's start, the last `tail` lines, or their end), and the
/// follower that reads every later line.
pub fn follow_open(
    req: &LogsRequest,
    now: DateTime<Utc>,
) -> crate::error::Result<(Vec<Entry>, Follower)> {
    let (services, q) = prepare(req, now)?;
    if q.filter.until.is_some() {
        return Err(usage(
            "--until and --follow exclude each other (a followed window has no end)".into(),
            "Drop --until to follow, or --follow to read a closed window",
        ));
    }
    let io = |dir: &Path, source: std::io::Error| crate::error::Error::Io {
        op: crate::error::IoOp::Read,
        path: dir.to_path_buf(),
        source,
    };
    let mut tailers = Vec::new();
    let mut first = Vec::new();
    for (name, dir) in &services {
        let files = list_files(dir);
        // The one live file per stream (followed even before it exists) and every
        // per-instance one there is now.
        let mut chans = channels(&files, &q.streams);
        chans.extend(q.streams.iter().map(|s| (*s, None)));
        chans.sort();
        chans.dedup();
        for (stream, instance) in chans {
            if q.filter.since.is_some() {
                let rotated: Vec<LogFile> = plan(&files, q.filter.since, None)
                    .into_iter()
                    .filter(|f| f.channel() == (stream, instance) && f.day.is_some())
                    .collect();
                for f in rotated {
                    read_file(&f, name, &q.filter, &mut first).map_err(|e| io(dir, e))?;
                }
            }
            let live = dir.join(match instance {
                None => format!("{}.log", stream.stem()),
                Some(id) => format!("{}-{id}.log", stream.stem()),
            });
            let from = follow_start(&live, &q).map_err(|e| io(dir, e))?;
            let mut t = Tailer::open(name, stream, live, Some(from));
            first.extend(t.poll(&q.filter));
            tailers.push(t);
        }
    }
    first.sort_by_key(|e| e.time);
    if let Some(n) = q.tail {
        let cut = first.len().saturating_sub(n);
        first.drain(..cut);
    }
    Ok((
        first,
        Follower {
            tailers,
            filter: q.filter,
        },
    ))
}

#[cfg(test)]
mod follow_tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::logs::*;
    use std::io::Write;

    fn line(f: &mut File, i: usize) {
        writeln!(f, "2026-11-26T12:00:{:02}.000Z: line {i}", i % 60).unwrap();
    }

    #[test]
    fn a_tailer_reads_across_a_rotation_without_loss_or_repeat() {
        let d = std::env::temp_dir().join(format!("orch-tail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let live = d.join("out.log");
        let mut w = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&live)
            .unwrap();
        line(&mut w, 0);
        let mut t = Tailer::open("svc", Stream::Out, live.clone(), None);
        let f = Filter::default();
        assert!(t.poll(&f).is_empty(), "starts at the end");
        line(&mut w, 1);
        write!(w, "2026-11-26T12:00:02.000Z: half").unwrap();
        let got: Vec<String> = t.poll(&f).into_iter().map(|e| e.line).collect();
        assert_eq!(got, vec!["line 1"], "an unfinished line waits");
        writeln!(w, " a line").unwrap();
        // Rotation: rename, the writer keeps writing to the old file for a moment, then reopens.
        std::fs::rename(&live, d.join("out.rotating")).unwrap();
        line(&mut w, 3);
        let mut w2 = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&live)
            .unwrap();
        line(&mut w2, 4);
        line(&mut w, 5); // a late flush into the old file
        let got: Vec<String> = t.poll(&f).into_iter().map(|e| e.line).collect();
        assert_eq!(got, vec!["half a line", "line 3", "line 4", "line 5"]);
        line(&mut w2, 6);
        let got: Vec<String> = t.poll(&f).into_iter().map(|e| e.line).collect();
        assert_eq!(got, vec!["line 6"]);
        assert!(t.poll(&f).is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn follow_starts_at_the_window_the_tail_or_the_end() {
        let d = std::env::temp_dir().join(format!("orch-fstart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("out.log");
        let mut w = File::create(&p).unwrap();
        for i in 0..10 {
            line(&mut w, i);
        }
        let len = std::fs::metadata(&p).unwrap().len();
        let q = |tail: Option<usize>, since: Option<&str>| Query {
            streams: vec![Stream::Out],
            filter: Filter {
                since: since.map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)),
                ..Default::default()
            },
            tail,
        };
        assert_eq!(follow_start(&p, &q(None, None)).unwrap(), len);
        let per = len / 10;
        assert_eq!(follow_start(&p, &q(Some(3), None)).unwrap(), len - 3 * per);
        assert_eq!(follow_start(&p, &q(Some(30), None)).unwrap(), 0);
        assert_eq!(
            follow_start(&p, &q(None, Some("2026-11-26T12:00:04Z"))).unwrap(),
            4 * per
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
