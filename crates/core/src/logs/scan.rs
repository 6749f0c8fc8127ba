//! The byte-level core of `logs`: timestamps parsed straight from bytes into nanoseconds,
//! lines found with `memchr` in large reads, one cursor per (service, stream) over its files,
//! and a k-way merge of the cursors. Nothing is allocated per line; an `Entry` (or a printed
//! line) is made only for what the caller keeps. A 1-hour window of a 1 GiB file is ~560 000
//! lines, so the per-line cost is what decides whether `logs` is invisible beside Node's start.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::files::LogFile;
use super::line::{severity, Severity, Stream};
use super::ts::{parse_ts_bytes, TsParser};

/// Lines out of a reader, read in large blocks; a line is a range of the internal buffer,
/// valid until the next call.
pub struct LineSource {
    r: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes still to read (a window's end in a plain file), `u64::MAX` for all.
    left: u64,
    eof: bool,
    /// The size of the first block (then it grows by blocks): what the caller expects to read.
    first: usize,
}

const BLOCK: usize = 1 << 20;
/// The most a window's cursor reads at once: a merge holds a cursor per file (100 services:
/// 100 buffers), and each buffer is zeroed and faulted in once. 64 KiB reads cost one
/// syscall per ~600 lines; a 1 MiB first block per cursor zeroed 36 MB for 100 services' 1 h.
const WINDOW_BLOCK: usize = 64 << 10;

impl LineSource {
    pub fn new(r: Box<dyn Read + Send>, limit: u64) -> LineSource {
        LineSource {
            r,
            buf: Vec::new(),
            start: 0,
            end: 0,
            left: limit,
            eof: false,
            first: BLOCK,
        }
    }

