//! Property tests over the parsers that read user input or files we do not control: the env-file
//! parser, compose interpolation, the log-line timestamp parser and `--since`. Arbitrary input
//! must give an answer or a clear error, never a panic; valid timestamps must parse to what
//! chrono says. Bounded: proptest's default 256 cases each (plus shaped inputs) in `npm test`,
//! 4096 each in CI (`.ci/run` sets `PROPTEST_CASES`).
//! An integration test of the core crate: the core links no napi, so a test binary links.

use orchestrator_core::logs::ts;
use orchestrator_core::{compose, envfile, logs};
use proptest::prelude::*;

proptest! {
    #[test]
    fn env_files_of_any_text(text in ".{0,400}", bom in any::<bool>(), crlf in any::<bool>()) {
        let mut t = if crlf { text.replace('\n', "\r\n") } else { text };
        if bom { t.insert(0, '\u{feff}'); }
        let _ = envfile::parse_env_text(&t, std::path::Path::new("/ws/config/env/x.env"));
    }

    #[test]
    fn env_lines_shaped_like_dotenv(lines in proptest::collection::vec("(export )?[A-Za-z_][A-Za-z0-9_]{0,8}=(\"[^\"]{0,10}\"?|'[^']{0,10}'?|[^\\n]{0,12})", 0..12)) {
        let _ = envfile::parse_env_text(&lines.join("\n"), std::path::Path::new("/x.env"));
    }

    #[test]
    fn compose_interpolation_of_any_text(s in "[a-z$:{}?+\\-_A-Z0-9 ]{0,60}") {
        let lookup = |k: &str| if k.starts_with('A') { Some(format!("v{k}")) } else { None };
        let _ = compose::interpolate(&s, &lookup);
    }

    #[test]
    fn timestamps_of_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = ts::parse_ts_bytes(&b);
        if let Ok(s) = std::str::from_utf8(&b) { let _ = logs::parse_ts(s); }
    }

    #[test]
    fn timestamps_shaped_like_rfc3339(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?.{0,5}") {
        let _ = ts::parse_ts_bytes(s.as_bytes());
        let _ = logs::parse_ts(&s);
    }

    #[test]
    fn valid_timestamps_parse_to_what_chrono_says(secs in 0i64..7_000_000_000, ms in 0u32..1000, off_min in -720i32..=840) {
        let off = chrono::FixedOffset::east_opt(off_min * 60).unwrap();
        let t = chrono::DateTime::from_timestamp(secs, ms * 1_000_000).unwrap().with_timezone(&off);
        let text = format!("{}: a line", t.to_rfc3339_opts(chrono::SecondsFormat::Millis, off_min == 0));
        let (nanos, rest) = ts::parse_ts_bytes(text.as_bytes()).unwrap();
        prop_assert_eq!(nanos, secs * 1_000_000_000 + ms as i64 * 1_000_000);
        prop_assert_eq!(&text[rest..], "a line");
    }

    #[test]
    fn since_of_any_text(s in ".{0,40}") {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let _ = logs::parse_instant(&s, now);
    }

    #[test]
    fn since_shaped_like_durations(n in 0u64..u64::MAX, unit in "(ms|s|m|h|d|w|y|min|hours|days)") {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let _ = logs::parse_instant(&format!("{n}{unit}"), now);
    }
}
