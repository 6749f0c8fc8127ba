//! CPU and memory per service (issue 19): the pure part. A process's or a container's CPU time
//! only grows, so a CPU percentage needs two readings. `status` reads each process (`/proc`,
//! through sysinfo) and each container (its cgroup's files, as the engine's stats do) once, and
//! keeps the reading
//! in `.orchestrator/usage.json`; the next `status` — or the dashboard's next refresh — measures
//! the CPU over the time between the two, as `pm2 ls` does between two of its looks. Without an
//! earlier reading of the same process (its first look, or one older than [`WINDOW_MAX_MS`]),
//! the CPU is the average since the process started, as `ps` shows it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An earlier reading older than this is not used: the average since it would hide the present.
pub const WINDOW_MAX_MS: i64 = 60_000;
/// Two readings closer than this are too close to measure (the kernel counts CPU time in ticks
/// of 10 ms): the earlier one is kept for the next look.
pub const WINDOW_MIN_MS: i64 = 200;

/// One reading of a process or a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// CPU time used since it started, in ms (all its threads; a container's cgroup).
    pub cpu_ms: f64,
    /// When it was read (ms since the epoch).
    pub at_ms: i64,
    /// When the process or container started (ms since the epoch): a pid reused by another
    /// process is another key, and the average since the start needs it.
    pub started_ms: i64,
    /// Resident memory (a process's RSS; a container's usage without its page cache, as
    /// `docker stats` shows it).
    pub memory_bytes: u64,
}

/// The readings `status` keeps between its looks: key (`pid:<n>`, `container:<id>`) → reading.
pub type Readings = BTreeMap<String, Reading>;

/// Pure: the CPU percentage (100 = one core) of `now`, against `before` when that is a reading
/// of the same process between [`WINDOW_MIN_MS`] and [`WINDOW_MAX_MS`] earlier, else the
/// average since the start. `None` when no time has passed at all.
pub fn cpu_percent(before: Option<&Reading>, now: &Reading) -> Option<f64> {
    let comparable = before.filter(|b| {
        b.started_ms == now.started_ms
            && (WINDOW_MIN_MS..=WINDOW_MAX_MS).contains(&(now.at_ms - b.at_ms))
            && b.cpu_ms <= now.cpu_ms
    });
    let (cpu, span) = match comparable {
        Some(b) => (now.cpu_ms - b.cpu_ms, now.at_ms - b.at_ms),
        None => (now.cpu_ms, now.at_ms - now.started_ms),
    };
    (span > 0).then(|| round1(cpu / span as f64 * 100.0))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Pure: what is kept for the next look: the new readings, plus an earlier reading of the same
/// process that was too recent to measure against (so a quick second look still has one).
pub fn keep(before: &Readings, now: &Readings) -> Readings {
    let mut out = Readings::new();
    for (k, r) in now {
        let keep_old = before.get(k).filter(|b| {
            b.started_ms == r.started_ms && r.at_ms - b.at_ms < WINDOW_MIN_MS && r.at_ms >= b.at_ms
        });
        out.insert(k.clone(), keep_old.unwrap_or(r).clone());
    }
    out
}

/// A service's (or one instance's) CPU and memory: the sum over its processes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
}

impl Usage {
    /// Pure: the sum of several (a cluster's workers): `None` only when none was measured.
    pub fn sum(parts: &[Usage]) -> Usage {
        let add_f = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(round1(x + y)),
            (x, None) | (None, x) => x,
        };
        let add_u = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(x), Some(y)) => Some(x + y),
            (x, None) | (None, x) => x,
        };
        parts.iter().fold(Usage::default(), |acc, p| Usage {
            cpu_percent: add_f(acc.cpu_percent, p.cpu_percent),
            memory_bytes: add_u(acc.memory_bytes, p.memory_bytes),
        })
    }

    /// Pure: one reading as a usage, against the earlier readings.
    pub fn of(key: &str, now: &Reading, before: &Readings) -> Usage {
        Usage {
            cpu_percent: cpu_percent(before.get(key), now),
            memory_bytes: Some(now.memory_bytes),
        }
    }
}

/// Pure: `0.3%`, `112.5%` — the table's CPU cell.
pub fn human_cpu(p: f64) -> String {
    format!("{p:.1}%")
}

/// Pure: `512K`, `42.1M`, `1.2G` (binary units, as `pm2 ls` and `docker stats` show them).
pub fn human_bytes(b: u64) -> String {
    const K: f64 = 1024.0;
    let b = b as f64;
    if b < K * K {
        format!("{:.0}K", b / K)
    } else if b < K * K * K {
        format!("{:.1}M", b / (K * K))
    } else {
        format!("{:.1}G", b / (K * K * K))
    }
}

/// Pure: a container's memory as `docker stats` shows it: the cgroup's usage without the
/// inactive page cache (`total_inactive_file` under cgroup v1, `inactive_file` under v2), each
/// only when smaller than the usage — the docker CLI's own rule.
pub fn container_memory(usage: u64, stats: &BTreeMap<String, u64>) -> u64 {
    let cache = |k: &str| stats.get(k).copied().filter(|v| *v < usage);
    match cache("total_inactive_file").or_else(|| cache("inactive_file")) {
        Some(c) => usage - c,
        None => usage,
    }
}

/// Where a process's cgroup keeps its CPU time and memory, from `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CgroupPaths {
    /// cgroup v1: the path in the `cpuacct` hierarchy, and in the `memory` one.
    pub cpuacct: Option<String>,
    pub memory: Option<String>,
    /// cgroup v2 (the unified hierarchy `0::<path>`), used when no v1 controller is listed.
    pub unified: Option<String>,
}

