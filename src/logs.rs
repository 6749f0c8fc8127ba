//! Log retrieval (DESIGN §3 logs): every line of `apps/logs/<service>/{out,error}.log` starts
//! with an RFC 3339 timestamp, so a time window is found by binary search on the live file
//! (only the window is read), rotated `<stream>-<date>[.<n>].log.gz` files and `archive/` are
//! chosen by the date in their name (files outside the window are not opened), and the two
//! streams are merged in time order. Pure parts (timestamps, severities, `--since`, the file
//! plan, the merge) are plain functions; reading sits in `read_*`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }
    /// The file stem: `out` / `error`.
    pub fn stem(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" => Severity::Trace,
            "debug" => Severity::Debug,
            "info" | "notice" => Severity::Info,
            "warn" | "warning" => Severity::Warn,
            "error" | "err" => Severity::Error,
            "fatal" | "critical" | "crit" | "panic" => Severity::Fatal,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    #[serde(serialize_with = "ser_time")]
    pub time: DateTime<Utc>,
    pub service: String,
    pub stream: Stream,
    pub severity: Severity,
    pub line: String,
}

fn ser_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |n, d| n * 10 + (d - b'0') as u32))
}

/// Pure: the RFC 3339 timestamp a line starts with (`2026-11-25T10:00:00.123Z`, any fraction,
/// `Z` or `±HH:MM`), normalised to UTC, and the rest of the line after the separator (`: ` as
/// PM2 writes it, or a space). Hand-rolled: the slicer parses every line of a window.
pub fn parse_ts(line: &str) -> Option<(DateTime<Utc>, &str)> {
    let b = line.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let mut i = 19;
    let mut nanos = 0u32;
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
        nanos = digits(frac)? * 10u32.pow(9 - frac.len() as u32);
        i = end;
    }
    let offset_s: i32 = match b.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            if b.len() < i + 6 || b[i + 3] != b':' {
                return None;
            }
            let oh = digits(&b[i + 1..i + 3])? as i32;
            let om = digits(&b[i + 4..i + 6])? as i32;
            i += 6;
            let o = oh * 3600 + om * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(y as i32, mo, d)?;
    let naive = date.and_hms_nano_opt(h, mi, s, nanos)?;
    let t = Utc.from_utc_datetime(&naive) - chrono::Duration::seconds(offset_s as i64);
    let rest = &line[i..];
    let rest = rest
        .strip_prefix(": ")
        .or_else(|| rest.strip_prefix(' '))
        .or_else(|| rest.strip_prefix(':'))
        .unwrap_or(rest);
    Some((t, rest))
}

/// Pure: a line's severity: a JSON `level` (pino's numbers or a name, as pino/bunyan write
/// it), or a leading `ERROR`/`WARN`/`INFO`/`DEBUG` token (also `[WARN]`, `error:`); otherwise
/// `info` for stdout and `error` for stderr.
pub fn severity(rest: &str, stream: Stream) -> Severity {
    let t = rest.trim_start();
    if t.starts_with('{') {
        if let Some(i) = t.find("\"level\"") {
            let v = t[i + 7..].trim_start().trim_start_matches(':').trim_start();
            if let Some(num) = v
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .filter(|n| !n.is_empty())
            {
                if let Ok(n) = num.parse::<u32>() {
                    return match n {
                        0..=10 => Severity::Trace,
                        11..=20 => Severity::Debug,
                        21..=30 => Severity::Info,
                        31..=40 => Severity::Warn,
                        41..=50 => Severity::Error,
                        _ => Severity::Fatal,
                    };
                }
            }
            if let Some(name) = v.strip_prefix('"').and_then(|v| v.split('"').next()) {
                if let Some(s) = Severity::parse(name) {
                    return s;
                }
            }
        }
    } else {
        let word: String = t
            .trim_start_matches('[')
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        if word.len() >= 4 && word.chars().all(|c| c.is_ascii_uppercase())
            || word.len() >= 4 && t[word.len()..].starts_with(':')
        {
            if let Some(s) = Severity::parse(&word) {
                return s;
            }
        }
    }
    match stream {
        Stream::Out => Severity::Info,
        Stream::Err => Severity::Error,
    }
}

