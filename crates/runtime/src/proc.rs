//! One process, as `/proc` tells it: when it started and whether it still belongs to a
//! container. Below `docker` (a status trusts a container's kept first process) and `usage`.

/// The start of a process in clock ticks since boot (`/proc/<pid>/stat`, field 22); `None` when
/// it is gone. With the pid, it names one process: the kernel never gives both to another.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid`, started at `start` (ticks), is still a process of container `id` (its cgroup
/// path names the container, under the engine's cgroupfs and systemd drivers alike). A remote
/// engine's containers are never found here, and so are always inspected.
pub fn same_process(pid: u32, start: u64, id: &str) -> bool {
    !id.is_empty()
        && process_start(pid) == Some(start)
        && std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_named_by_its_pid_and_start() {
        let me = std::process::id();
        let start = process_start(me).expect("this process has a start");
        assert_eq!(process_start(me), Some(start));
        assert_eq!(process_start(u32::MAX - 1), None);
        // Not a container's process: no container id is in this process's cgroup path.
        let id = "f".repeat(64);
        assert!(!same_process(me, start, &id));
        assert!(!same_process(me, start + 1, ""));
        // The cgroup path names what it names: this process's own path stands in for an id.
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let path = own
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .unwrap();
        if path.len() > 1 {
            assert!(same_process(me, start, path));
            assert!(
                !same_process(me, start + 1, path),
                "another start is another process"
            );
        }
    }
}