/// Pure: the paths of `/proc/<pid>/cgroup` (lines `<id>:<controllers>:<path>`). A hybrid host
/// lists both; its controllers are in the v1 hierarchies.
pub fn cgroup_paths(text: &str) -> CgroupPaths {
    let mut p = CgroupPaths::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let has = |c: &str| controllers.split(',').any(|x| x == c);
        if has("cpuacct") {
            p.cpuacct = Some(path.to_string());
        }
        if has("memory") {
            p.memory = Some(path.to_string());
        }
        if id == "0" && controllers.is_empty() {
            p.unified = Some(path.to_string());
        }
    }
    p
}

/// Pure: `key value` lines (`memory.stat`, `cpu.stat`) as a map.
pub fn key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cpu_ms: f64, at_ms: i64, started_ms: i64) -> Reading {
        Reading {
            cpu_ms,
            at_ms,
            started_ms,
            memory_bytes: 1 << 20,
        }
    }

    #[test]
    fn cpu_is_measured_between_two_looks_at_the_same_process() {
        let before = r(1_000.0, 10_000, 0);
        // 500 ms of CPU in 1 s: half a core.
        assert_eq!(
            cpu_percent(Some(&before), &r(1_500.0, 11_000, 0)),
            Some(50.0)
        );
        // Two cores busy for 2 s.
        assert_eq!(
            cpu_percent(Some(&before), &r(5_000.0, 12_000, 0)),
            Some(200.0)
        );
    }

    #[test]
    fn without_a_usable_earlier_look_it_is_the_average_since_the_start() {
        let now = r(1_000.0, 20_000, 10_000); // 1 s of CPU in 10 s of life
        assert_eq!(cpu_percent(None, &now), Some(10.0));
        let other_process = r(0.0, 19_000, 5_000); // the pid was reused
        assert_eq!(cpu_percent(Some(&other_process), &now), Some(10.0));
        let too_old = r(0.0, 20_000 - WINDOW_MAX_MS - 1, 10_000);
        assert_eq!(cpu_percent(Some(&too_old), &now), Some(10.0));
        let too_close = r(990.0, 19_950, 10_000);
        assert_eq!(cpu_percent(Some(&too_close), &now), Some(10.0));
        assert_eq!(cpu_percent(None, &r(0.0, 5, 5)), None, "no time has passed");
    }

    #[test]
    fn a_look_too_soon_after_the_last_keeps_the_earlier_reading() {
        let before: Readings = [("pid:7".to_string(), r(100.0, 1_000, 0))].into();
        let soon: Readings = [("pid:7".to_string(), r(110.0, 1_100, 0))].into();
        assert_eq!(keep(&before, &soon)["pid:7"].at_ms, 1_000);
        let later: Readings = [("pid:7".to_string(), r(300.0, 2_000, 0))].into();
        assert_eq!(keep(&before, &later)["pid:7"].at_ms, 2_000);
        let gone: Readings = Readings::new();
        assert!(
            keep(&before, &gone).is_empty(),
            "what no longer runs is dropped"
        );
    }

    #[test]
    fn a_cluster_sums_its_workers() {
        let a = Usage {
            cpu_percent: Some(1.25),
            memory_bytes: Some(100),
        };
        let b = Usage {
            cpu_percent: Some(2.5),
            memory_bytes: None,
        };
        assert_eq!(
            Usage::sum(&[a, b]),
            Usage {
                cpu_percent: Some(3.8),
                memory_bytes: Some(100)
            }
        );
        assert_eq!(Usage::sum(&[]), Usage::default());
    }

    #[test]
    fn figures_read_like_pm2s_and_dockers() {
        assert_eq!(human_cpu(0.0), "0.0%");
        assert_eq!(human_cpu(112.46), "112.5%");
        assert_eq!(human_bytes(512 * 1024), "512K");
        assert_eq!(human_bytes(44_145_049), "42.1M");
        assert_eq!(human_bytes(3 << 30), "3.0G");
        let stats: BTreeMap<String, u64> = [("inactive_file".to_string(), 4096)].into();
        assert_eq!(container_memory(10_000, &stats), 5_904);
        let v1: BTreeMap<String, u64> = [
            ("inactive_file".to_string(), 10),
            ("total_inactive_file".to_string(), 1000),
        ]
        .into();
        assert_eq!(container_memory(10_000, &v1), 9_000, "v1: the total");
        assert_eq!(
            container_memory(10, &v1),
            10,
            "a cache not below the usage is not taken"
        );
    }

    #[test]
    fn a_containers_cgroup_is_found_on_v1_hybrid_and_v2_hosts() {
        let hybrid = "9:name=systemd:/docker/abc\n4:memory:/docker/abc\n2:cpuacct:/docker/abc\n1:cpu:/docker/abc\n0::/docker/abc\n";
        let p = cgroup_paths(hybrid);
        assert_eq!(p.cpuacct.as_deref(), Some("/docker/abc"));
        assert_eq!(p.memory.as_deref(), Some("/docker/abc"));
        let combined = "5:cpu,cpuacct:/system.slice/docker-abc.scope\n3:memory:/system.slice/docker-abc.scope\n";
        assert_eq!(
            cgroup_paths(combined).cpuacct.as_deref(),
            Some("/system.slice/docker-abc.scope")
        );
        let v2 = cgroup_paths("0::/system.slice/docker-abc.scope\n");
        assert_eq!(
            (v2.cpuacct, v2.memory, v2.unified.as_deref()),
            (None, None, Some("/system.slice/docker-abc.scope"))
        );
        assert_eq!(cgroup_paths("garbage"), CgroupPaths::default());
        let stat = key_values("usage_usec 1234\nuser_usec 1000\nbad line x\n");
        assert_eq!(stat["usage_usec"], 1234);
        assert_eq!(stat.len(), 2);
    }
}
