//! Reading a window: the filter, the files of a (stream, instance) channel read in time order,
//! the merge of several services' channels, a whole service's window.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::files::*;
use super::line::*;
use super::scan::{Bounds, Cursor, LineFilter, Merger};
use super::ts::nanos_of;

/// The filter applied to every entry.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub level: Option<Severity>,
    pub grep: Option<regex::Regex>,
}

impl Filter {
    pub(super) fn keeps(&self, e: &Entry) -> bool {
        self.since.is_none_or(|s| e.time >= s)
            && self.until.is_none_or(|u| e.time <= u)
            && self.level.is_none_or(|l| e.severity >= l)
            && self.grep.as_ref().is_none_or(|r| r.is_match(&e.line))
    }
    pub fn bounds(&self) -> Bounds {
        Bounds {
            since: self.since.map(nanos_of),
            until: self.until.map(nanos_of),
        }
    }
    pub fn lines(&self) -> LineFilter {
        LineFilter {
            level: self.level,
            grep: self.grep.clone(),
        }
    }
}

/// An entry from a line's time and what follows its timestamp.
pub(super) fn entry_of(
    service: &str,
    instance: Option<u32>,
    stream: Stream,
    time: i64,
    rest: &[u8],
) -> Entry {
    let line = String::from_utf8_lossy(rest).into_owned();
    Entry {
        time: DateTime::from_timestamp_nanos(time),
        service: service.into(),
        instance,
        stream,
        severity: severity(&line, stream),
        line,
    }
}

/// Every line a cursor yields, as entries.
pub(super) fn collect(mut c: Cursor, filter: &Filter, out: &mut Vec<Entry>) -> std::io::Result<()> {
    let lines = filter.lines();
    while c.advance(&lines)? {
        out.push(entry_of(
            &c.service,
            c.instance,
            c.stream,
            c.key().unwrap_or(0),
            c.rest(),
        ));
    }
    Ok(())
}

/// Binary search: the offset of the first line with a timestamp at or after `since` (lines
/// are in time order, as a log appends them). Reads O(log n) blocks.
pub fn seek_since(f: &mut File, since: DateTime<Utc>) -> std::io::Result<u64> {
    super::scan::seek_nanos(f, nanos_of(since))
}

/// Reads a plain file from byte `from` on.
pub(super) fn read_from(
    path: &Path,
    from: u64,
    stream: Stream,
    service: &str,
    filter: &Filter,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    let file = LogFile {
        path: path.to_path_buf(),
        stream,
        instance: classify(path).and_then(|f| f.instance),
        day: None,
        part: 0,
        gz: false,
        ino: 0,
    };
    let c = Cursor::new(service, stream, vec![(file, Some(from))], filter.bounds());
    collect(c, filter, out)
}

/// Reads the entries of one stream's file in the window, in order (a plain file from the
/// window's start found by binary search, a `.gz` streamed).
pub fn read_file(
    file: &LogFile,
    service: &str,
    filter: &Filter,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    let c = Cursor::new(
        service,
        file.stream,
        vec![(file.clone(), None)],
        filter.bounds(),
    );
    collect(c, filter, out)
}

