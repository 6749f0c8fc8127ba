//! The byte-level core of `logs`: timestamps parsed straight from bytes into nanoseconds,
//! lines found with `memchr` in large reads, one cursor per (service, stream) over its files,
//! and a k-way merge of the cursors. Nothing is allocated per line; an `Entry` (or a printed
//! line) is made only for what the caller keeps. A 1-hour window of a 1 GiB file is ~560 000
//! lines, so the per-line cost is what decides whether `logs` is invisible beside Node's start.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::logs::{LogFile, Severity, Stream};

pub const NANOS: i64 = 1_000_000_000;

fn d2(b: &[u8], i: usize) -> Option<u32> {
    let (a, c) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
    (a < 10 && c < 10).then_some((a as u32) * 10 + c as u32)
}

/// Pure: days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Pure: the date of a day number (the inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Pure: the RFC 3339 timestamp a line starts with (`2026-11-25T10:00:00.123Z`, any fraction,
/// `Z` or `±HH:MM`, `T` or a space) as UTC nanoseconds since the epoch, and the index where the
/// rest of the line starts (after `: ` as PM2 writes it, a space, or a colon). Years outside
/// 1678–2261 (what fits in i64 nanoseconds) and impossible dates are not timestamps.
pub fn parse_ts_bytes(b: &[u8]) -> Option<(i64, usize)> {
    parse_tail(b, local_seconds(b)?)
}

/// The date and time of day of `b[..19]` as seconds (before the zone offset), validated.
fn local_seconds(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let y = (d2(b, 0)? * 100 + d2(b, 2)?) as i64;
    let (mo, d, h, mi, s) = (d2(b, 5)?, d2(b, 8)?, d2(b, 11)?, d2(b, 14)?, d2(b, 17)?);
    if !(1678..=2261).contains(&y)
        || !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + (h * 3600 + mi * 60 + s) as i64)
}

/// The fraction, the zone and the separator after `b[..19]`, whose seconds are `local`.
fn parse_tail(b: &[u8], local: i64) -> Option<(i64, usize)> {
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return None;
        }
        let frac = &b[start..end.min(start + 9)];
        nanos = frac.iter().fold(0i64, |n, c| n * 10 + (c - b'0') as i64)
            * 10i64.pow(9 - frac.len() as u32);
        i = end;
    }
    let offset: i64 = match *b.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            if b.len() < i + 6 || b[i + 3] != b':' {
                return None;
            }
            let o = (d2(b, i + 1)? * 3600 + d2(b, i + 4)? * 60) as i64;
            i += 6;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let skip = match &b[i..] {
        [b':', b' ', ..] => 2,
        [b' ' | b':', ..] => 1,
        _ => 0,
    };
    Some(((local - offset) * NANOS + nanos, i + skip))
}

/// [`parse_ts_bytes`] for consecutive lines of one file: a log writes hundreds of lines a
/// second, so the date and time of day (the first 19 bytes) are usually the line before's.
#[derive(Default)]
pub struct TsParser {
    prefix: [u8; 19],
    local: Option<i64>,
}

impl TsParser {
    pub fn parse(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        if b.len() >= 20 && self.local.is_some() && b[..19] == self.prefix {
            return parse_tail(b, self.local?);
        }
        let local = local_seconds(b)?;
        self.prefix.copy_from_slice(&b[..19]);
        self.local = Some(local);
        parse_tail(b, local)
    }
}

/// Formats UTC nanoseconds as `2026-11-26T10:00:00.123Z` (milliseconds, truncated, as chrono's
/// `to_rfc3339_opts(Millis, true)`), re-using the text of the second before: a log has
/// hundreds of lines a second.
pub struct TimeText {
    sec: i64,
    text: [u8; 24],
}

impl Default for TimeText {
    fn default() -> Self {
        TimeText {
            sec: i64::MIN,
            text: *b"0000-00-00T00:00:00.000Z",
        }
    }
}

impl TimeText {
    pub fn format(&mut self, nanos: i64) -> &[u8; 24] {
        let sec = nanos.div_euclid(NANOS);
        if sec != self.sec {
            self.sec = sec;
            let (y, m, d) = civil_from_days(sec.div_euclid(86400));
            let s = sec.rem_euclid(86400);
            let put = |t: &mut [u8; 24], at: usize, v: u32| {
                t[at] = b'0' + (v / 10) as u8;
                t[at + 1] = b'0' + (v % 10) as u8;
            };
            put(&mut self.text, 0, (y / 100) as u32);
            put(&mut self.text, 2, (y % 100) as u32);
            put(&mut self.text, 5, m);
            put(&mut self.text, 8, d);
            put(&mut self.text, 11, (s / 3600) as u32);
            put(&mut self.text, 14, (s / 60 % 60) as u32);
            put(&mut self.text, 17, (s % 60) as u32);
        }
        let ms = (nanos.rem_euclid(NANOS) / 1_000_000) as u32;
        self.text[20] = b'0' + (ms / 100) as u8;
        self.text[21] = b'0' + (ms / 10 % 10) as u8;
        self.text[22] = b'0' + (ms % 10) as u8;
        &self.text
    }
}

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
}