/// Pure: `--since`/`--until`: a duration back from `now` (`48h`, `30m`, `7d`, `1h30m`) or an
/// RFC 3339 instant.
pub fn parse_instant(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some((t, rest)) = parse_ts(s) {
        if rest.is_empty() {
            return Ok(t);
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    match humantime::parse_duration(s) {
        Ok(d) => chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(|| format!("\"{s}\" reaches too far back")),
        Err(_) => Err(format!(
            "\"{s}\" is neither a duration (30m, 48h, 7d) nor an RFC 3339 instant (2026-11-25T10:00:00Z)"
        )),
    }
}

/// One log file of a service and what its name says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    pub path: PathBuf,
    pub stream: Stream,
    /// The UTC day a rotated file covers (`None`: the live file).
    pub day: Option<NaiveDate>,
    /// The `.n` of a size rotation within a day (0 for the first).
    pub part: u32,
    pub gz: bool,
}

/// Pure: what a file name in a service's log directory (or its `archive/`) is.
pub fn classify(path: &Path) -> Option<LogFile> {
    let name = path.file_name()?.to_str()?;
    for stream in [Stream::Out, Stream::Err] {
        if name == format!("{}.log", stream.stem()) {
            return Some(LogFile {
                path: path.to_path_buf(),
                stream,
                day: None,
                part: 0,
                gz: false,
            });
        }
        let Some(rest) = name.strip_prefix(&format!("{}-", stream.stem())) else {
            continue;
        };
        let (body, gz) = match rest.strip_suffix(".log.gz") {
            Some(b) => (b, true),
            None => (rest.strip_suffix(".log")?, false),
        };
        let (date, part) = match body.split_once('.') {
            Some((d, n)) => (d, n.parse().ok()?),
            None => (body, 0),
        };
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        return Some(LogFile {
            path: path.to_path_buf(),
            stream,
            day: Some(day),
            part,
            gz,
        });
    }
    None
}

/// Pure: the files to read for a window, per stream in time order (rotated by day and part,
/// then the live file). A rotated file holds the lines after the previous rotated file of its
/// stream up to the end of its day (plus 5 minutes: rotation runs just after midnight), so a
/// file written while rotation was missed for days is still found; the live file holds what
/// follows the last one. Files wholly outside `[since, until]` are left out. While a rotated file
/// is being compressed, the finished `.gz` wins over its plain original.
pub fn plan(
    files: &[LogFile],
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Vec<LogFile> {
    let mut all: Vec<LogFile> = files
        .iter()
        .filter(|f| {
            f.gz || f.day.is_none()
                || !files
                    .iter()
                    .any(|g| g.gz && g.stream == f.stream && g.day == f.day && g.part == f.part)
        })
        .cloned()
        .collect();
    all.sort_by_key(|f| (f.stream, f.day.is_none(), f.day, f.part));
    let midnight =
        |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut keep = Vec::new();
    let mut prev: Option<(Stream, NaiveDate)> = None;
    for f in all {
        let start = prev
            .filter(|(s, _)| *s == f.stream)
            .map(|(_, d)| midnight(d));
        let end = f
            .day
            .map(|d| midnight(d) + chrono::Duration::days(1) + chrono::Duration::minutes(5));
        let after_since = match (since, end) {
            (Some(s), Some(e)) => e > s,
            _ => true,
        };
        let before_until = match (until, start) {
            (Some(u), Some(s)) => s <= u,
            _ => true,
        };
        if let Some(d) = f.day {
            prev = Some((f.stream, d));
        }
        if after_since && before_until {
            keep.push(f);
        }
    }
    keep
}

/// Lists a service's log files (its directory and `archive/`).
pub fn list_files(dir: &Path) -> Vec<LogFile> {
    let mut out = Vec::new();
    for d in [dir.to_path_buf(), dir.join("archive")] {
        if let Ok(rd) = std::fs::read_dir(&d) {
            out.extend(rd.flatten().filter_map(|e| classify(&e.path())));
        }
    }
    out
}

/// The filter applied to every entry.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub level: Option<Severity>,
    pub grep: Option<regex::Regex>,
}

impl Filter {
    fn keeps_time(&self, t: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
    fn keeps(&self, e: &Entry) -> bool {
        self.keeps_time(e.time)
            && self.level.is_none_or(|l| e.severity >= l)
            && self.grep.as_ref().is_none_or(|r| r.is_match(&e.line))
    }
}

/// Turns raw lines into entries; a line without a timestamp (a continuation) takes the time of
/// the line before it.
struct Lines<'a> {
    service: &'a str,
    stream: Stream,
    last: Option<DateTime<Utc>>,
}

impl Lines<'_> {
    fn entry(&mut self, raw: &str) -> Option<Entry> {
        let raw = raw.trim_end_matches(['\n', '\r']);
        let (time, rest) = match parse_ts(raw) {
            Some((t, rest)) => {
                self.last = Some(t);
                (t, rest)
            }
            None => (self.last?, raw),
        };
        Some(Entry {
            time,
            service: self.service.to_string(),
            stream: self.stream,
            severity: severity(rest, self.stream),
            line: rest.to_string(),
        })
    }
}