/// Pure: the (stream, instance) channels of `files` among `streams`, stdout first, the one
/// file per stream before per-instance files (by PM2 id).
pub fn channels(files: &[LogFile], streams: &[Stream]) -> Vec<(Stream, Option<u32>)> {
    let mut out: Vec<(Stream, Option<u32>)> = files
        .iter()
        .map(LogFile::channel)
        .filter(|(s, _)| streams.contains(s))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One cursor per (service, stream, instance), service by service and stdout before stderr,
/// each over the files of the window in time order, merged.
pub fn merger(services: &[(String, PathBuf)], q: &Query) -> std::io::Result<Merger> {
    let mut cursors = Vec::new();
    for (name, dir) in services {
        let opened = open_plan(dir, q.filter.since, q.filter.until)?;
        let files: Vec<LogFile> = opened.iter().map(|(f, _)| f.clone()).collect();
        let mut handles: Vec<Option<(LogFile, File)>> = opened.into_iter().map(Some).collect();
        for ch in channels(&files, &q.streams) {
            let mine = handles
                .iter_mut()
                .filter(|h| h.as_ref().is_some_and(|(f, _)| f.channel() == ch))
                .filter_map(Option::take)
                .collect();
            cursors.push(Cursor::opened(name, ch.0, mine, q.filter.bounds()));
        }
    }
    Ok(Merger::new(cursors, q.filter.lines()))
}

/// The next merged line as an entry.
pub(super) fn next_entry(m: &mut Merger) -> std::io::Result<Option<Entry>> {
    Ok(m.next_line()?.map(|k| {
        let c = &m.cursors[k];
        entry_of(
            &c.service,
            c.instance,
            c.stream,
            c.key().unwrap_or(0),
            c.rest(),
        )
    }))
}

/// Pure: merges per-stream entry lists (each in time order) into one, stable: on equal times
/// stdout comes before stderr, and a stream keeps its own order.
pub fn merge(mut streams: Vec<Vec<Entry>>) -> Vec<Entry> {
    streams.sort_by_key(|s| s.first().map(|e| e.stream));
    let mut out: Vec<Entry> = Vec::with_capacity(streams.iter().map(Vec::len).sum());
    let mut idx = vec![0usize; streams.len()];
    loop {
        let mut best: Option<usize> = None;
        for (k, s) in streams.iter().enumerate() {
            if let Some(e) = s.get(idx[k]) {
                if best.is_none_or(|b| e.time < streams[b][idx[b]].time) {
                    best = Some(k);
                }
            }
        }
        let Some(k) = best else { break };
        out.push(streams[k][idx[k]].clone());
        idx[k] += 1;
    }
    out
}

/// What `logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub streams: Vec<Stream>,
    pub filter: Filter,
    pub tail: Option<usize>,
}

/// Reads a service's entries for the query from its log directory: every stream's files in
/// the window, merged in time order; `tail` keeps the last N.
pub fn read_service(dir: &Path, service: &str, q: &Query) -> std::io::Result<Vec<Entry>> {
    if q.tail.is_none() {
        let mut m = merger(&[(service.to_string(), dir.to_path_buf())], q)?;
        let mut out = Vec::new();
        while let Some(e) = next_entry(&mut m)? {
            out.push(e);
        }
        return Ok(out);
    }
    let files = plan(&list_files(dir), q.filter.since, q.filter.until);
    let mut per_stream = Vec::new();
    for ch in channels(&files, &q.streams) {
        let mut entries = Vec::new();
        let mine: Vec<&LogFile> = files.iter().filter(|f| f.channel() == ch).collect();
        if let (Some(n), None) = (q.tail, q.filter.since) {
            // Newest files first, until N entries are found (older files are not opened).
            // Without a line filter the live file is read from its last N lines only.
            let unfiltered = q.filter.grep.is_none() && q.filter.level.is_none();
            for f in mine.iter().rev() {
                let mut got = Vec::new();
                if unfiltered && !f.gz {
                    let from = follow_start(
                        &f.path,
                        &Query {
                            tail: Some(n),
                            ..Default::default()
                        },
                    )?;
                    read_from(&f.path, from, f.stream, service, &q.filter, &mut got)?;
                } else {
                    read_file(f, service, &q.filter, &mut got)?;
                }
                got.append(&mut entries);
                entries = got;
                if entries.len() >= n {
                    break;
                }
            }
            let cut = entries.len().saturating_sub(n);
            entries.drain(..cut);
        } else {
            for f in mine {
                read_file(f, service, &q.filter, &mut entries)?;
            }
        }
        per_stream.push(entries);
    }
    let mut all = merge(per_stream);
    if let Some(n) = q.tail {
        let cut = all.len().saturating_sub(n);
        all.drain(..cut);
    }
    Ok(all)
}

/// The byte offset in a live file where a follow starts: the window's start (`since`), the
/// last `tail` lines, or its end.
pub fn follow_start(path: &Path, q: &Query) -> std::io::Result<u64> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if let Some(s) = q.filter.since {
        return seek_since(&mut f, s);
    }
    let Some(n) = q.tail else { return Ok(len) };
    let mut pos = len;
    let mut seen = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    // The start of the n-th line from the end (the last byte is the final newline).
    while pos > 0 {
        let step = pos.min(buf.len() as u64) as usize;
        pos -= step as u64;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..step])?;
        for i in (0..step).rev() {
            if buf[i] == b'\n' && pos + i as u64 + 1 < len {
                seen += 1;
                if seen == n {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
