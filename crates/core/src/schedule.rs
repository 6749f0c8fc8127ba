//! Who waits on whom while a command carries out its plan, as data: a start (restart, deploy)
//! runs every service as soon as what it needs is there, a stop runs every service once what
//! uses it has stopped. The runtime's `launch` runs the steps concurrently on these edges; the
//! decisions (which edge, when a wait is over, when a failure blocks a service) are here.
//!
//! Edges, for a start:
//! - a compose service waits on what its `depends_on` names, with the condition written there
//!   (`service_started`, `service_healthy`, `service_completed_successfully`);
//! - an app waits until the services its `dependsOn` names (nx.json, the Nx graph's edges of
//!   the inferred projects) are ready; an app that declares none waits for every dependency of
//!   the command, as it always has: a team that never wrote `dependsOn` keeps its database up
//!   before its server starts.
//!
//! A stop turns the edges round: a service stops after everything that waits on it stopped.

use crate::catalog::Kind;
use crate::compose::Condition;

/// What a waiter needs of the service it waits on (in rising strength).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gate {
    /// Its process (container) started: compose `service_started`, and every stop edge.
    Started,
    /// It is ready: healthy, ports listening, probes answering (`service_healthy`, apps).
    Ready,
    /// It ran to completion with exit code 0 (`service_completed_successfully`).
    Completed,
}