/// The first timestamp at or after byte `pos` (skipping to the next line start unless `pos`
/// is 0), and the offset of that line.
fn ts_at(f: &mut File, pos: u64, len: u64) -> std::io::Result<Option<(u64, DateTime<Utc>)>> {
    f.seek(SeekFrom::Start(pos))?;
    let mut r = BufReader::with_capacity(16 * 1024, f);
    let mut off = pos;
    let mut line = String::new();
    if pos > 0 {
        let mut skip = Vec::new();
        off += r.read_until(b'\n', &mut skip)? as u64;
    }
    while off < len {
        line.clear();
        let n = r.read_line(&mut line)?;
        if n == 0 {
            break;
        }
        if let Some((t, _)) = parse_ts(&line) {
            return Ok(Some((off, t)));
        }
        off += n as u64;
    }
    Ok(None)
}

/// Binary search: the offset of the first line with a timestamp at or after `since` (lines
/// are in time order, as a log appends them). Reads O(log n) lines.
pub fn seek_since(f: &mut File, since: DateTime<Utc>) -> std::io::Result<u64> {
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
        Some((off, _)) if lo > 0 => {
            // The line holding `lo` itself may already be in the window.
            let back = lo.saturating_sub(1);
            match ts_at(f, back, len)? {
                Some((o, t)) if t >= since => o.min(off),
                _ => off,
            }
        }
        Some((off, _)) => off,
        None => len,
    })
}

fn read_plain(
    path: &Path,
    file: &LogFile,
    service: &str,
    filter: &Filter,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    let start = match filter.since {
        Some(s) => match File::open(path) {
            Ok(mut f) => seek_since(&mut f, s)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        },
        None => 0,
    };
    read_from(path, start, file.stream, service, filter, out)
}

fn read_lines(
    mut r: impl BufRead,
    stream: Stream,
    service: &str,
    filter: &Filter,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    let mut lines = Lines {
        service,
        stream,
        last: None,
    };
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        let Some(e) = lines.entry(&text) else {
            continue;
        };
        if filter.until.is_some_and(|u| e.time > u) {
            break;
        }
        if filter.keeps(&e) {
            out.push(e);
        }
    }
    Ok(())
}

/// Reads a plain file from byte `from` on.
fn read_from(
    path: &Path,
    from: u64,
    stream: Stream,
    service: &str,
    filter: &Filter,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(from))?;
    read_lines(
        BufReader::with_capacity(256 * 1024, f),
        stream,
        service,
        filter,
        out,
    )
}