    /// The first read is about `bytes` (at least a page, at most `WINDOW_BLOCK`): a cursor over
    /// a window, or a look at the line after an offset, does not zero a whole block. The
    /// buffer keeps that size while its lines fit (a longer line grows it).
    pub fn expecting(mut self, bytes: u64) -> LineSource {
        self.first = (bytes.min(WINDOW_BLOCK as u64) as usize).max(4096);
        self
    }

    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // The first block is what the caller expects (`expecting`): a 1 h window of a
            // service is often far less than a block, and a timestamp probe reads one line;
            // zeroing a whole block for each cost more than the reading (the merge of 100
            // services zeroed ~1.5 GB). A line longer than the buffer grows it.
            let grow = if self.buf.is_empty() {
                self.first
            } else {
                self.buf.len().max(BLOCK)
            };
            self.buf.resize(self.buf.len() + grow, 0);
        }
        let want = ((self.buf.len() - self.end) as u64).min(self.left) as usize;
        let n = if want == 0 {
            0
        } else {
            loop {
                match self.r.read(&mut self.buf[self.end..self.end + want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        self.left -= n as u64;
        Ok(())
    }

    /// The next line's range (without its newline); a last line without one counts.
    pub fn next_line(&mut self) -> std::io::Result<Option<(usize, usize)>> {
        let mut scanned = self.start;
        loop {
            if let Some(p) = memchr::memchr(b'\n', &self.buf[scanned..self.end]) {
                let (s, e) = (self.start, scanned + p);
                self.start = e + 1;
                return Ok(Some((s, e)));
            }
            if self.eof {
                if self.start < self.end {
                    let s = self.start;
                    self.start = self.end;
                    return Ok(Some((s, self.end)));
                }
                return Ok(None);
            }
            let pending = self.end - self.start;
            self.fill()?;
            scanned = self.start + pending;
        }
    }

    pub fn bytes(&self, s: usize, e: usize) -> &[u8] {
        &self.buf[s..e]
    }
}

/// What a line must be, besides its time, to be kept (`--level`, `--grep`).
#[derive(Debug, Clone, Default)]
pub struct LineFilter {
    pub level: Option<Severity>,
    pub grep: Option<regex::Regex>,
}

impl LineFilter {
    pub fn is_empty(&self) -> bool {
        self.level.is_none() && self.grep.is_none()
    }
    pub fn keeps(&self, rest: &[u8], stream: Stream) -> bool {
        if self.is_empty() {
            return true;
        }
        let text = String::from_utf8_lossy(rest);
        self.level.is_none_or(|l| severity(&text, stream) >= l)
            && self.grep.as_ref().is_none_or(|r| r.is_match(&text))
    }
}

/// The time bounds of a window in nanoseconds (inclusive).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// One stream of one service across its files (in time order): the lines of the window, one
/// at a time. A line without a timestamp (a continuation) takes the time of the line before it
/// in the same file; one before any timestamp in its file is skipped.
pub struct Cursor {
    pub service: String,
    pub stream: Stream,
    pub instance: Option<u32>,
    files: VecDeque<(LogFile, Option<u64>, Option<File>)>,
    src: Option<LineSource>,
    bounds: Bounds,
    last: Option<i64>,
    ts: TsParser,
    /// The current line: (time, line start, rest start, end) in `src`'s buffer.
    cur: Option<(i64, usize, usize, usize)>,
}

impl Cursor {
    /// `files` in time order, each with the byte offset to start at in a plain file (`None`: the
    /// window's start by binary search, or the file's start).
    pub fn new(
        service: &str,
        stream: Stream,
        files: Vec<(LogFile, Option<u64>)>,
        bounds: Bounds,
    ) -> Cursor {
        Cursor {
            service: service.into(),
            stream,
            instance: files.first().and_then(|(f, _)| f.instance),
            files: files.into_iter().map(|(f, from)| (f, from, None)).collect(),
            src: None,
            bounds,
            last: None,
            ts: TsParser::default(),
            cur: None,
        }
    }

    /// The same over files already opened (`logs::open_plan`): what they hold is read whatever
    /// happens to their names meanwhile.
    pub fn opened(
        service: &str,
        stream: Stream,
        files: Vec<(LogFile, File)>,
        bounds: Bounds,
    ) -> Cursor {
        let mut c = Cursor::new(service, stream, Vec::new(), bounds);
        c.instance = files.first().and_then(|(f, _)| f.instance);
        c.files = files.into_iter().map(|(f, h)| (f, None, Some(h))).collect();
        c
    }

    fn open_next(&mut self) -> std::io::Result<bool> {
        while let Some((f, from, handle)) = self.files.pop_front() {
            let mut file = match handle.map_or_else(|| File::open(&f.path), Ok) {
                Ok(file) => file,
                // Rotation or retention moved it between the listing and now.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            self.last = None;
            self.src = Some(if f.gz {
                LineSource::new(Box::new(flate2::read::MultiGzDecoder::new(file)), u64::MAX)
            } else {
                let start = match (from, self.bounds.since) {
                    (Some(o), _) => o,
                    (None, Some(s)) => seek_nanos(&mut file, s)?,
                    (None, None) => 0,
                };
                file.seek(SeekFrom::Start(start))?;
                let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
                LineSource::new(Box::new(file), u64::MAX).expecting(len.saturating_sub(start) + 1)
            });
            return Ok(true);
        }
        Ok(false)
    }

    /// Moves to the next line of the window that `filter` keeps; false at the end.
    pub fn advance(&mut self, filter: &LineFilter) -> std::io::Result<bool> {
        self.cur = None;
        loop {
            let Some(src) = self.src.as_mut() else {
                if !self.open_next()? {
                    return Ok(false);
                }
                continue;
            };
            let Some((s, mut e)) = src.next_line()? else {
                self.src = None;
                continue;
            };
            while e > s && matches!(src.buf[e - 1], b'\r' | b'\n') {
                e -= 1;
            }
            let (key, rest) = match self.ts.parse(&src.buf[s..e]) {
                Some((k, off)) => {
                    self.last = Some(k);
                    (k, s + off)
                }
                None => match self.last {
                    Some(k) => (k, s),
                    None => continue,
                },
            };
            if self.bounds.until.is_some_and(|u| key > u) {
                self.src = None; // the rest of this file is later still
                continue;
            }
            if self.bounds.since.is_some_and(|x| key < x)
                || !filter.keeps(&src.buf[rest..e], self.stream)
            {
                continue;
            }
            self.cur = Some((key, s, rest, e));
            return Ok(true);
        }
    }

    /// The current line's time (nanoseconds).
    pub fn key(&self) -> Option<i64> {
        self.cur.map(|c| c.0)
    }

    /// The current line after its timestamp.
    pub fn rest(&self) -> &[u8] {
        match (self.cur, &self.src) {
            (Some((_, _, r, e)), Some(src)) => src.bytes(r, e),
            _ => &[],
        }
    }

    /// The current line as written, timestamp included.
    pub fn raw(&self) -> &[u8] {
        match (self.cur, &self.src) {
            (Some((_, s, _, e)), Some(src)) => src.bytes(s, e),
            _ => &[],
        }
    }
}

/// The cursors merged in time order; on equal times the earlier cursor wins (callers order
/// them service by service, stdout before stderr), and each cursor keeps its own order. The
/// next line is a heap's least (time, cursor): a window across 100 services (200 cursors) costs
/// a few comparisons a line, not one per cursor.
pub struct Merger {
    pub cursors: Vec<Cursor>,
    filter: LineFilter,
    primed: bool,
    last: Option<usize>,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(i64, usize)>>,
}

impl Merger {
    pub fn new(cursors: Vec<Cursor>, filter: LineFilter) -> Merger {
        Merger {
            heap: std::collections::BinaryHeap::with_capacity(cursors.len()),
            cursors,
            filter,
            primed: false,
            last: None,
        }
    }

    /// The index of the cursor holding the next line, or `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<usize>> {
        if !self.primed {
            self.primed = true;
            for (k, c) in self.cursors.iter_mut().enumerate() {
                c.advance(&self.filter)?;
                if let Some(t) = c.key() {
                    self.heap.push(std::cmp::Reverse((t, k)));
                }
            }
        } else if let Some(k) = self.last {
            // The cursor just read is still the heap's top: its next line replaces it in
            // place (one sift down, and none when it is still the earliest, as a run of lines
            // of one service is), or it leaves at its end.
            let c = &mut self.cursors[k];
            c.advance(&self.filter)?;
            match c.key() {
                Some(t) => {
                    if let Some(mut top) = self.heap.peek_mut() {
                        *top = std::cmp::Reverse((t, k));
                    }
                }
                None => {
                    self.heap.pop();
                }
            }
        }
        self.last = self.heap.peek().map(|std::cmp::Reverse((_, k))| *k);
        Ok(self.last)
    }
}

/// The first timestamp at or after byte `pos` (from the next line start unless `pos` is 0),
/// and its line's offset.
fn ts_at(f: &mut File, pos: u64, len: u64) -> std::io::Result<Option<(u64, i64)>> {
    f.seek(SeekFrom::Start(pos))?;
    let mut src = LineSource::new(Box::new(f.try_clone()?), len - pos.min(len)).expecting(4096);
    let mut off = pos;
    if pos > 0 {
        match src.next_line()? {
            Some((s, e)) => off += (e - s + 1) as u64,
            None => return Ok(None),
        }
    }
    while let Some((s, e)) = src.next_line()? {
        if let Some((t, _)) = parse_ts_bytes(src.bytes(s, e)) {
            return Ok(Some((off, t)));
        }
        off += (e - s + 1) as u64;
    }
    Ok(None)
}

/// Binary search: the offset of the first line with a timestamp at or after `since` (lines
/// are in time order, as a log appends them). Reads O(log n) blocks.
pub fn seek_nanos(f: &mut File, since: i64) -> std::io::Result<u64> {
    let len = f.metadata()?.len();
    let (mut lo, mut hi) = (0u64, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match ts_at(f, mid, len)? {
            Some((_, t)) if t < since => lo = mid + 1,
            _ => hi = mid,
        }
    }
    // `lo` sits inside the line before the first one in the window (or at 0).
    Ok(match ts_at(f, lo, len)? {
        Some((off, _)) if lo > 0 => match ts_at(f, lo - 1, len)? {
            // The line holding `lo` itself may already be in the window.
            Some((o, t)) if t >= since => o.min(off),
            _ => off,
        },
        Some((off, _)) => off,
        None => len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_blocks_without_a_final_newline() {
        let mut text = Vec::new();
        for i in 0..50_000 {
            text.extend_from_slice(format!("line {i} {}\n", "x".repeat(i % 97)).as_bytes());
        }
        text.extend_from_slice(b"last without newline");
        let mut src = LineSource::new(Box::new(std::io::Cursor::new(text.clone())), u64::MAX);
        let mut n = 0;
        let mut last = Vec::new();
        while let Some((s, e)) = src.next_line().unwrap() {
            last = src.bytes(s, e).to_vec();
            n += 1;
        }
        assert_eq!(n, 50_001);
        assert_eq!(last, b"last without newline");
        // A limit stops mid-file.
        let mut src = LineSource::new(Box::new(std::io::Cursor::new(text)), 15);
        assert_eq!(src.next_line().unwrap().map(|(s, e)| e - s), Some(7));
        assert_eq!(src.next_line().unwrap().map(|(s, e)| e - s), Some(7));
        assert_eq!(src.next_line().unwrap(), None);
    }
}
