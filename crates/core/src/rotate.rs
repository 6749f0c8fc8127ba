//! Log rotation and retention: the plan, a pure function of the files a service has and `now`
//! (the runtime's `rotation` surveys the files and carries the plan out for the agent). Carrying
//! it out is: rename the live file to its rotated name
//! (the writer keeps appending to the renamed file), ask PM2 to reopen its logs (new lines go to
//! a fresh live file), and once no process holds the renamed file open, compress it to a
//! temporary name, rename that to `<stream>-<day>[.<n>].log.gz`, and remove the plain file. No
//! line is copied, truncated or lost, and a crash never leaves a partial `.gz` under a final name.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::logs::files::LogFile;
use crate::logs::line::Stream;

/// `pluginsConfig["@workspace/orchestrator"].logs`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogPolicy {
    /// Rotated files stay beside the live ones this long, then move to `archive/`.
    pub retain_days: i64,
    /// Archived files older than this are deleted.
    pub archive_days: i64,
    /// A live file larger than this is rotated at once.
    pub max_file_bytes: u64,
    /// A service's logs are kept under this (oldest archives go first; nothing newer than
    /// `retain_days` is ever deleted).
    pub max_service_bytes: u64,
}

impl Default for LogPolicy {
    fn default() -> Self {
        LogPolicy {
            retain_days: 14,
            archive_days: 90,
            max_file_bytes: 100 << 20,
            max_service_bytes: 2048 << 20,
        }
    }
}

/// Reads and validates the `logs` section (file and field named on error).
pub fn policy(section: Option<&Value>, file: &Path) -> Result<LogPolicy> {
    let mut p = LogPolicy::default();
    let Some(v) = section else { return Ok(p) };
    let key = |k: &str| format!("pluginsConfig[\"{}\"].logs.{k}", crate::names::PLUGIN_KEY);
    let bad = |k: &str, m: &str| Error::InvalidConfig {
        file: file.to_path_buf(),
        key: key(k),
        message: m.into(),
    };
    let Some(obj) = v.as_object() else {
        return Err(bad("", "must be an object"));
    };
    for (k, val) in obj {
        let num = val.as_f64().filter(|n| *n > 0.0 && n.is_finite());
        match k.as_str() {
            "retainDays" => {
                p.retain_days = num.ok_or_else(|| bad(k, "must be a number of days > 0"))? as i64
            }
            "archiveDays" => {
                p.archive_days = num.ok_or_else(|| bad(k, "must be a number of days > 0"))? as i64
            }
            "maxFileMiB" => {
                p.max_file_bytes =
                    (num.ok_or_else(|| bad(k, "must be a size in MiB > 0"))? * 1048576.0) as u64
            }
            "maxServiceMiB" => {
                p.max_service_bytes =
                    (num.ok_or_else(|| bad(k, "must be a size in MiB > 0"))? * 1048576.0) as u64
            }
            other => {
                return Err(bad(
                    other,
                    "unknown field (known: retainDays, archiveDays, maxFileMiB, maxServiceMiB)",
                ))
            }
        }
    }
    if p.archive_days < p.retain_days {
        return Err(bad(
            "archiveDays",
            "must be at least retainDays (archives are older than the online files)",
        ));
    }
    Ok(p)
}

/// One file as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub file: LogFile,
    pub size: u64,
    pub archived: bool,
    /// Live files: the times of their first and last lines.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileAction {
    /// Rename the live file of `stream` to `to` (a plain rotated name), then PM2 reopens.
    Rotate {
        from: PathBuf,
        to: PathBuf,
        why: &'static str,
    },
    /// Compress a plain rotated file once nobody writes to it.
    Compress {
        from: PathBuf,
    },
    Archive {
        from: PathBuf,
        to: PathBuf,
    },
    Delete {
        path: PathBuf,
        why: &'static str,
    },
}

/// `<stem>[-<instance>]-<day>[.<part>].log`: what `logs::classify` reads back.
fn rotated_name(
    dir: &Path,
    (stream, instance): (Stream, Option<u32>),
    day: NaiveDate,
    part: u32,
) -> PathBuf {
    let d = day.format("%Y-%m-%d");
    let id = instance.map(|i| format!("-{i}")).unwrap_or_default();
    if part == 0 {
        dir.join(format!("{}{id}-{d}.log", stream.stem()))
    } else {
        dir.join(format!("{}{id}-{d}.{part}.log", stream.stem()))
    }
}

