//! Log retrieval (DESIGN §3 logs): every line of `apps/logs/<service>/{out,error}.log` starts
//! with an RFC 3339 timestamp, so a time window is found by binary search on the live file
//! (only the window is read), rotated `<stream>-<date>[.<n>].log.gz` files and `archive/` are
//! chosen by the date in their name (files outside the window are not opened), and the two
//! streams are merged in time order. Pure parts (timestamps, severities, `--since`, the file
//! plan, the merge) are plain functions; reading sits in `read_*`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub mod files;
pub mod line;
pub mod scan;
pub mod ts;

pub use files::*;
pub use line::*;
use scan::{Bounds, Cursor, LineFilter, Merger};
use ts::nanos_of;

/// The filter applied to every entry.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub level: Option<Severity>,
    pub grep: Option<regex::Regex>,
}

impl Filter {
    fn keeps(&self, e: &Entry) -> bool {
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
fn entry_of(service: &str, instance: Option<u32>, stream: Stream, time: i64, rest: &[u8]) -> Entry {
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
fn collect(mut c: Cursor, filter: &Filter, out: &mut Vec<Entry>) -> std::io::Result<()> {
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
    scan::seek_nanos(f, nanos_of(since))
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
fn next_entry(m: &mut Merger) -> std::io::Result<Option<Entry>> {
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

#[cfg(test)]
mod tests {
    use super::*;
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
        crate::names::validate_name(s, "service")?;
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
    read_all(req, &services, &q)
}

fn read_error(req: &LogsRequest, source: std::io::Error) -> crate::error::Error {
    crate::error::Error::ReadFile {
        path: req.workspace_root.join("apps").join("logs"),
        source,
    }
}

fn read_all(
    req: &LogsRequest,
    services: &[(String, PathBuf)],
    q: &Query,
) -> crate::error::Result<Vec<Entry>> {
    let Some(n) = q.tail else {
        let mut m = merger(services, q).map_err(|e| read_error(req, e))?;
        let mut out = Vec::new();
        while let Some(e) = next_entry(&mut m).map_err(|e| read_error(req, e))? {
            out.push(e);
        }
        return Ok(out);
    };
    let mut all = Vec::new();
    for (name, dir) in services {
        let got = read_service(dir, name, q).map_err(|source| crate::error::Error::ReadFile {
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
    let cut = merged.len().saturating_sub(n);
    merged.drain(..cut);
    Ok(merged)
}

/// One line as `logs` prints it: `<time> <service> <stream> <line>`, or the entry as one JSON
/// object (`time`, `service`, `stream`, `severity`, `line`).
fn write_line(
    out: &mut impl Write,
    json: bool,
    time: &[u8],
    (service, instance): (&str, Option<u32>),
    stream: Stream,
    rest: &[u8],
) -> std::io::Result<()> {
    if json {
        let line = String::from_utf8_lossy(rest);
        out.write_all(b"{\"time\":\"")?;
        out.write_all(time)?;
        out.write_all(b"\",\"service\":")?;
        serde_json::to_writer(&mut *out, service)?;
        if let Some(id) = instance {
            write!(out, ",\"instance\":{id}")?;
        }
        write!(
            out,
            ",\"stream\":\"{}\",\"severity\":\"{}\",\"line\":",
            stream.as_str(),
            severity(&line, stream).as_str()
        )?;
        serde_json::to_writer(&mut *out, &*line)?;
        out.write_all(b"}\n")
    } else {
        out.write_all(time)?;
        out.write_all(b" ")?;
        out.write_all(service.as_bytes())?;
        if let Some(id) = instance {
            write!(out, "[{id}]")?;
        }
        out.write_all(if stream == Stream::Out {
            b" out "
        } else {
            b" err "
        })?;
        out.write_all(rest)?;
        out.write_all(b"\n")
    }
}

/// `logs` on the command line: writes the window to `out` straight from the files (text, or
/// one JSON object a line) and returns how many lines. Without `--tail` nothing is collected:
/// each merged line is formatted from its bytes and written. Stops quietly when `out` fails
/// (the reader went away: `| head`).
pub fn print(
    req: &LogsRequest,
    now: DateTime<Utc>,
    json: bool,
    out: &mut impl Write,
) -> crate::error::Result<u64> {
    let (services, q) = prepare(req, now)?;
    let mut tt = ts::TimeText::default();
    let mut n = 0u64;
    if q.tail.is_some() {
        for e in read_all(req, &services, &q)? {
            let time = tt.format(nanos_of(e.time));
            let who = (e.service.as_str(), e.instance);
            if write_line(out, json, time, who, e.stream, e.line.as_bytes()).is_err() {
                return Ok(n);
            }
            n += 1;
        }
    } else {
        let mut m = merger(&services, &q).map_err(|e| read_error(req, e))?;
        while let Some(k) = m.next_line().map_err(|e| read_error(req, e))? {
            let c = &m.cursors[k];
            let time = tt.format(c.key().unwrap_or(0));
            let who = (c.service.as_str(), c.instance);
            if write_line(out, json, time, who, c.stream, c.rest()).is_err() {
                return Ok(n);
            }
            n += 1;
        }
    }
    // A reader that went away (a closed pipe) ends the printing, as for the writes above.
    out.flush().ok();
    Ok(n)
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

/// Pure: one entry as `logs` prints it: `<time> <service>[<instance>] <stream> <line>`.
pub fn format_line(e: &Entry) -> String {
    format!(
        "{} {}{} {} {}",
        e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        e.service,
        e.instance.map(|i| format!("[{i}]")).unwrap_or_default(),
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
            let (time, rest) = match ts::parse_ts_bytes(raw) {
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
    let io = |dir: &Path, source: std::io::Error| crate::error::Error::ReadFile {
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

/// `--follow`: prints the window's start and then every new line as it is written, across
/// rotations, until `emit` returns false (the reader went away).
pub async fn follow(
    req: &LogsRequest,
    now: DateTime<Utc>,
    mut emit: impl FnMut(&Entry) -> bool,
) -> crate::error::Result<()> {
    let (first, mut follower) = follow_open(req, now)?;
    for e in &first {
        if !emit(e) {
            return Ok(());
        }
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for e in &follower.poll() {
            if !emit(e) {
                return Ok(());
            }
        }
    }
}

/// The programmatic API's stream of entries, read in batches: the window (merged from the
/// files line by line, never all at once), then — when following — the lines written since.
pub struct Reader {
    merged: Option<Merger>,
    listed: std::vec::IntoIter<Entry>,
    follower: Option<Follower>,
    root: PathBuf,
}

impl Reader {
    pub fn open(
        req: &LogsRequest,
        now: DateTime<Utc>,
        follow: bool,
    ) -> crate::error::Result<Reader> {
        let root = req.workspace_root.join("apps").join("logs");
        if follow {
            let (first, follower) = follow_open(req, now)?;
            return Ok(Reader {
                merged: None,
                listed: first.into_iter(),
                follower: Some(follower),
                root,
            });
        }
        let (services, q) = prepare(req, now)?;
        Ok(if q.tail.is_some() {
            Reader {
                merged: None,
                listed: read_all(req, &services, &q)?.into_iter(),
                follower: None,
                root,
            }
        } else {
            Reader {
                merged: Some(merger(&services, &q).map_err(|e| read_error(req, e))?),
                listed: Vec::new().into_iter(),
                follower: None,
                root,
            }
        })
    }

    /// Up to `max` entries: the window's next ones, then (following) what was written since
    /// the last call. Empty: the end (see [`Reader::done`]), or nothing new yet.
    pub fn read(&mut self, max: usize) -> crate::error::Result<Vec<Entry>> {
        let mut out: Vec<Entry> = self.listed.by_ref().take(max).collect();
        if let Some(m) = self.merged.as_mut() {
            while out.len() < max {
                match next_entry(m) {
                    Ok(Some(e)) => out.push(e),
                    Ok(None) => {
                        self.merged = None;
                        break;
                    }
                    Err(source) => {
                        return Err(crate::error::Error::ReadFile {
                            path: self.root.clone(),
                            source,
                        })
                    }
                }
            }
        }
        if out.is_empty() && self.merged.is_none() {
            if let Some(f) = self.follower.as_mut() {
                self.listed = f.poll().into_iter();
                out.extend(self.listed.by_ref().take(max));
            }
        }
        Ok(out)
    }

    /// True when every entry was read and nothing is followed.
    pub fn done(&self) -> bool {
        self.merged.is_none() && self.listed.len() == 0 && self.follower.is_none()
    }
}

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
        let io = |source: std::io::Error| crate::error::Error::ReadFile {
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
        Some(s) => scan::seek_nanos(&mut f, s)?,
        None => 0,
    };
    let end = match b.until {
        Some(u) => scan::seek_nanos(&mut f, u.saturating_add(1))?,
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

#[cfg(test)]
mod request_tests {
    use super::*;
    use std::io::Write;

    /// A workspace with two services: `api` (a rotated `.gz` day, a live file with offsets,
    /// continuations and CRLF, an error stream at the same instants) and `web`.
    fn workspace(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("orch-logreq-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let api = root.join("apps/logs/api");
        let web = root.join("apps/logs/web");
        std::fs::create_dir_all(&api).unwrap();
        std::fs::create_dir_all(&web).unwrap();
        std::fs::write(
            root.join("package.json"),
            r#"{"name":"logreq","private":true}"#,
        )
        .unwrap();
        std::fs::write(root.join("nx.json"), "{}").unwrap();
        let mut day = String::new();
        for i in 0..300 {
            day += &format!(
                "2026-11-24T23:{:02}:{:02}.000Z: day line {i}\n",
                55 + i / 60,
                i % 60
            );
        }
        let mut enc = flate2::write::GzEncoder::new(
            File::create(api.join("out-2026-11-24.log.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(day.as_bytes()).unwrap();
        enc.finish().unwrap();
        let mut out = File::create(api.join("out.log")).unwrap();
        let mut err = File::create(api.join("error.log")).unwrap();
        let mut webout = File::create(web.join("out.log")).unwrap();
        for i in 0..400 {
            let (m, s) = (i / 60, i % 60);
            // Written in +01:00, as PM2 does in a daemon's zone.
            writeln!(
                out,
                "2026-11-25T01:{m:02}:{s:02}.250+01:00: GET /items/{i} 200"
            )
            .unwrap();
            if i % 50 == 0 {
                writeln!(out, "    at continuation {i}").unwrap();
                write!(out, "2026-11-25T00:{m:02}:{s:02}.250Z: WARN slow {i}\r\n").unwrap();
            }
            if i % 7 == 0 {
                writeln!(err, "2026-11-25T00:{m:02}:{s:02}.250Z: ERROR failed {i}").unwrap();
                writeln!(webout, "2026-11-25T00:{m:02}:{s:02}.250Z: {{\"level\":30,\"msg\":\"web {i} \\\"q\\\"\"}}").unwrap();
            }
        }
        root
    }

    fn request(root: &Path, f: impl FnOnce(&mut LogsRequest)) -> LogsRequest {
        let mut r = LogsRequest {
            workspace_root: root.to_path_buf(),
            ecosystem: serde_json::json!({ "apps": [
                { "name": "api", "script": "x.js" },
                { "name": "web", "script": "x.js" }
            ]}),
            ecosystem_file: root.join("ecosystem.config.js"),
            ..Default::default()
        };
        f(&mut r);
        r
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn printed(req: &LogsRequest, json: bool) -> String {
        let mut out = Vec::new();
        print(req, now(), json, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn printing_from_bytes_says_exactly_what_the_entries_say() {
        let root = workspace("print");
        let s = |v: &str| Some(v.to_string());
        let cases: Vec<LogsRequest> = vec![
            request(&root, |_| {}),
            request(&root, |r| {
                r.since = s("2026-11-24T23:55:00Z");
                r.until = s("2026-11-25T00:02:00.250Z");
            }),
            request(&root, |r| {
                r.services = vec!["api".into()];
                r.level = s("warn");
            }),
            request(&root, |r| {
                r.grep = s("items/1[0-9]{2} |web 7");
                r.stream = s("out");
            }),
            request(&root, |r| r.tail = Some(25)),
            request(&root, |r| {
                r.since = s("2026-11-25T00:03:00Z");
                r.tail = Some(10);
            }),
        ];
        for req in &cases {
            let entries = run(req, now()).unwrap();
            assert!(!entries.is_empty(), "{req:?}");
            let text: String = entries.iter().map(|e| format_line(e) + "\n").collect();
            assert_eq!(printed(req, false), text, "{req:?}");
            let json: Vec<serde_json::Value> = printed(req, true)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let want: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| serde_json::to_value(e).unwrap())
                .collect();
            assert_eq!(json, want, "{req:?}");
            // The programmatic reader, in small batches, gives the same entries.
            let mut r = Reader::open(req, now(), false).unwrap();
            let mut got = Vec::new();
            loop {
                let batch = r.read(7).unwrap();
                if batch.is_empty() {
                    break;
                }
                assert!(batch.len() <= 7);
                got.extend(batch);
            }
            assert!(r.done());
            assert_eq!(got, entries, "{req:?}");
        }
        // The whole set: day lines first, offsets normalised, continuation kept, CRLF cut,
        // out before err and api before web on equal instants.
        let all = run(&cases[0], now()).unwrap();
        assert_eq!(all.len(), 300 + 400 + 8 * 2 + 58 * 2);
        assert_eq!(all[0].line, "day line 0");
        assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
        let at = |line: &str| all.iter().position(|e| e.line == line).unwrap();
        assert!(at("GET /items/0 200") < at("    at continuation 0"));
        assert!(at("    at continuation 0") < at("WARN slow 0"));
        assert!(at("WARN slow 0") < at("ERROR failed 0"));
        assert!(at("ERROR failed 0") < at(r#"{"level":30,"msg":"web 0 \"q\""}"#));
        assert_eq!(all[at("WARN slow 0")].severity, Severity::Warn);
        assert_eq!(
            all[at("GET /items/1 200")].time,
            DateTime::parse_from_rfc3339("2026-11-25T00:00:01.250Z").unwrap()
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_slice_is_the_raw_window_file_by_file() {
        let root = workspace("slice");
        let (since, until) = ("2026-11-24T23:58:30Z", "2026-11-25T00:01:00.250Z");
        let req = request(&root, |r| {
            r.services = vec!["api".into()];
            r.since = Some(since.into());
            r.until = Some(until.into());
        });
        let got = slice(&req, now()).unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["out-2026-11-24.log.gz", "out.log", "error.log"]);
        // Each slice holds exactly the file's lines in the window (continuations with theirs).
        let (s, u) = (
            parse_instant(since, now()).unwrap(),
            parse_instant(until, now()).unwrap(),
        );
        for sl in &got {
            let text = if sl.compressed {
                let mut t = String::new();
                flate2::read::MultiGzDecoder::new(File::open(&sl.path).unwrap())
                    .read_to_string(&mut t)
                    .unwrap();
                t
            } else {
                std::fs::read_to_string(&sl.path).unwrap()
            };
            let mut last = None;
            let want: String = text
                .split_inclusive('\n')
                .filter(|l| {
                    last = parse_ts(l).map(|(t, _)| t).or(last);
                    last.is_some_and(|t| t >= s && t <= u)
                })
                .collect();
            assert_eq!(
                String::from_utf8_lossy(&sl.data),
                want,
                "{}",
                sl.path.display()
            );
            if let Some((a, b)) = sl.range {
                assert_eq!(&text.as_bytes()[a as usize..b as usize], sl.data.as_slice());
            }
        }
        assert!(slice(&request(&root, |r| r.tail = Some(3)), now()).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;
    use std::io::Write;

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
                crate::rotate::compress(&rotated).unwrap();
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
