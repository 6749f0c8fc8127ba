//! CPU and memory of the services, read at the edges: processes from `/proc` through sysinfo,
//! containers from their cgroup's files (the engine's stats API for a remote engine). The arithmetic (a CPU percentage from two
//! readings, sums, the readings kept between looks) is the pure `resources`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orchestrator_core::resources::{self, Reading, Readings, Usage};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// The key of a process's readings (`pid:<n>`).
pub fn pid_key(pid: u32) -> String {
    format!("pid:{pid}")
}

/// The key of a container's readings (`container:<id>`).
pub fn container_key(id: &str) -> String {
    format!("container:{id}")
}

/// One reading of each process (CPU time, RSS, start time), from `/proc` (blocking: small reads
/// of a few files per process). A process that is gone has no reading.
#[tracing::instrument(level = "debug", skip_all, fields(processes = pids.len()))]
pub fn read_processes(pids: &[u32], at: DateTime<Utc>) -> Readings {
    if pids.is_empty() {
        return Readings::new();
    }
    let wanted: Vec<Pid> = pids.iter().map(|p| Pid::from_u32(*p)).collect();
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&wanted),
        true,
        ProcessRefreshKind::nothing().with_cpu().with_memory(),
    );
    pids.iter()
        .filter_map(|pid| {
            let p = sys.process(Pid::from_u32(*pid))?;
            Some((
                pid_key(*pid),
                Reading {
                    cpu_ms: p.accumulated_cpu_time() as f64,
                    at_ms: at.timestamp_millis(),
                    started_ms: p.start_time() as i64 * 1000,
                    memory_bytes: p.memory(),
                },
            ))
        })
        .collect()
}

/// A running container, for its reading: its id, its first process's host pid, when it started.
#[derive(Debug, Clone)]
pub struct RunningContainer {
    pub id: String,
    pub pid: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
}

/// One reading of a container from its cgroup's files, found through its first process
/// (`/proc/<pid>/cgroup`): the files the engine's stats read, under cgroup v1 or v2. `None` when
/// they are not on this host (a remote engine) or not readable.
pub fn read_cgroup(pid: u32) -> Option<(f64, u64)> {
    let paths =
        resources::cgroup_paths(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?);
    let read = |p: String| std::fs::read_to_string(p).ok();
    let base = "/sys/fs/cgroup";
    let (cpu_ms, usage, stat) = match (&paths.cpuacct, &paths.memory, &paths.unified) {
        (Some(cpu), Some(mem), _) => {
            let ns = ["cpuacct", "cpu,cpuacct"]
                .iter()
                .find_map(|h| read(format!("{base}/{h}{cpu}/cpuacct.usage")))?;
            let ms = ns.trim().parse::<f64>().ok()? / 1e6;
            let usage = read(format!("{base}/memory{mem}/memory.usage_in_bytes"))?;
            let stat = read(format!("{base}/memory{mem}/memory.stat")).unwrap_or_default();
            (ms, usage, stat)
        }
        (None, None, Some(dir)) => {
            let cpu = resources::key_values(&read(format!("{base}{dir}/cpu.stat"))?);
            let ms = *cpu.get("usage_usec")? as f64 / 1e3;
            let usage = read(format!("{base}{dir}/memory.current"))?;
            let stat = read(format!("{base}{dir}/memory.stat")).unwrap_or_default();
            (ms, usage, stat)
        }
        _ => return None,
    };
    let usage: u64 = usage.trim().parse().ok()?;
    Some((
        cpu_ms,
        resources::container_memory(usage, &resources::key_values(&stat)),
    ))
}