impl Gate {
    pub fn of(condition: Condition) -> Gate {
        match condition {
            Condition::Started => Gate::Started,
            Condition::Healthy => Gate::Ready,
            Condition::CompletedSuccessfully => Gate::Completed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub on: String,
    pub gate: Gate,
    /// compose `required: false`: a failure of the service waited on does not block the waiter.
    pub required: bool,
}

impl Wait {
    /// This wait against the phase of the service waited on.
    pub fn verdict(&self, phase: Phase) -> Verdict {
        match verdict(self.gate, phase) {
            Verdict::Blocked if !self.required => Verdict::Met,
            v => v,
        }
    }
}

/// One service of a plan as the edges see it.
#[derive(Debug, Clone)]
pub struct Node {
    pub service: String,
    pub kind: Kind,
    /// Compose `depends_on` (dependencies): name, condition, `required`.
    pub compose: Vec<(String, Condition, bool)>,
    /// The plugin's `dependsOn` (apps, and dependencies that name apps or other services);
    /// `None` when the service's settings have none (an app then waits on every dependency).
    pub declared: Option<Vec<String>>,
}

/// For each node (in order), what it waits on before it starts. Edges to services outside the
/// plan are dropped: they are not this command's to wait for.
pub fn start_waits(nodes: &[Node]) -> Vec<Vec<Wait>> {
    let in_plan = |name: &str| nodes.iter().any(|n| n.service == name);
    nodes
        .iter()
        .map(|n| {
            let mut waits: Vec<Wait> = Vec::new();
            let mut add = |on: &str, gate: Gate, required: bool| {
                if on == n.service || !in_plan(on) {
                    return;
                }
                match waits.iter_mut().find(|w| w.on == on) {
                    // Two edges to one service: the stronger condition holds.
                    Some(w) => {
                        w.gate = w.gate.max(gate);
                        w.required |= required;
                    }
                    None => waits.push(Wait {
                        on: on.to_string(),
                        gate,
                        required,
                    }),
                }
            };
            for (on, condition, required) in &n.compose {
                add(on, Gate::of(*condition), *required);
            }
            for on in n.declared.iter().flatten() {
                add(on, Gate::Ready, true);
            }
            if n.kind == Kind::App && n.declared.is_none() {
                for d in nodes.iter().filter(|d| d.kind == Kind::Dependency) {
                    add(&d.service, Gate::Ready, true);
                }
            }
            waits
        })
        .collect()
}

/// A cycle of waits (`a → b → a`), which no order can carry out; `None` when there is none.
pub fn cycle(nodes: &[Node], waits: &[Vec<Wait>]) -> Option<Vec<String>> {
    let index = |name: &str| nodes.iter().position(|n| n.service == name);
    // 0: not seen, 1: on the current path, 2: done.
    let mut mark = vec![0u8; nodes.len()];
    let mut path: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        waits: &[Vec<Wait>],
        index: &dyn Fn(&str) -> Option<usize>,
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[i] = 1;
        path.push(i);
        for w in &waits[i] {
            let Some(j) = index(&w.on) else { continue };
            if mark[j] == 1 {
                let from = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut c = path[from..].to_vec();
                c.push(j);
                return Some(c);
            }
            if mark[j] == 0 {
                if let Some(c) = visit(j, waits, index, mark, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    for i in 0..nodes.len() {
        if mark[i] == 0 {
            if let Some(c) = visit(i, waits, &index, &mut mark, &mut path) {
                return Some(c.into_iter().map(|i| nodes[i].service.clone()).collect());
            }
        }
    }
    None
}

/// The start edges (`start_waits` of the same nodes) turned round: each service stops once
/// every service that waits on it has stopped (apps before the dependencies they use).
pub fn stop_waits(nodes: &[Node], start: &[Vec<Wait>]) -> Vec<Vec<Wait>> {
    nodes
        .iter()
        .map(|n| {
            nodes
                .iter()
                .zip(start)
                .filter(|(_, waits)| waits.iter().any(|w| w.on == n.service))
                .map(|(other, _)| Wait {
                    on: other.service.clone(),
                    gate: Gate::Started,
                    required: false,
                })
                .collect()
        })
        .collect()
}

/// Where a service's step is, as its waiters see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    /// PM2 (or the engine) started it; it may not be ready yet.
    Started,
    /// Ready (or kept as it ran, or a stop done).
    Ready,
    /// A one-shot job that exited 0.
    Completed,
    Failed,
    /// Not carried out: something it waits on failed or was skipped.
    Skipped,
}

/// A wait, against the phase of the service waited on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    NotYet,
    Met,
    /// It can never be met: the service waited on failed or was skipped.
    Blocked,
}

pub fn verdict(gate: Gate, phase: Phase) -> Verdict {
    match (gate, phase) {
        (_, Phase::Failed | Phase::Skipped) => Verdict::Blocked,
        (_, Phase::Pending) => Verdict::NotYet,
        // A job is done when it completed; any condition on it is met then.
        (_, Phase::Completed) => Verdict::Met,
        (Gate::Started, Phase::Started | Phase::Ready) => Verdict::Met,
        (Gate::Ready, Phase::Ready) => Verdict::Met,
        (Gate::Ready, Phase::Started) => Verdict::NotYet,
        // Completion is a job's: a service that is only started or ready has not completed,
        // but one that is ready without being a job (kept, say) will not complete either.
        (Gate::Completed, Phase::Ready) => Verdict::Met,
        (Gate::Completed, Phase::Started) => Verdict::NotYet,
    }
}

/// Stop edges order only: a service whose dependents failed to stop is stopped all the same
/// (what uses it is being stopped, and leaving it running helps no one).
pub fn stop_verdict(phase: Phase) -> Verdict {
    match phase {
        Phase::Pending | Phase::Started => Verdict::NotYet,
        _ => Verdict::Met,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, compose: &[(&str, Condition)]) -> Node {
        Node {
            service: name.into(),
            kind: Kind::Dependency,
            compose: compose
                .iter()
                .map(|(n, c)| (n.to_string(), *c, true))
                .collect(),
            declared: None,
        }
    }

    /// An app; `[]` is an app whose settings have no `dependsOn`.
    fn app(name: &str, declared: &[&str]) -> Node {
        Node {
            service: name.into(),
            kind: Kind::App,
            compose: Vec::new(),
            declared: (!declared.is_empty())
                .then(|| declared.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn on(waits: &[Wait]) -> Vec<(&str, Gate)> {
        waits.iter().map(|w| (w.on.as_str(), w.gate)).collect()
    }

    #[test]
    fn compose_conditions_become_gates_and_only_the_plans_services_count() {
        let nodes = vec![
            dep("db", &[]),
            dep("migrate", &[("db", Condition::Healthy)]),
            dep(
                "cache",
                &[
                    ("db", Condition::Started),
                    ("elsewhere", Condition::Healthy),
                ],
            ),
            dep(
                "api-deps",
                &[
                    ("migrate", Condition::CompletedSuccessfully),
                    ("cache", Condition::Started),
                ],
            ),
        ];
        let w = start_waits(&nodes);
        assert!(w[0].is_empty());
        assert_eq!(on(&w[1]), vec![("db", Gate::Ready)]);
        assert_eq!(
            on(&w[2]),
            vec![("db", Gate::Started)],
            "not in the plan: dropped"
        );
        assert_eq!(
            on(&w[3]),
            vec![("migrate", Gate::Completed), ("cache", Gate::Started)]
        );
    }

    #[test]
    fn an_app_waits_on_what_it_declares_else_on_every_dependency() {
        let nodes = vec![
            dep("db", &[]),
            dep("queue", &[]),
            app("web", &[]),
            app("api", &["db"]),
            app("worker", &["api", "queue"]),
        ];
        let w = start_waits(&nodes);
        assert_eq!(on(&w[2]), vec![("db", Gate::Ready), ("queue", Gate::Ready)]);
        assert_eq!(on(&w[3]), vec![("db", Gate::Ready)], "not on queue");
        assert_eq!(
            on(&w[4]),
            vec![("api", Gate::Ready), ("queue", Gate::Ready)],
            "apps wait on apps through the Nx graph"
        );
    }

    #[test]
    fn an_app_that_declares_an_empty_depends_on_waits_on_nothing() {
        let mut free = app("free", &[]);
        free.declared = Some(Vec::new());
        let w = start_waits(&[dep("db", &[]), free]);
        assert!(w[1].is_empty());
    }

    #[test]
    fn two_edges_to_one_service_keep_the_stronger_condition() {
        let mut d = dep("x", &[("db", Condition::Started)]);
        d.declared = Some(vec!["db".into()]);
        let w = start_waits(&[dep("db", &[]), d]);
        assert_eq!(on(&w[1]), vec![("db", Gate::Ready)]);
    }

    #[test]
    fn a_stop_turns_the_edges_round() {
        let nodes = vec![
            dep("db", &[]),
            dep("cache", &[("db", Condition::Started)]),
            app("api", &["db"]),
            app("web", &["api"]),
        ];
        let w = stop_waits(&nodes, &start_waits(&nodes));
        let names = |i: usize| w[i].iter().map(|w| w.on.as_str()).collect::<Vec<_>>();
        assert_eq!(
            names(0),
            vec!["cache", "api"],
            "db stops after what uses it"
        );
        assert!(names(1).is_empty());
        assert_eq!(names(2), vec!["web"]);
        assert!(names(3).is_empty(), "nothing waits on web: it stops first");
    }

    #[test]
    fn an_optional_dependency_that_fails_does_not_block() {
        let mut d = dep("api-deps", &[]);
        d.compose = vec![("metrics".into(), Condition::Healthy, false)];
        let w = start_waits(&[dep("metrics", &[]), d]);
        assert_eq!(w[1][0].verdict(Phase::Failed), Verdict::Met);
        assert_eq!(w[1][0].verdict(Phase::Started), Verdict::NotYet);
    }

    #[test]
    fn a_cycle_is_found_and_named() {
        let nodes = vec![
            app("a", &["b"]),
            app("b", &["c"]),
            app("c", &["a"]),
            app("d", &[]),
        ];
        let w = start_waits(&nodes);
        assert_eq!(
            cycle(&nodes, &w),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        let nodes = vec![dep("db", &[]), app("api", &["db"]), app("web", &["api"])];
        assert_eq!(cycle(&nodes, &start_waits(&nodes)), None);
        // A dependency that declares an app, while that app waits on every dependency.
        let mut d = dep("proxy", &[]);
        d.declared = Some(vec!["web".into()]);
        let nodes = vec![d, app("web", &[])];
        assert!(cycle(&nodes, &start_waits(&nodes)).is_some());
    }

    #[test]
    fn verdicts() {
        use Phase::*;
        assert_eq!(verdict(Gate::Started, Pending), Verdict::NotYet);
        assert_eq!(verdict(Gate::Started, Started), Verdict::Met);
        assert_eq!(verdict(Gate::Ready, Started), Verdict::NotYet);
        assert_eq!(verdict(Gate::Ready, Ready), Verdict::Met);
        assert_eq!(verdict(Gate::Completed, Started), Verdict::NotYet);
        assert_eq!(verdict(Gate::Completed, Completed), Verdict::Met);
        assert_eq!(verdict(Gate::Ready, Completed), Verdict::Met);
        for g in [Gate::Started, Gate::Ready, Gate::Completed] {
            assert_eq!(verdict(g, Failed), Verdict::Blocked);
            assert_eq!(verdict(g, Skipped), Verdict::Blocked);
        }
        assert_eq!(stop_verdict(Started), Verdict::NotYet);
        assert_eq!(stop_verdict(Failed), Verdict::Met, "a stop is not blocked");
    }
}
