//! The raw bytes of a window, file by file, for tools that pass lines on without parsing them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::files::*;
use super::line::*;
use super::request::*;
use super::scan::{Bounds, Cursor, LineFilter};

/// The raw bytes of one file's part of a window, as written (timestamps as the writer put
/// them), for tools that pass lines on without parsing them.
#[derive(Debug, Clone)]
pub struct Slice {
    pub service: String,
    pub stream: Stream,
    pub path: PathBuf,
    pub compressed: bool,
    /// Byte range in a plain file (`None` for a `.gz`, whose lines are decompressed).
    pub range: Option<(u64, u64)>,
    pub data: Vec<u8>,
}

/// The window of each asked service and stream, file by file in time order, without parsing
/// a line of a plain file: its start and end are found by binary search on the timestamps
/// and the bytes between are read at once (complete lines only). `.gz` files are streamed and
/// their lines in the window kept. No `--tail`, `--grep` or `--level` (use `logs`).
pub fn slice(req: &LogsRequest, now: DateTime<Utc>) -> crate::error::Result<Vec<Slice>> {
    let (services, q) = prepare(req, now)?;
    if q.tail.is_some() || q.filter.grep.is_some() || q.filter.level.is_some() {
        return Err(usage(
            "a slice is a time window: --tail, --grep and --level do not apply".into(),
            "Use logs() (or `orchestrator logs`) to filter lines",
        ));
    }
    let bounds = q.filter.bounds();
    let mut out = Vec::new();
    for (name, dir) in &services {
        let io = |source: std::io::Error| crate::error::Error::Io {
            op: crate::error::IoOp::Read,
            path: dir.clone(),
            source,
        };
        for (f, handle) in open_plan(dir, q.filter.since, q.filter.until).map_err(io)? {
            if !q.streams.contains(&f.stream) {
                continue;
            }
            let (range, data) = if f.gz {
                let mut c = Cursor::opened(name, f.stream, vec![(f.clone(), handle)], bounds);
                let mut data = Vec::new();
                while c.advance(&LineFilter::default()).map_err(io)? {
                    data.extend_from_slice(c.raw());
                    data.push(b'\n');
                }
                (None, data)
            } else {
                let (s, e, data) = slice_plain(handle, bounds).map_err(io)?;
                (Some((s, e)), data)
            };
            if !data.is_empty() {
                out.push(Slice {
                    service: name.clone(),
                    stream: f.stream,
                    path: f.path,
                    compressed: f.gz,
                    range,
                    data,
                });
            }
        }
    }
    Ok(out)
}

/// A plain file's window: `[first line at/after since, first line after until)`, cut after its
/// last complete line.
fn slice_plain(mut f: File, b: Bounds) -> std::io::Result<(u64, u64, Vec<u8>)> {
    let len = f.metadata()?.len();
    let start = match b.since {
        Some(s) => super::scan::seek_nanos(&mut f, s)?,
        None => 0,
    };
    let end = match b.until {
        Some(u) => super::scan::seek_nanos(&mut f, u.saturating_add(1))?,
        None => len,
    }
    .max(start);
    // `read_to_end` fills the spare capacity without zeroing it first.
    let mut data = Vec::with_capacity((end - start) as usize);
    f.seek(SeekFrom::Start(start))?;
    f.take(end - start).read_to_end(&mut data)?;
    let keep = memchr::memrchr(b'\n', &data).map_or(0, |i| i + 1);
    data.truncate(keep);
    Ok((start, start + keep as u64, data))
}
