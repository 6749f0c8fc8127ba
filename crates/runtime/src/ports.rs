//! Who holds a TCP port: listening sockets from `/proc/net/tcp{,6}` matched to the process whose
//! fd table holds the socket's inode. The matching is a pure function over that data.

pub use crate::error::PortHolder;

/// A listening socket: port and socket inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub inode: u64,
}

/// A process and the socket inodes in its fd table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSockets {
    pub pid: u32,
    pub command: String,
    pub inodes: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortState {
    Free,
    /// Bound, holder named where this user may read its fd table.
    Held(Option<PortHolder>),
}

/// Pure: is `port` listened on, and by whom. The lowest pid wins when a socket is shared
/// (a parent that forked its workers), since that is the process to stop.
pub fn port_state(port: u16, listeners: &[Listener], processes: &[ProcessSockets]) -> PortState {
    let inodes: Vec<u64> = listeners
        .iter()
        .filter(|l| l.port == port)
        .map(|l| l.inode)
        .collect();
    if inodes.is_empty() {
        return PortState::Free;
    }
    let holder = processes
        .iter()
        .filter(|p| p.inodes.iter().any(|i| inodes.contains(i)))
        .min_by_key(|p| p.pid)
        .map(|p| PortHolder {
            pid: p.pid,
            command: p.command.clone(),
        });
    PortState::Held(holder)
}

/// Pure: like [`port_state`], but a socket that one of `ours` holds (the service being
/// replaced, its workers, PM2's cluster master) is no conflict. Each socket of the port counts
/// on its own: an IPv6 socket of another process on the same port is still a conflict.
pub fn port_state_except(
    port: u16,
    listeners: &[Listener],
    processes: &[ProcessSockets],
    ours: &std::collections::BTreeSet<u32>,
) -> PortState {
    for l in listeners.iter().filter(|l| l.port == port) {
        let holders: Vec<&ProcessSockets> = processes
            .iter()
            .filter(|p| p.inodes.contains(&l.inode))
            .collect();
        if holders.iter().any(|p| ours.contains(&p.pid)) {
            continue;
        }
        return PortState::Held(holders.iter().min_by_key(|p| p.pid).map(|p| PortHolder {
            pid: p.pid,
            command: p.command.clone(),
        }));
    }
    PortState::Free
}

