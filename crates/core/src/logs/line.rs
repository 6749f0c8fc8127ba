//! One log line as `logs` sees it: its stream, its severity (read from the line), the entry it
//! becomes, the timestamp it starts with, and `--since`/`--until` instants.

use chrono::{DateTime, Utc};
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
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Trace => "trace",
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }
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
    /// The PM2 process id of a cluster instance with its own files (`merge_logs: false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    pub stream: Stream,
    pub severity: Severity,
    pub line: String,
}

fn ser_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Pure: the RFC 3339 timestamp a line starts with (`2026-11-25T10:00:00.123Z`, any fraction,
/// `Z` or `±HH:MM`), normalised to UTC, and the rest of the line after the separator (`: ` as
/// PM2 writes it, or a space). The parsing itself is [`super::ts::parse_ts_bytes`].
pub fn parse_ts(line: &str) -> Option<(DateTime<Utc>, &str)> {
    let (n, off) = super::ts::parse_ts_bytes(line.as_bytes())?;
    Some((DateTime::from_timestamp_nanos(n), &line[off..]))
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
        let t = own_prefix(t);
        let bracketed = t.starts_with('[');
        let body = t.trim_start_matches('[');
        let word: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let after = &body[word.len()..];
        if word == "LOG" && after.starts_with(':') {
            return Severity::Info; // PostgreSQL's ordinary messages
        }
        if word.len() >= 4
            && (word.chars().all(|c| c.is_ascii_uppercase())
                || after.starts_with(':')
                || (bracketed && after.starts_with(']')))
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

/// Pure: what follows a program's own timestamp at the start of a line, and the process id
/// after it: PostgreSQL writes `2026-11-26 10:00:00.123 UTC [29] LOG:  …` and nginx
/// `2026/11/26 10:00:00 [error] 29#29: …` after the timestamp we add, so their severity word
/// is the second token. A line without such a prefix is returned as it is.
fn own_prefix(t: &str) -> &str {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() < 19
        || !digits(0..4)
        || !(b[4] == b'-' || b[4] == b'/')
        || b[7] != b[4]
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
        || !digits(5..7)
        || !digits(8..10)
        || !digits(11..13)
        || !digits(14..16)
        || !digits(17..19)
    {
        return t;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let mut rest = &t[i..];
    // A zone: `Z`, `+01:00`, or a word such as `UTC`/`CET` before the next token.
    rest = rest.strip_prefix('Z').unwrap_or(rest);
    if rest.starts_with(['+', '-']) {
        rest = rest[1..].trim_start_matches(|c: char| c.is_ascii_digit() || c == ':');
    }
    let trimmed = rest.trim_start();
    let zone: usize = trimmed.bytes().take_while(u8::is_ascii_uppercase).count();
    if (2..=5).contains(&zone) && trimmed[zone..].starts_with(' ') {
        let next = trimmed[zone..].trim_start();
        // `UTC [29] LOG:` — but `ERROR x` right after the time is the token itself.
        if (next.starts_with('[') || next.starts_with(|c: char| c.is_ascii_uppercase()))
            && Severity::parse(&trimmed[..zone]).is_none()
        {
            rest = next;
        }
    }
    let rest = rest.trim_start();
    // A `[pid]` (postgres) is skipped; a `[level]` (nginx) is the token.
    match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((pid, after)) if !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()) => {
            after.trim_start()
        }
        _ => rest,
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