/// Pure: what to do in one service's log directory at `now`.
pub fn plan(dir: &Path, files: &[Seen], now: DateTime<Utc>, p: &LogPolicy) -> Vec<FileAction> {
    let today = now.date_naive();
    let mut out = Vec::new();
    for s in files.iter().filter(|s| s.file.day.is_none() && !s.archived) {
        let (Some(first), Some(last)) = (s.first, s.last) else {
            continue;
        };
        let why = if first.date_naive() < today {
            "daily"
        } else if s.size > p.max_file_bytes {
            "size"
        } else {
            continue;
        };
        // Named for the day of its last line; the next free part of that day.
        let day = last.date_naive();
        let taken = |part: u32| {
            files.iter().any(|o| {
                o.file.channel() == s.file.channel()
                    && o.file.day == Some(day)
                    && o.file.part == part
            })
        };
        let part = (0..).find(|n| !taken(*n)).unwrap_or(0);
        out.push(FileAction::Rotate {
            from: s.file.path.clone(),
            to: rotated_name(dir, s.file.channel(), day, part),
            why,
        });
    }
    for s in files.iter().filter(|s| s.file.day.is_some() && !s.file.gz) {
        let gz_exists = files.iter().any(|o| {
            o.file.gz
                && o.file.channel() == s.file.channel()
                && o.file.day == s.file.day
                && o.file.part == s.file.part
        });
        if !gz_exists {
            out.push(FileAction::Compress {
                from: s.file.path.clone(),
            });
        }
    }
    let age = |s: &Seen| s.file.day.map(|d| (today - d).num_days()).unwrap_or(0);
    for s in files
        .iter()
        .filter(|s| s.file.gz && !s.archived && age(s) > p.retain_days)
    {
        let name = s
            .file
            .path
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_default();
        out.push(FileAction::Archive {
            from: s.file.path.clone(),
            to: dir.join("archive").join(name),
        });
    }
    for s in files
        .iter()
        .filter(|s| s.file.gz && s.archived && age(s) > p.archive_days)
    {
        out.push(FileAction::Delete {
            path: s.file.path.clone(),
            why: "older than archiveDays",
        });
    }
    // The disk cap: oldest first, never a file newer than the online retention, never live ones.
    let deleted: Vec<&PathBuf> = out
        .iter()
        .filter_map(|a| match a {
            FileAction::Delete { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    let mut total: u64 = files
        .iter()
        .filter(|s| !deleted.contains(&&s.file.path))
        .map(|s| s.size)
        .sum();
    let mut old: Vec<&Seen> = files
        .iter()
        .filter(|s| s.file.gz && age(s) > p.retain_days && !deleted.contains(&&s.file.path))
        .collect();
    old.sort_by_key(|s| (s.file.day, s.file.part));
    for s in old {
        if total <= p.max_service_bytes {
            break;
        }
        total -= s.size;
        out.push(FileAction::Delete {
            path: s.file.path.clone(),
            why: "over maxServiceMiB",
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn seen(
        name: &str,
        size: u64,
        archived: bool,
        first: Option<&str>,
        last: Option<&str>,
    ) -> Seen {
        let dir = if archived { "/l/archive" } else { "/l" };
        Seen {
            file: crate::logs::files::classify(&Path::new(dir).join(name)).unwrap(),
            size,
            archived,
            first: first.map(t),
            last: last.map(t),
        }
    }

    fn p() -> LogPolicy {
        LogPolicy {
            retain_days: 14,
            archive_days: 90,
            max_file_bytes: 1000,
            max_service_bytes: 1 << 30,
        }
    }

    #[test]
    fn daily_and_size_rotation_name_the_day_of_the_last_line_and_the_next_part() {
        let now = t("2026-11-26T00:00:03Z");
        // Yesterday's live file: rotated at the first look after midnight.
        let files = [seen(
            "out.log",
            10,
            false,
            Some("2026-11-25T00:00:01Z"),
            Some("2026-11-25T23:59:59Z"),
        )];
        assert_eq!(
            plan(Path::new("/l"), &files, now, &p()),
            vec![FileAction::Rotate {
                from: "/l/out.log".into(),
                to: "/l/out-2026-11-25.log".into(),
                why: "daily"
            }]
        );
        // Today's file past the size cap, with two parts of today already: part 2.
        let now = t("2026-11-26T15:00:00Z");
        let files = [
            seen(
                "error.log",
                5000,
                false,
                Some("2026-11-26T10:00:00Z"),
                Some("2026-11-26T14:59:00Z"),
            ),
            seen("error-2026-11-26.log.gz", 100, false, None, None),
            seen("error-2026-11-26.1.log.gz", 100, false, None, None),
        ];
        assert_eq!(
            plan(Path::new("/l"), &files, now, &p()),
            vec![FileAction::Rotate {
                from: "/l/error.log".into(),
                to: "/l/error-2026-11-26.2.log".into(),
                why: "size"
            }]
        );
        // One file per cluster instance: each rotates on its own, the part counted per instance.
        let files = [
            seen(
                "out-3.log",
                5000,
                false,
                Some("2026-11-26T10:00:00Z"),
                Some("2026-11-26T14:59:00Z"),
            ),
            seen("out-2026-11-26.log.gz", 100, false, None, None),
            seen("out-4-2026-11-26.log.gz", 100, false, None, None),
        ];
        assert_eq!(
            plan(Path::new("/l"), &files, now, &p()),
            vec![FileAction::Rotate {
                from: "/l/out-3.log".into(),
                to: "/l/out-3-2026-11-26.log".into(),
                why: "size"
            }]
        );
        // Small, today's: nothing. Empty: nothing.
        let files = [
            seen(
                "out.log",
                10,
                false,
                Some("2026-11-26T10:00:00Z"),
                Some("2026-11-26T11:00:00Z"),
            ),
            seen("error.log", 0, false, None, None),
        ];
        assert!(plan(Path::new("/l"), &files, now, &p()).is_empty());
    }

    #[test]
    fn plain_rotated_files_are_compressed_unless_their_gz_exists() {
        let now = t("2026-11-26T12:00:00Z");
        let files = [
            seen("out-2026-11-25.log", 10, false, None, None),
            seen("error-2026-11-25.log", 10, false, None, None),
            seen("error-2026-11-25.log.gz", 3, false, None, None),
        ];
        assert_eq!(
            plan(Path::new("/l"), &files, now, &p()),
            vec![FileAction::Compress {
                from: "/l/out-2026-11-25.log".into()
            }]
        );
    }

    #[test]
    fn retention_archives_after_14_days_and_deletes_after_90() {
        let now = t("2026-11-26T12:00:00Z");
        let files = [
            seen("out-2026-11-12.log.gz", 10, false, None, None), // 14 days: stays
            seen("out-2026-11-11.log.gz", 10, false, None, None), // 15 days: archived
            seen("out-2026-08-28.log.gz", 10, true, None, None),  // 90 days: stays
            seen("out-2026-08-27.log.gz", 10, true, None, None),  // 91 days: deleted
        ];
        assert_eq!(
            plan(Path::new("/l"), &files, now, &p()),
            vec![
                FileAction::Archive {
                    from: "/l/out-2026-11-11.log.gz".into(),
                    to: "/l/archive/out-2026-11-11.log.gz".into()
                },
                FileAction::Delete {
                    path: "/l/archive/out-2026-08-27.log.gz".into(),
                    why: "older than archiveDays"
                },
            ]
        );
    }

    #[test]
    fn the_disk_cap_deletes_oldest_first_and_never_within_retention() {
        let now = t("2026-11-26T12:00:00Z");
        let cap = LogPolicy {
            max_service_bytes: 250,
            ..p()
        };
        let files = [
            seen(
                "out.log",
                100,
                false,
                Some("2026-11-26T10:00:00Z"),
                Some("2026-11-26T11:00:00Z"),
            ),
            seen("out-2026-11-20.log.gz", 100, false, None, None),
            seen("out-2026-10-01.log.gz", 100, true, None, None),
            seen("out-2026-10-02.log.gz", 100, true, None, None),
        ];
        let a = plan(Path::new("/l"), &files, now, &cap);
        assert_eq!(
            a,
            vec![
                FileAction::Delete {
                    path: "/l/archive/out-2026-10-01.log.gz".into(),
                    why: "over maxServiceMiB"
                },
                FileAction::Delete {
                    path: "/l/archive/out-2026-10-02.log.gz".into(),
                    why: "over maxServiceMiB"
                },
            ]
        );
        // A cap below what retention protects: the protected files stay anyway.
        let tiny = LogPolicy {
            max_service_bytes: 1,
            ..p()
        };
        let a = plan(Path::new("/l"), &files, now, &tiny);
        assert!(a.iter().all(|x| !matches!(x, FileAction::Delete { path, .. } if path.ends_with("out-2026-11-20.log.gz") || path.ends_with("out.log"))));
    }

    #[test]
    fn the_logs_section_is_validated() {
        let f = Path::new("/ws/nx.json");
        let ok = policy(
            Some(&serde_json::json!({"retainDays": 7, "maxFileMiB": 0.5})),
            f,
        )
        .unwrap();
        assert_eq!((ok.retain_days, ok.max_file_bytes), (7, 524288));
        for bad in [
            serde_json::json!({"retainDays": 0}),
            serde_json::json!({"maxFileMiB": "big"}),
            serde_json::json!({"keep": 1}),
            serde_json::json!({"retainDays": 30, "archiveDays": 10}),
        ] {
            let e = policy(Some(&bad), f).unwrap_err();
            assert!(
                e.message().contains("/ws/nx.json") && e.message().contains(".logs."),
                "{}",
                e.message()
            );
        }
    }
}