const BLOCK: usize = 1 << 20;

impl LineSource {
    pub fn new(r: Box<dyn Read + Send>, limit: u64) -> LineSource {
        LineSource {
            r,
            buf: Vec::new(),
            start: 0,
            end: 0,
            left: limit,
            eof: false,
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grow = self.buf.len().max(BLOCK);
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
        self.level
            .is_none_or(|l| crate::logs::severity(&text, stream) >= l)
            && self.grep.as_ref().is_none_or(|r| r.is_match(&text))
    }
}

/// The time bounds of a window in nanoseconds (inclusive).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Nanoseconds of an instant, saturating beyond what i64 holds.
pub fn nanos_of(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() > 0 {
        i64::MAX
    } else {
        i64::MIN
    })
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
                LineSource::new(Box::new(file), u64::MAX)
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
/// them service by service, stdout before stderr), and each cursor keeps its own order.
pub struct Merger {
    pub cursors: Vec<Cursor>,
    filter: LineFilter,
    primed: bool,
    last: Option<usize>,
}

impl Merger {
    pub fn new(cursors: Vec<Cursor>, filter: LineFilter) -> Merger {
        Merger {
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
            for c in &mut self.cursors {
                c.advance(&self.filter)?;
            }
        } else if let Some(k) = self.last {
            self.cursors[k].advance(&self.filter)?;
        }
        let mut best: Option<(usize, i64)> = None;
        for (k, c) in self.cursors.iter().enumerate() {
            if let Some(t) = c.key() {
                if best.is_none_or(|(_, b)| t < b) {
                    best = Some((k, t));
                }
            }
        }
        self.last = best.map(|(k, _)| k);
        Ok(self.last)
    }
}

/// The first timestamp at or after byte `pos` (from the next line start unless `pos` is 0),
/// and its line's offset.
fn ts_at(f: &mut File, pos: u64, len: u64) -> std::io::Result<Option<(u64, i64)>> {
    f.seek(SeekFrom::Start(pos))?;
    let mut src = LineSource::new(Box::new(f.try_clone()?), len - pos.min(len));
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
    use chrono::{DateTime, Utc};

    fn chrono_nanos(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn timestamps_agree_with_chrono_and_say_where_the_rest_starts() {
        for s in [
            "2026-11-25T10:00:00.123Z",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00.123456789Z",
            "2026-11-25T10:00:00.123+01:00",
            "2026-11-25T10:00:00.1-05:30",
            "2024-02-29T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.5Z",
            "2000-03-01T00:00:00Z",
        ] {
            let (n, off) = parse_ts_bytes(format!("{s}: hello").as_bytes()).unwrap();
            assert_eq!(n, chrono_nanos(s), "{s}");
            assert_eq!(off, s.len() + 2, "{s}");
        }
        assert_eq!(parse_ts_bytes(b"2026-11-25 10:00:00.5Z x").unwrap().1, 23);
        // The memo of the line before never changes an answer.
        let mut p = TsParser::default();
        for l in [
            "2026-11-25T10:00:00.100Z: a",
            "2026-11-25T10:00:00.200Z: same second",
            "2026-11-25T10:00:00.300+01:00: same text, another zone",
            "2026-11-25T10:00:00: same text, no zone",
            "2026-11-25T10:00:01.000Z: next second",
            "    a continuation",
            "2026-11-25T10:00:01.5Z x",
        ] {
            assert_eq!(p.parse(l.as_bytes()), parse_ts_bytes(l.as_bytes()), "{l}");
        }
        assert_eq!(parse_ts_bytes(b"2026-11-25T10:00:00Z:x").unwrap().1, 21);
        for bad in [
            "2026-02-30T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T10:60:00Z",
            "2026-11-25T10:00:60Z",
            "2026-11-25T10:00:00.Z",
            "2026-11-25T10:00:00",
            "2026-11-25T10:00:00+0100",
            "9999-11-25T10:00:00Z",
            "x026-11-25T10:00:00Z",
            "not a timestamp at all",
        ] {
            assert_eq!(parse_ts_bytes(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn days_round_trip_and_times_print_like_chrono() {
        for z in [-800_000i64, -1, 0, 1, 59, 60, 365, 10_957, 20_000, 106_750] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        let mut tt = TimeText::default();
        for s in [
            "2026-11-25T10:00:00.123Z",
            "2026-11-25T10:00:00.999Z",
            "2026-11-25T10:00:01.000Z",
            "2024-02-29T23:59:59.999Z",
            "1969-12-31T23:59:59.500Z",
            "2026-11-25T10:00:00.123Z",
        ] {
            let n = chrono_nanos(s);
            assert_eq!(std::str::from_utf8(tt.format(n)).unwrap(), s);
            let want = DateTime::from_timestamp_nanos(n + 456_789)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(std::str::from_utf8(tt.format(n + 456_789)).unwrap(), want);
        }
    }

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