/// Pure: `pids` and every process descended from them, given (pid, parent pid) pairs.
pub fn with_descendants(pids: &[u32], family: &[(u32, u32)]) -> std::collections::BTreeSet<u32> {
    let mut out: std::collections::BTreeSet<u32> = pids.iter().copied().collect();
    loop {
        let before = out.len();
        for (pid, parent) in family {
            if out.contains(parent) {
                out.insert(*pid);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// I/O edge: (pid, parent pid) of every process.
pub fn read_parents() -> Vec<(u32, u32)> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.flatten()
        .filter_map(|p| p.stat().ok())
        .map(|s| (s.pid as u32, s.ppid as u32))
        .collect()
}

/// I/O edge: every TCP listener (IPv4 and IPv6) on this host's network namespace.
pub fn read_listeners() -> Vec<Listener> {
    let mut out = Vec::new();
    let v4 = procfs::net::tcp().unwrap_or_default();
    let v6 = procfs::net::tcp6().unwrap_or_default();
    for e in v4.into_iter().chain(v6) {
        if e.state == procfs::net::TcpState::Listen {
            out.push(Listener {
                port: e.local_address.port(),
                inode: e.inode,
            });
        }
    }
    out
}

/// I/O edge: the socket inodes of every process this user can inspect.
pub fn read_process_sockets() -> Vec<ProcessSockets> {
    let mut out = Vec::new();
    let Ok(all) = procfs::process::all_processes() else {
        return out;
    };
    for proc in all.flatten() {
        let Ok(fds) = proc.fd() else { continue };
        let inodes: Vec<u64> = fds
            .flatten()
            .filter_map(|fd| match fd.target {
                procfs::process::FDTarget::Socket(inode) => Some(inode),
                _ => None,
            })
            .collect();
        if inodes.is_empty() {
            continue;
        }
        let command = proc
            .cmdline()
            .ok()
            .filter(|c| !c.is_empty())
            .map(|c| c.join(" "))
            .or_else(|| proc.stat().ok().map(|s| s.comm))
            .unwrap_or_default();
        out.push(ProcessSockets {
            pid: proc.pid as u32,
            command: shorten(&command),
            inodes,
        });
    }
    out
}

fn shorten(command: &str) -> String {
    const MAX: usize = 160;
    if command.chars().count() <= MAX {
        command.to_string()
    } else {
        let cut: String = command.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// Looks up several ports with one scan of `/proc`, only when one of them is bound.
pub fn probe_ports(ports: &[u16]) -> Vec<(u16, PortState)> {
    let listeners = read_listeners();
    let bound = ports.iter().any(|p| listeners.iter().any(|l| l.port == *p));
    let processes = if bound {
        read_process_sockets()
    } else {
        Vec::new()
    };
    ports
        .iter()
        .map(|p| (*p, port_state(*p, &listeners, &processes)))
        .collect()
}

pub fn is_listening(port: u16) -> bool {
    read_listeners().iter().any(|l| l.port == port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(pid: u32, cmd: &str, inodes: &[u64]) -> ProcessSockets {
        ProcessSockets {
            pid,
            command: cmd.into(),
            inodes: inodes.to_vec(),
        }
    }

    #[test]
    fn free_when_nobody_listens() {
        let l = [Listener { port: 80, inode: 1 }];
        assert_eq!(port_state(3000, &l, &[ps(10, "x", &[1])]), PortState::Free);
    }

    #[test]
    fn names_the_process_holding_the_inode() {
        let l = [
            Listener {
                port: 3000,
                inode: 77,
            },
            Listener { port: 80, inode: 5 },
        ];
        let p = [
            ps(10, "nginx", &[5]),
            ps(4242, "node dist/main.js", &[76, 77]),
        ];
        assert_eq!(
            port_state(3000, &l, &p),
            PortState::Held(Some(PortHolder {
                pid: 4242,
                command: "node dist/main.js".into()
            }))
        );
    }

    #[test]
    fn shared_socket_is_attributed_to_the_parent() {
        let l = [Listener {
            port: 3000,
            inode: 9,
        }];
        let p = [ps(300, "worker", &[9]), ps(200, "master", &[9])];
        assert_eq!(
            port_state(3000, &l, &p),
            PortState::Held(Some(PortHolder {
                pid: 200,
                command: "master".into()
            }))
        );
    }

    #[test]
    fn held_by_an_uninspectable_process() {
        let l = [Listener {
            port: 3000,
            inode: 9,
        }];
        assert_eq!(port_state(3000, &l, &[]), PortState::Held(None));
    }

    #[test]
    fn ipv6_and_ipv4_listeners_of_one_port_both_count() {
        let l = [
            Listener {
                port: 3000,
                inode: 1,
            },
            Listener {
                port: 3000,
                inode: 2,
            },
        ];
        let p = [ps(50, "v6 only", &[2])];
        assert_eq!(
            port_state(3000, &l, &p),
            PortState::Held(Some(PortHolder {
                pid: 50,
                command: "v6 only".into()
            }))
        );
    }

    #[test]
    fn a_socket_the_replaced_service_holds_is_no_conflict() {
        let l = [
            Listener {
                port: 3000,
                inode: 9,
            },
            Listener {
                port: 3000,
                inode: 10,
            },
        ];
        let master_and_worker = [ps(200, "PM2 God", &[9]), ps(300, "worker", &[9])];
        let ours: std::collections::BTreeSet<u32> = [200].into_iter().collect();
        assert_eq!(
            port_state_except(3000, &l[..1], &master_and_worker, &ours),
            PortState::Free
        );
        // Another process on the IPv6 socket of the same port is still a conflict.
        let mut p = master_and_worker.to_vec();
        p.push(ps(4242, "nc -l 3000", &[10]));
        assert_eq!(
            port_state_except(3000, &l, &p, &ours),
            PortState::Held(Some(PortHolder {
                pid: 4242,
                command: "nc -l 3000".into()
            }))
        );
        assert_eq!(
            port_state_except(3000, &l[..1], &master_and_worker, &Default::default()),
            PortState::Held(Some(PortHolder {
                pid: 200,
                command: "PM2 God".into()
            }))
        );
    }

    #[test]
    fn descendants_of_a_service_are_its_own() {
        let family = [(10, 1), (11, 10), (12, 11), (20, 1), (21, 20)];
        let got: Vec<u32> = with_descendants(&[10], &family).into_iter().collect();
        assert_eq!(got, vec![10, 11, 12]);
        assert!(with_descendants(&[], &family).is_empty());
    }

    #[test]
    fn finds_a_real_listener_of_this_process() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let states = probe_ports(&[port]);
        match &states[0].1 {
            PortState::Held(Some(h)) => assert_eq!(h.pid, std::process::id()),
            other => panic!("expected this process to hold {port}, got {other:?}"),
        }
        drop(sock);
        assert_eq!(probe_ports(&[port])[0].1, PortState::Free);
    }
}
