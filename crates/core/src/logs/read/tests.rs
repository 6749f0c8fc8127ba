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
    assert!(got.iter().any(
        |e| e.line == "    at frame 5005" && e.time == start + chrono::Duration::seconds(5005)
    ));
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

/// Many services, timestamps shared between them: the merged window is every line once, in time
/// order, equal times in the order of the services (and stdout before stderr), each file in its
/// own order — what a stable sort by time gives.
#[test]
fn a_window_across_many_services_is_a_stable_merge_by_time() {
    let d = tmp("many");
    let mut services = Vec::new();
    let mut expected = Vec::new();
    for s in 0..40 {
        let dir = d.join(format!("svc{s}"));
        std::fs::create_dir_all(&dir).unwrap();
        // Every third service writes twice as often; all start on the same second.
        let every = if s % 3 == 0 { 500 } else { 1000 };
        let n = if s % 3 == 0 { 40 } else { 20 };
        write_log(&dir.join("out.log"), t("2026-11-25T00:00:00Z"), n, every, 0);
        write_log(
            &dir.join("error.log"),
            t("2026-11-25T00:00:00Z"),
            5,
            4000,
            0,
        );
        for (stream, n, every) in [(Stream::Out, n, every), (Stream::Err, 5, 4000)] {
            for i in 0..n {
                expected.push((i as i64 * every, s, stream, format!("line {i}")));
            }
        }
        services.push((format!("svc{s}"), dir));
    }
    let q = Query {
        streams: vec![Stream::Out, Stream::Err],
        ..Default::default()
    };
    let mut m = merger(&services, &q).unwrap();
    let mut got = Vec::new();
    while let Some(e) = next_entry(&mut m).unwrap() {
        let s: usize = e.service.trim_start_matches("svc").parse().unwrap();
        let ms = (e.time - t("2026-11-25T00:00:00Z")).num_milliseconds();
        got.push((ms, s, e.stream, e.line.trim_start_matches(": ").to_string()));
    }
    expected.sort_by_key(|(ms, s, stream, _)| (*ms, *s, *stream));
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}