/// Reads the entries of one stream's files in the window, in order.
pub fn read_file(
    file: &LogFile,
    service: &str,
    filter: &Filter,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    if file.gz {
        let f = File::open(&file.path)?;
        let r = BufReader::with_capacity(256 * 1024, flate2::read::MultiGzDecoder::new(f));
        read_lines(r, file.stream, service, filter, out)
    } else {
        read_plain(&file.path, file, service, filter, out)
    }
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
    let files = plan(&list_files(dir), q.filter.since, q.filter.until);
    let mut per_stream = Vec::new();
    for stream in &q.streams {
        let mut entries = Vec::new();
        let mine: Vec<&LogFile> = files.iter().filter(|f| f.stream == *stream).collect();
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

/// Reads the last `n` lines of a plain file by reading backwards from its end.
pub fn tail_raw(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    while pos > 0 && memchr::memchr_iter(b'\n', &buf).count() <= n {
        let step = pos.min(64 * 1024);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0u8; step as usize];
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn timestamps_in_every_shape_we_meet() {
        let (ts, rest) = parse_ts("2026-11-25T10:00:00.123Z: hello").unwrap();
        assert_eq!((ts, rest), (t("2026-11-25T10:00:00.123Z"), "hello"));
        assert_eq!(parse_ts("2026-11-25T10:00:00Z hi").unwrap().1, "hi");
        assert_eq!(
            parse_ts("2026-11-25T11:00:00.5+01:00: x").unwrap().0,
            t("2026-11-25T10:00:00.5Z")
        );
        assert_eq!(
            parse_ts("2026-11-25T10:00:00.123456789Z x").unwrap().0,
            t("2026-11-25T10:00:00.123456789Z")
        );
        assert_eq!(
            parse_ts("2026-11-25T04:30:00-05:30 x").unwrap().0,
            t("2026-11-25T10:00:00Z")
        );
        for bad in [
            "",
            "hello",
            "    at foo (bar.js:1:2)",
            "2026-13-25T10:00:00Z x",
            "2026-11-25T10:00:00",
            "2026-11-25T10:00:00.Z x",
            "2026-11-25T25:00:00Z x",
        ] {
            assert_eq!(parse_ts(bad), None, "{bad}");
        }
    }

    #[test]
    fn stamping_keeps_a_container_instant_and_adds_one_otherwise() {
        let now = t("2026-11-26T12:00:00.5Z");
        assert_eq!(
            stamp("2026-11-26T11:59:59.123456789Z ready", now),
            "2026-11-26T11:59:59.123Z ready"
        );
        assert_eq!(
            stamp("[orchestrator] pulling", now),
            "2026-11-26T12:00:00.500Z [orchestrator] pulling"
        );
        let line = stamp("x", now);
        assert_eq!(parse_ts(&line).unwrap(), (now, "x"));
    }

    #[test]
    fn severities_from_the_line_or_the_stream() {
        assert_eq!(
            severity(r#"{"level":50,"msg":"x"}"#, Stream::Out),
            Severity::Error
        );
        assert_eq!(severity(r#"{"level":30}"#, Stream::Err), Severity::Info);
        assert_eq!(
            severity(r#"{"msg":"x","level":"warn"}"#, Stream::Out),
            Severity::Warn
        );
        assert_eq!(severity(r#"{"level": 60}"#, Stream::Out), Severity::Fatal);
        assert_eq!(severity("ERROR db down", Stream::Out), Severity::Error);
        assert_eq!(severity("[WARN] slow", Stream::Out), Severity::Warn);
        assert_eq!(severity("debug: verbose", Stream::Err), Severity::Debug);
        assert_eq!(severity("information follows", Stream::Out), Severity::Info);
        assert_eq!(
            severity("Errors are fine here", Stream::Out),
            Severity::Info,
            "a word, not a token"
        );
        assert_eq!(severity("plain", Stream::Out), Severity::Info);
        assert_eq!(severity("plain", Stream::Err), Severity::Error);
    }

    #[test]
    fn since_accepts_durations_and_instants_and_says_what_is_wrong() {
        let now = t("2026-11-26T12:00:00Z");
        assert_eq!(
            parse_instant("48h", now).unwrap(),
            t("2026-11-24T12:00:00Z")
        );
        assert_eq!(
            parse_instant("30m", now).unwrap(),
            t("2026-11-26T11:30:00Z")
        );
        assert_eq!(parse_instant("7d", now).unwrap(), t("2026-11-19T12:00:00Z"));
        assert_eq!(
            parse_instant("1h30m", now).unwrap(),
            t("2026-11-26T10:30:00Z")
        );
        assert_eq!(
            parse_instant("2026-11-25T10:00:00Z", now).unwrap(),
            t("2026-11-25T10:00:00Z")
        );
        assert_eq!(
            parse_instant("2026-11-25T11:00:00+01:00", now).unwrap(),
            t("2026-11-25T10:00:00Z")
        );
        let e = parse_instant("yesterday", now).unwrap_err();
        assert!(e.contains("neither a duration"), "{e}");
        assert!(parse_instant("", now).is_err());
    }

    fn log_files(names: &[&str]) -> Vec<LogFile> {
        names
            .iter()
            .filter_map(|n| classify(&Path::new("/l").join(n)))
            .collect()
    }

    fn file_names(p: &[LogFile]) -> Vec<String> {
        p.iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_file_spanning_missed_rotations_is_found_and_a_finished_gz_wins() {
        let names = [
            "out-2026-11-20.log.gz",
            "out-2026-11-24.log.gz",
            "out-2026-11-24.log",
            "out.log",
        ];
        let files = log_files(&names);
        // Rotation did not run from the 21st to the 24th: the 24th's file holds the 22nd.
        let p = plan(
            &files,
            Some(t("2026-11-22T10:00:00Z")),
            Some(t("2026-11-22T11:00:00Z")),
        );
        let got: Vec<(Option<NaiveDate>, bool)> = p.iter().map(|f| (f.day, f.gz)).collect();
        assert_eq!(
            got,
            vec![(NaiveDate::from_ymd_opt(2026, 11, 24), true)],
            "once, the .gz"
        );
    }

    #[test]
    fn file_names_say_stream_day_and_part() {
        let c = |n: &str| classify(Path::new(n));
        assert_eq!(
            c("/l/out.log").map(|f| (f.stream, f.day, f.gz)),
            Some((Stream::Out, None, false))
        );
        let f = c("/l/error-2026-11-20.2.log.gz").unwrap();
        assert_eq!(
            (f.stream, f.day, f.part, f.gz),
            (Stream::Err, NaiveDate::from_ymd_opt(2026, 11, 20), 2, true)
        );
        assert_eq!(c("/l/events.jsonl"), None);
        assert_eq!(
            c("/l/out-2026-11-20.log.gz.tmp"),
            None,
            "a compression in progress is not a log"
        );
        assert_eq!(c("/l/out-20261120.log.gz"), None);
    }

    #[test]
    fn the_plan_opens_only_days_that_touch_the_window_in_order() {
        let names = [
            "out.log",
            "out-2026-11-24.log.gz",
            "out-2026-11-25.1.log.gz",
            "out-2026-11-25.log.gz",
            "error.log",
            "out-2026-11-10.log.gz",
        ];
        let files = log_files(&names);
        let p = plan(&files, Some(t("2026-11-25T06:00:00Z")), None);
        let got = file_names(&p);
        assert_eq!(
            got,
            vec![
                "out-2026-11-25.log.gz",
                "out-2026-11-25.1.log.gz",
                "out.log",
                "error.log"
            ]
        );
        // A window ending on the 24th: the 24th's file and the 25th's first part (it may hold
        // lines of the 24th written before that rotation), not the later part nor the live file;
        // a live file with no rotation before it may hold anything (its search is a few reads).
        let p = plan(&files, None, Some(t("2026-11-24T12:00:00Z")));
        let got = file_names(&p);
        assert_eq!(
            got,
            vec![
                "out-2026-11-10.log.gz",
                "out-2026-11-24.log.gz",
                "out-2026-11-25.log.gz",
                "error.log"
            ]
        );
        assert_eq!(plan(&files, None, None).len(), 6);
        assert_eq!(
            plan(&files, None, None)[0].day,
            NaiveDate::from_ymd_opt(2026, 11, 10)
        );
    }

    fn write_log(
        path: &Path,
        start: DateTime<Utc>,
        n: usize,
        every_ms: i64,
        continuation_every: usize,
    ) {
        let mut f = std::io::BufWriter::new(File::create(path).unwrap());
        for i in 0..n {
            let ts = (start + chrono::Duration::milliseconds(i as i64 * every_ms))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            writeln!(f, "{ts}: line {i}").unwrap();
            if continuation_every > 0 && i % continuation_every == 0 {
                writeln!(f, "    at frame {i}").unwrap();
            }
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("orch-logs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn binary_search_finds_the_window_at_boundaries_and_past_continuations() {
        let d = tmp("seek");
        let p = d.join("out.log");
        let start = t("2026-11-25T00:00:00Z");
        write_log(&p, start, 10_000, 1000, 7);
        let file = classify(&p).unwrap();
        let read = |since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>| {
            let mut out = Vec::new();
            read_file(
                &file,
                "svc",
                &Filter {
                    since,
                    until,
                    ..Default::default()
                },
                &mut out,
            )
            .unwrap();
            out
        };
        // Exactly on a line's time: that line is the first.
        let got = read(
            Some(start + chrono::Duration::seconds(5000)),
            Some(start + chrono::Duration::seconds(5009)),
        );
        assert_eq!(got.first().unwrap().line, "line 5000");
        assert_eq!(
            got.iter().filter(|e| e.line.starts_with("line")).count(),
            10
        );
        // Continuation lines keep the time of their line and are kept with it.
        assert!(got
            .iter()
            .any(|e| e.line == "    at frame 5005"
                && e.time == start + chrono::Duration::seconds(5005)));
        // Between two lines: the next one; before everything: all; after everything: none.
        assert_eq!(
            read(Some(start + chrono::Duration::milliseconds(1500)), None)[0].line,
            "line 2"
        );
        assert_eq!(
            read(Some(start - chrono::Duration::seconds(10)), None)
                .iter()
                .filter(|e| e.line.starts_with("line"))
                .count(),
            10_000
        );
        assert!(read(Some(start + chrono::Duration::seconds(20_000)), None).is_empty());
        assert_eq!(read(Some(start), None)[0].line, "line 0");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn reads_live_rotated_and_archived_in_time_order_merging_streams() {
        let d = tmp("service");
        std::fs::create_dir_all(d.join("archive")).unwrap();
        let gz = |path: PathBuf, start: DateTime<Utc>, n: usize| {
            let plain = path.with_extension("plain");
            write_log(&plain, start, n, 60_000, 0);
            let mut enc = flate2::write::GzEncoder::new(
                File::create(&path).unwrap(),
                flate2::Compression::fast(),
            );
            enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
            enc.finish().unwrap();
            std::fs::remove_file(plain).unwrap();
        };
        gz(
            d.join("archive").join("out-2026-11-01.log.gz"),
            t("2026-11-01T00:00:00Z"),
            1440,
        );
        gz(
            d.join("out-2026-11-24.log.gz"),
            t("2026-11-24T00:00:00Z"),
            1440,
        );
        write_log(
            &d.join("out.log"),
            t("2026-11-25T00:00:00Z"),
            600,
            60_000,
            0,
        );
        let mut err = File::create(d.join("error.log")).unwrap();
        writeln!(err, "2026-11-25T00:00:30.000Z: ERROR boom").unwrap();
        writeln!(err, "2026-11-25T00:01:00.000Z: same time as out").unwrap();
        drop(err);
        let q = |since: &str, until: Option<&str>| Query {
            streams: vec![Stream::Out, Stream::Err],
            filter: Filter {
                since: Some(t(since)),
                until: until.map(t),
                ..Default::default()
            },
            tail: None,
        };
        // Across the rotated day and the live file, exactly the window.
        let got = read_service(
            &d,
            "svc",
            &q("2026-11-24T23:58:00Z", Some("2026-11-25T00:01:00Z")),
        )
        .unwrap();
        let lines: Vec<(&str, &str)> = got
            .iter()
            .map(|e| (e.stream.as_str(), e.line.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("out", "line 1438"),
                ("out", "line 1439"),
                ("out", "line 0"),
                ("err", "ERROR boom"),
                ("out", "line 1"),
                ("err", "same time as out")
            ]
        );
        assert_eq!(got[3].severity, Severity::Error);
        // The archive answers for its day.
        let old = read_service(
            &d,
            "svc",
            &q("2026-11-01T10:00:00Z", Some("2026-11-01T10:02:00Z")),
        )
        .unwrap();
        assert_eq!(old.len(), 3);
        // tail: the newest N, merged.
        let tail = read_service(
            &d,
            "svc",
            &Query {
                streams: vec![Stream::Out, Stream::Err],
                filter: Filter::default(),
                tail: Some(3),
            },
        )
        .unwrap();
        assert_eq!(
            tail.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(),
            vec!["line 597", "line 598", "line 599"]
        );
        // grep and level.
        let q2 = Query {
            streams: vec![Stream::Out, Stream::Err],
            filter: Filter {
                level: Some(Severity::Error),
                grep: Some(regex::Regex::new("boom|time").unwrap()),
                ..Default::default()
            },
            tail: None,
        };
        let hits = read_service(&d, "svc", &q2).unwrap();
        assert_eq!(
            hits.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(),
            vec!["ERROR boom", "same time as out"]
        );
        assert_eq!(tail_raw(&d.join("out.log"), 2).unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// `logs` as asked on the command line, before validation.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    pub workspace_root: PathBuf,
    /// Empty: every service.
    pub services: Vec<String>,
    pub ecosystem: serde_json::Value,
    pub ecosystem_file: PathBuf,
    pub since: Option<String>,
    pub until: Option<String>,
    pub tail: Option<u32>,
    /// `out` | `err` | `all` (default).
    pub stream: Option<String>,
    pub grep: Option<String>,
    pub level: Option<String>,
}

fn usage(message: String, remediation: &str) -> crate::error::Error {
    crate::error::Error::Usage {
        message,
        remediation: remediation.into(),
    }
}

/// Validates everything before a file is opened: service names (no `..`, `/`), known
/// services, the window, the stream, the level and the regex.
pub fn prepare(
    req: &LogsRequest,
    now: DateTime<Utc>,
) -> crate::error::Result<(Vec<(String, PathBuf)>, Query)> {
    for s in &req.services {
        crate::catalog::validate_name(s, "service")?;
    }
    let cat = crate::ops::load_catalog(&req.workspace_root, &req.ecosystem, &req.ecosystem_file)?;
    let names: Vec<String> = if req.services.is_empty() {
        cat.names()
    } else {
        for s in &req.services {
            cat.get(s)?;
        }
        req.services.clone()
    };
    let instant = |flag: &str, v: &Option<String>| -> crate::error::Result<Option<DateTime<Utc>>> {
        v.as_deref()
            .map(|s| {
                parse_instant(s, now).map_err(|m| {
                    usage(format!("--{flag}: {m}"), "Use a duration back from now (30m, 48h, 7d) or an RFC 3339 instant (2026-11-25T10:00:00Z)")
                })
            })
            .transpose()
    };
    let since = instant("since", &req.since)?;
    let until = instant("until", &req.until)?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(usage(
                format!(
                    "--until ({}) is before --since ({})",
                    u.to_rfc3339(),
                    s.to_rfc3339()
                ),
                "Swap them, or drop --until",
            ));
        }
    }
    let streams = match req.stream.as_deref().unwrap_or("all") {
        "all" => vec![Stream::Out, Stream::Err],
        "out" | "stdout" => vec![Stream::Out],
        "err" | "stderr" => vec![Stream::Err],
        other => {
            return Err(usage(
                format!("--stream must be out, err or all, not \"{other}\""),
                "Use --stream=out, --stream=err or --stream=all",
            ))
        }
    };
    let level = req
        .level
        .as_deref()
        .map(|l| {
            Severity::parse(l).ok_or_else(|| {
                usage(
                    format!("--level \"{l}\" is not a severity"),
                    "Use one of trace, debug, info, warn, error, fatal",
                )
            })
        })
        .transpose()?;
    let grep = req
        .grep
        .as_deref()
        .map(|g| {
            regex::Regex::new(g).map_err(|e| {
                usage(
                    format!("--grep is not a valid regular expression: {e}"),
                    "Check the pattern (Rust regex syntax, like grep -E)",
                )
            })
        })
        .transpose()?;
    let dirs = names.into_iter().map(|n| {
        let dir = cat.log_dir(&n);
        (n, dir)
    });
    Ok((
        dirs.collect(),
        Query {
            streams,
            filter: Filter {
                since,
                until,
                level,
                grep,
            },
            tail: req.tail.map(|t| t as usize),
        },
    ))
}

/// The entries of every asked service, merged in time order (`tail`: the last N overall).
pub fn run(req: &LogsRequest, now: DateTime<Utc>) -> crate::error::Result<Vec<Entry>> {
    let (services, q) = prepare(req, now)?;
    let mut all = Vec::new();
    for (name, dir) in &services {
        let got = read_service(dir, name, &q).map_err(|source| crate::error::Error::ReadFile {
            path: dir.clone(),
            source,
        })?;
        all.push(got);
    }
    let mut merged = if all.len() == 1 {
        all.pop().unwrap_or_default()
    } else {
        merge_many(all)
    };
    if let Some(n) = q.tail {
        let cut = merged.len().saturating_sub(n);
        merged.drain(..cut);
    }
    Ok(merged)
}

/// Pure: merges several time-ordered lists (services) by time, stable.
pub fn merge_many(lists: Vec<Vec<Entry>>) -> Vec<Entry> {
    let mut out: Vec<Entry> = lists.into_iter().flatten().collect();
    out.sort_by_key(|e| e.time); // stable: a service keeps its own order on equal times
    out
}

/// Pure: a log line as it goes into a file: starting with an RFC 3339 UTC timestamp with
/// milliseconds. A line that already starts with one (a container's, `docker logs -t`) keeps
/// its instant, normalised; any other gets `now`.
pub fn stamp(line: &str, now: DateTime<Utc>) -> String {
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match parse_ts(line) {
        Some((t, rest)) => format!("{} {rest}", fmt(t)),
        None => format!("{} {line}", fmt(now)),
    }
}

/// Pure: one entry as `logs` prints it: `<time> <service> <stream> <line>`.
pub fn format_line(e: &Entry) -> String {
    format!(
        "{} {} {} {}",
        e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        e.service,
        e.stream.as_str(),
        e.line
    )
}

/// One live file followed by `--follow`: read on the same descriptor as it grows; when the path
/// names a new file (rotation renamed the old one and the writer reopened), the old descriptor
/// is read to its end first, then the new file from its start — nothing lost, nothing twice.
pub struct Tailer {
    pub service: String,
    pub stream: Stream,
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    pending: Vec<u8>,
    last: Option<DateTime<Utc>>,
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
                let _ = f.seek(SeekFrom::Start(from.unwrap_or(m.len()).min(m.len())));
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
        let mut lines = Lines {
            service: &self.service,
            stream: self.stream,
            last: self.last,
        };
        for raw in String::from_utf8_lossy(&complete).lines() {
            if let Some(e) = lines.entry(raw) {
                if filter.keeps(&e) {
                    out.push(e);
                }
            }
        }
        self.last = lines.last;
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

/// `--follow`: prints the window's start (rotated files when `since` is given, then the live
/// files from the window's start, the last `tail` lines, or their end) and then every new line
/// as it is written, across rotations, until `emit` returns false (the reader went away).
pub async fn follow(
    req: &LogsRequest,
    now: DateTime<Utc>,
    mut emit: impl FnMut(&Entry) -> bool,
) -> crate::error::Result<()> {
    let (services, q) = prepare(req, now)?;
    if q.filter.until.is_some() {
        return Err(usage(
            "--until and --follow exclude each other (a followed window has no end)".into(),
            "Drop --until to follow, or --follow to read a closed window",
        ));
    }
    let io = |dir: &Path, source: std::io::Error| crate::error::Error::ReadFile {
        path: dir.to_path_buf(),
        source,
    };
    let mut tailers = Vec::new();
    let mut first = Vec::new();
    for (name, dir) in &services {
        for stream in &q.streams {
            if q.filter.since.is_some() {
                let rotated: Vec<LogFile> = plan(&list_files(dir), q.filter.since, None)
                    .into_iter()
                    .filter(|f| f.stream == *stream && f.day.is_some())
                    .collect();
                for f in rotated {
                    read_file(&f, name, &q.filter, &mut first).map_err(|e| io(dir, e))?;
                }
            }
            let live = dir.join(format!("{}.log", stream.stem()));
            let from = follow_start(&live, &q).map_err(|e| io(dir, e))?;
            let mut t = Tailer::open(name, *stream, live, Some(from));
            first.extend(t.poll(&q.filter));
            tailers.push(t);
        }
    }
    first.sort_by_key(|e| e.time);
    if let Some(n) = q.tail {
        let cut = first.len().saturating_sub(n);
        first.drain(..cut);
    }
    for e in &first {
        if !emit(e) {
            return Ok(());
        }
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut batch: Vec<Entry> = tailers.iter_mut().flat_map(|t| t.poll(&q.filter)).collect();
        batch.sort_by_key(|e| e.time);
        for e in &batch {
            if !emit(e) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod follow_tests {
    use super::*;
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
