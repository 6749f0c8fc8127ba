//! Log retrieval (DESIGN §3 logs): every line of `apps/logs/<service>/{out,error}.log` starts
//! with an RFC 3339 timestamp, so a time window is found by binary search on the live file
//! (only the window is read), rotated `<stream>-<date>[.<n>].log.gz` files and `archive/` are
//! chosen by the date in their name (files outside the window are not opened), and the two
//! streams are merged in time order. Pure parts (timestamps, severities, `--since`, the file
//! plan, the merge) are plain functions; reading sits in `read_*`.

pub mod files;
pub mod follow;
pub mod line;
pub mod read;
pub mod reader;
pub mod request;
pub mod scan;
pub mod slice;
pub mod ts;

pub use files::*;
pub use follow::*;
pub use line::*;
pub use read::*;
pub use reader::*;
pub use request::*;
pub use slice::*;

#[cfg(test)]
mod race_tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::logs::*;
    use chrono::DateTime;
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