/// One reading of each running container: from its cgroup on this host, else (a remote engine)
/// from the engine's stats API, all at once. A container that cannot be read has no reading.
///
/// The cgroup comes first because the engine's answer is slow on the engines seen here: Docker
/// 20.10 answers a one-shot stats request for a container it already collects for only at its
/// next 1 s collection tick (measured: the first call 10 ms, each next one ~700 ms), which
/// alone would make `status` several times slower than `pm2 jlist`.
#[tracing::instrument(level = "debug", skip_all, fields(containers = containers.len()))]
pub async fn read_containers(containers: &[RunningContainer]) -> Readings {
    if containers.is_empty() {
        return Readings::new();
    }
    let mut out = Readings::new();
    let mut remote = Vec::new();
    for c in containers {
        match c.pid.and_then(read_cgroup) {
            Some(u) => {
                out.insert(container_key(&c.id), reading_of(c, u, Utc::now()));
            }
            None => remote.push(c),
        }
    }
    if remote.is_empty() {
        return out;
    }
    let engine = match crate::docker::Engine::connect_pinned() {
        Ok(e) => e,
        Err(_) => match crate::deps::connect().await {
            Ok(e) => e,
            Err(_) => return out,
        },
    };
    let engine = &engine;
    let reads = remote.into_iter().map(|c| async move {
        match engine.usage(&c.id).await {
            Ok(u) => Some((container_key(&c.id), reading_of(c, u, Utc::now()))),
            Err(e) => {
                tracing::debug!(container = %c.id, error = %e, "no stats");
                None
            }
        }
    });
    out.extend(
        futures_util::future::join_all(reads)
            .await
            .into_iter()
            .flatten(),
    );
    out
}

fn reading_of(
    c: &RunningContainer,
    (cpu_ms, memory_bytes): (f64, u64),
    at: DateTime<Utc>,
) -> Reading {
    Reading {
        cpu_ms,
        at_ms: at.timestamp_millis(),
        started_ms: c.started_at.unwrap_or(at).timestamp_millis(),
        memory_bytes,
    }
}

/// The usage of every reading against the readings the previous look kept (`before`), which
/// then holds these (`resources::keep`). Without earlier readings the CPU is an average since
/// the start.
pub fn measure(before: &mut Readings, now: &Readings) -> BTreeMap<String, Usage> {
    let usage = now
        .iter()
        .map(|(k, r)| (k.clone(), Usage::of(k, r, before)))
        .collect();
    *before = resources::keep(before, now);
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_with_its_cpu_time_and_memory() {
        // Burn some CPU so the reading is not zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let me = std::process::id();
        let r = read_processes(&[me, u32::MAX - 1], Utc::now());
        let mine = &r[&pid_key(me)];
        assert!(mine.cpu_ms > 0.0, "{mine:?}");
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        let rss = rss_kib * 1024;
        let diff = mine.memory_bytes.abs_diff(rss);
        assert!(
            diff < rss / 5,
            "sysinfo {} vs /proc {rss}",
            mine.memory_bytes
        );
        assert!(mine.started_ms > 0 && mine.started_ms <= Utc::now().timestamp_millis());
        assert_eq!(r.len(), 1, "a pid that does not exist has no reading");
    }

    #[test]
    fn a_process_that_is_gone_has_no_cgroup_reading() {
        assert_eq!(read_cgroup(u32::MAX - 1), None);
    }

    #[test]
    fn the_second_look_measures_against_the_first_and_a_broken_file_is_no_error() {
        let root = std::env::temp_dir().join(format!("orch-usage-{}", std::process::id()));
        std::fs::create_dir_all(root.join(".orchestrator")).unwrap();
        let at = |ms: i64, cpu: f64| Reading {
            cpu_ms: cpu,
            at_ms: ms,
            started_ms: 0,
            memory_bytes: 7,
        };
        let first: Readings = [("pid:1".to_string(), at(10_000, 1_000.0))].into();
        // No earlier look: the average since the start (1 s of CPU in 10 s).
        let mut m = crate::observe::Memory::load(&root);
        assert_eq!(
            measure(&mut m.readings, &first)["pid:1"].cpu_percent,
            Some(10.0)
        );
        m.save(&root, &Default::default());
        // The next run reads what this one kept.
        let second: Readings = [("pid:1".to_string(), at(12_000, 2_000.0))].into();
        let mut m = crate::observe::Memory::load(&root);
        assert_eq!(
            measure(&mut m.readings, &second)["pid:1"].cpu_percent,
            Some(50.0)
        );
        std::fs::write(orchestrator_core::layout::usage_file(&root), "{ broken").unwrap();
        let mut m = crate::observe::Memory::load(&root);
        let u = measure(&mut m.readings, &second);
        assert_eq!(u["pid:1"].memory_bytes, Some(7));
        let _ = std::fs::remove_dir_all(&root);
    }
}
