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
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::logs::*;
    use chrono::NaiveDate;
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
        // A program's own timestamp (and pid) first: the token after it counts.
        let pg = |w: &str| format!("2026-11-26 10:00:00.123 UTC [29] {w}:  message");
        assert_eq!(severity(&pg("LOG"), Stream::Err), Severity::Info);
        assert_eq!(severity(&pg("WARNING"), Stream::Err), Severity::Warn);
        assert_eq!(severity(&pg("ERROR"), Stream::Out), Severity::Error);
        assert_eq!(severity(&pg("FATAL"), Stream::Out), Severity::Fatal);
        assert_eq!(severity(&pg("PANIC"), Stream::Out), Severity::Fatal);
        assert_eq!(
            severity(&pg("DETAIL"), Stream::Err),
            Severity::Error,
            "the stream's"
        );
        assert_eq!(
            severity(
                "2026-11-26 10:00:00 CET [7] LOG:  checkpoint starting",
                Stream::Err
            ),
            Severity::Info
        );
        assert_eq!(
            severity(
                "2026/11/26 10:00:00 [error] 29#29: *1 open() failed",
                Stream::Err
            ),
            Severity::Error
        );
        assert_eq!(
            severity(
                "2026/11/26 10:00:00 [notice] 1#1: start worker process",
                Stream::Err
            ),
            Severity::Info
        );
        assert_eq!(
            severity("2026-11-26T10:00:00.5Z WARN cache cold", Stream::Out),
            Severity::Warn
        );
        assert_eq!(
            severity("2026-11-26T10:00:00+01:00 ERROR x", Stream::Out),
            Severity::Error
        );
        assert_eq!(
            severity("2026-11-26 10:00:00 LOG: x", Stream::Err),
            Severity::Info
        );
        assert_eq!(severity("LOG: x", Stream::Err), Severity::Info);
        assert_eq!(severity("LOGIN ok", Stream::Err), Severity::Error);
        assert_eq!(
            severity("2026-11-26 something", Stream::Err),
            Severity::Error
        );
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
        // One file per cluster instance (PM2's `-<pm_id>` with merge_logs false).
        let f = c("/l/out-3.log").unwrap();
        assert_eq!((f.stream, f.instance, f.day), (Stream::Out, Some(3), None));
        let f = c("/l/error-12-2026-11-20.1.log.gz").unwrap();
        assert_eq!(
            (f.stream, f.instance, f.day, f.part, f.gz),
            (
                Stream::Err,
                Some(12),
                NaiveDate::from_ymd_opt(2026, 11, 20),
                1,
                true
            )
        );
        assert_eq!(c("/l/out-2026-11-20.log").unwrap().instance, None);
        assert_eq!(c("/l/out-x-2026-11-20.log"), None);
        assert_eq!(c("/l/out-3.log.gz"), None);
        assert_eq!(c("/l/output.log"), None);
    }

    #[test]
    fn instances_are_read_as_their_own_channels_and_merged() {
        let d = tmp("instances");
        write_log(&d.join("out-3.log"), t("2026-11-25T00:00:00Z"), 10, 1000, 0);
        write_log(
            &d.join("out-4.log"),
            t("2026-11-25T00:00:00.500Z"),
            10,
            1000,
            0,
        );
        write_log(
            &d.join("out-3-2026-11-24.log"),
            t("2026-11-24T23:59:50Z"),
            5,
            1000,
            0,
        );
        let files = list_files(&d);
        assert_eq!(
            channels(&files, &[Stream::Out, Stream::Err]),
            vec![(Stream::Out, Some(3)), (Stream::Out, Some(4))]
        );
        let q = Query {
            streams: vec![Stream::Out, Stream::Err],
            ..Default::default()
        };
        let got = read_service(&d, "svc", &q).unwrap();
        assert_eq!(got.len(), 25);
        assert!(got.windows(2).all(|w| w[0].time <= w[1].time));
        assert_eq!(
            got.iter().take(7).map(|e| e.instance).collect::<Vec<_>>(),
            vec![
                Some(3),
                Some(3),
                Some(3),
                Some(3),
                Some(3),
                Some(3),
                Some(4)
            ],
            "the rotated day of instance 3, then both live files interleaved"
        );
        assert_eq!(
            format_line(&got[6]),
            "2026-11-25T00:00:00.500Z svc[4] out line 0"
        );
        let tail = read_service(
            &d,
            "svc",
            &Query {
                tail: Some(3),
                ..q.clone()
            },
        )
        .unwrap();
        assert_eq!(
            tail.iter()
                .map(|e| (e.instance, e.line.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (Some(4), "line 8"),
                (Some(3), "line 9"),
                (Some(4), "line 9")
            ]
        );
        let _ = std::fs::remove_dir_all(&d);
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
