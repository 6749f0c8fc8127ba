//! `logs` as asked: the request validated before any file is opened, running it, printing the
//! entries (text or JSON lines) straight from the merged files.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::line::*;
use super::read::*;
use super::ts::nanos_of;

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

pub(super) fn usage(message: String, remediation: &str) -> crate::error::Error {
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
    let cat = crate::catalog::load(&req.workspace_root, &req.ecosystem, &req.ecosystem_file)?;
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

pub(super) fn read_error(req: &LogsRequest, source: std::io::Error) -> crate::error::Error {
    crate::error::Error::Io {
        op: crate::error::IoOp::Read,
        path: crate::layout::logs_root(&req.workspace_root),
        source,
    }
}

pub(super) fn read_all(
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
        let got = read_service(dir, name, q).map_err(|source| crate::error::Error::Io {
            op: crate::error::IoOp::Read,
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
pub(super) fn write_line(
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
    let mut tt = super::ts::TimeText::default();
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

#[cfg(test)]
mod request_tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::logs::*;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::path::Path;

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
