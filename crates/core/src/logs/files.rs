//! A service's log files: what a file name says (stream, cluster instance, day, size part,
//! compressed), which files a time window needs, and opening them so that a rotation racing the
//! read loses nothing.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::line::Stream;

/// One log file of a service and what its name says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    pub path: PathBuf,
    pub stream: Stream,
    /// PM2's process id when a cluster app keeps one file per instance (`merge_logs: false`
    /// in its ecosystem entry: `out-<id>.log`); `None` for the one file per stream.
    pub instance: Option<u32>,
    /// The UTC day a rotated file covers (`None`: the live file).
    pub day: Option<NaiveDate>,
    /// The `.n` of a size rotation within a day (0 for the first).
    pub part: u32,
    pub gz: bool,
    /// The inode the directory listing named (0 when not listed): what `open_plan` checks.
    pub ino: u64,
}

impl LogFile {
    /// The files of one (stream, instance) follow each other in time.
    pub fn channel(&self) -> (Stream, Option<u32>) {
        (self.stream, self.instance)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Pure: what a file name in a service's log directory (or its `archive/`) is:
/// `<stem>.log`, `<stem>-<id>.log` (one file per cluster instance, PM2's naming), or rotated
/// `<stem>[-<id>]-<YYYY-MM-DD>[.<n>].log[.gz]`, with `<stem>` `out` or `error`.
pub fn classify(path: &Path) -> Option<LogFile> {
    let name = path.file_name()?.to_str()?;
    for stream in [Stream::Out, Stream::Err] {
        let Some(rest) = name.strip_prefix(stream.stem()) else {
            continue;
        };
        let file = |instance, day, part, gz| LogFile {
            path: path.to_path_buf(),
            stream,
            instance,
            day,
            part,
            gz,
            ino: 0,
        };
        if rest == ".log" {
            return Some(file(None, None, 0, false));
        }
        let Some(rest) = rest.strip_prefix('-') else {
            continue;
        };
        if let Some(id) = rest.strip_suffix(".log").filter(|id| all_digits(id)) {
            return Some(file(Some(id.parse().ok()?), None, 0, false));
        }
        let (body, gz) = match rest.strip_suffix(".log.gz") {
            Some(b) => (b, true),
            None => (rest.strip_suffix(".log")?, false),
        };
        let (date, part) = match body.split_once('.') {
            Some((d, n)) => (d, n.parse().ok()?),
            None => (body, 0),
        };
        // `<id>-<date>`: a date has its own dashes, so the id is what precedes the last three
        // dash-separated fields.
        let (instance, date) = match date.rsplitn(4, '-').collect::<Vec<_>>().as_slice() {
            [_, _, _, id] if all_digits(id) => (Some(id.parse().ok()?), &date[id.len() + 1..]),
            [_, _, _] => (None, date),
            _ => return None,
        };
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        return Some(file(instance, Some(day), part, gz));
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
                || !files.iter().any(|g| {
                    g.gz && g.channel() == f.channel() && g.day == f.day && g.part == f.part
                })
        })
        .cloned()
        .collect();
    all.sort_by_key(|f| (f.channel(), f.day.is_none(), f.day, f.part));
    let midnight =
        |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut keep = Vec::new();
    let mut prev: Option<((Stream, Option<u32>), NaiveDate)> = None;
    for f in all {
        let start = prev
            .filter(|(c, _)| *c == f.channel())
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
            prev = Some((f.channel(), d));
        }
        if after_since && before_until {
            keep.push(f);
        }
    }
    keep
}

/// Lists a service's log files (its directory and `archive/`), with the inodes listed.
pub fn list_files(dir: &Path) -> Vec<LogFile> {
    use std::os::unix::fs::DirEntryExt;
    let mut out = Vec::new();
    for d in [dir.to_path_buf(), dir.join("archive")] {
        if let Ok(rd) = std::fs::read_dir(&d) {
            out.extend(
                rd.flatten()
                    .filter_map(|e| classify(&e.path()).map(|f| LogFile { ino: e.ino(), ..f })),
            );
        }
    }
    out
}

/// The window's files of a service, opened. The agent renames and compresses files while we
/// read: between listing and opening, a plain rotated file may become its `.gz` (and vanish) or
/// the live file may be renamed to a rotated name (and a new, empty one appear). Opened
/// descriptors keep reading what they opened whatever happens to the names afterwards, so the
/// directory is listed, planned and opened again until every file opened is the one listed
/// (same inode, still there), up to 20 times.
pub fn open_plan(
    dir: &Path,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> std::io::Result<Vec<(LogFile, File)>> {
    use std::os::unix::fs::MetadataExt;
    // What a listing says exists, whatever its name's form (plain or .gz, online or archived):
    // a directory read while files are renamed can miss one (readdir passes the new name's
    // place before it exists and reaches the old one after it is gone), so two listings must
    // agree.
    let keys = |files: &[LogFile]| {
        let mut k: Vec<_> = files.iter().map(|f| (f.channel(), f.day, f.part)).collect();
        k.sort();
        k.dedup();
        k
    };
    let mut last = Vec::new();
    for _ in 0..20 {
        let mut opened = Vec::new();
        let listed = list_files(dir);
        let mut stale = false;
        for f in plan(&listed, since, until) {
            match File::open(&f.path) {
                Ok(h) if h.metadata()?.ino() == f.ino => opened.push((f, h)),
                Ok(_) => stale = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => stale = true,
                Err(e) => return Err(e),
            }
        }
        if !stale && keys(&listed) == keys(&list_files(dir)) {
            return Ok(opened);
        }
        last = opened;
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(last)
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

/// The last `n` lines of a file that are not blank (an error log's tail for a message, the
/// events a journal may already hold); nothing when it cannot be read.
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let mut lines = tail_raw(path, n).unwrap_or_default();
    lines.retain(|l| !l.trim().is_empty());
    lines
}
