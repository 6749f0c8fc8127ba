//! Pure decisions: what `start`, `restart` and `stop` do to one service, given what PM2 holds.

use serde::Serialize;

use crate::error::{Error, Owner};
use crate::pm2::Presence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Not in PM2: start it.
    Start,
    /// A stopped entry of ours (any profile): delete it and start afresh with this profile.
    Replace,
    /// Already online in this workspace and profile: nothing to do (idempotent start).
    Keep,
    /// Cluster mode: PM2 reload, one worker at a time (zero downtime).
    Reload,
    /// Fork mode: PM2 restart.
    Restart,
    Stop,
    /// Nothing to stop.
    AlreadyStopped,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Reload => "reload",
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::AlreadyStopped => "already-stopped",
        }
    }

    /// Actions after which the service must become ready before the command succeeds.
    pub fn launches(self) -> bool {
        matches!(
            self,
            Action::Start | Action::Replace | Action::Reload | Action::Restart
        )
    }
}

fn conflict(service: &str, profile: &str, owner: Owner) -> Error {
    Error::ConflictingProcess {
        service: service.into(),
        owner,
        profile: profile.into(),
    }
}

/// What one service is: a cluster-mode app (reloads with zero downtime), a fork-mode app, or a
/// docker dependency (its runner restarts and its container is recreated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Cluster,
    Fork,
    Dependency,
}

/// What a command does to one service, and the profile it leaves when the service runs under
/// another profile of this workspace (a profile switch, as `pm2 startOrReload --env <profile>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub switched_from: Option<String>,
}

impl Decision {
    fn plain(action: Action) -> Decision {
        Decision {
            action,
            switched_from: None,
        }
    }
}

/// A running service moves to another profile: a cluster app reloads into the new env (zero
/// downtime); a dependency's container is recreated with its new env (the runner restarts); a
/// fork app is started afresh (its PM2 entry replaced, so no variable of the old profile stays
/// in its env).
fn switch(shape: Shape, from: &str) -> Decision {
    Decision {
        action: match shape {
            Shape::Cluster => Action::Reload,
            Shape::Dependency => Action::Restart,
            Shape::Fork => Action::Replace,
        },
        switched_from: Some(from.to_string()),
    }
}

pub fn start(p: &Presence, service: &str, profile: &str, shape: Shape) -> Result<Decision, Error> {
    match p {
        Presence::Absent => Ok(Decision::plain(Action::Start)),
        Presence::Ours { live: true } => Ok(Decision::plain(Action::Keep)),
        Presence::Ours { live: false } => Ok(Decision::plain(Action::Replace)),
        Presence::OtherProfile {
            profile: theirs,
            live: true,
        } => Ok(switch(shape, theirs)),
        Presence::OtherProfile { live: false, .. } => Ok(Decision::plain(Action::Replace)),
        Presence::Conflict(k) => Err(conflict(service, profile, k.clone().into())),
    }
}

pub fn restart(
    p: &Presence,
    service: &str,
    profile: &str,
    shape: Shape,
) -> Result<Decision, Error> {
    match p {
        Presence::Ours { live: true } if shape == Shape::Cluster => {
            Ok(Decision::plain(Action::Reload))
        }
        Presence::Ours { live: true } => Ok(Decision::plain(Action::Restart)),
        other => start(other, service, profile, shape),
    }
}

pub fn stop(p: &Presence, service: &str, profile: &str) -> Result<Action, Error> {
    match p {
        Presence::Absent => Ok(Action::AlreadyStopped),
        Presence::Ours { live } | Presence::OtherProfile { live, .. } => Ok(if *live {
            Action::Stop
        } else {
            Action::AlreadyStopped
        }),
        Presence::Conflict(k) => Err(conflict(service, profile, k.clone().into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitCode;
    use crate::pm2::OwnerKey;

    fn other(live: bool) -> Presence {
        Presence::OtherProfile {
            profile: "development".into(),
            live,
        }
    }

    fn action(d: Result<Decision, Error>) -> Action {
        d.unwrap().action
    }

    #[test]
    fn start_is_idempotent_and_replaces_stopped_entries() {
        let f = Shape::Fork;
        assert_eq!(
            action(start(&Presence::Absent, "s", "staging", f)),
            Action::Start
        );
        assert_eq!(
            action(start(&Presence::Ours { live: true }, "s", "staging", f)),
            Action::Keep
        );
        assert_eq!(
            action(start(&Presence::Ours { live: false }, "s", "staging", f)),
            Action::Replace
        );
        let stopped = start(&other(false), "s", "staging", f).unwrap();
        assert_eq!(stopped.action, Action::Replace);
        assert_eq!(
            stopped.switched_from, None,
            "nothing ran under the old profile"
        );
    }

    #[test]
    fn a_live_service_under_another_profile_switches_by_its_shape() {
        for verb in [start, restart] {
            for (shape, want) in [
                (Shape::Cluster, Action::Reload),
                (Shape::Dependency, Action::Restart),
                (Shape::Fork, Action::Replace),
            ] {
                let d = verb(&other(true), "server", "staging", shape).unwrap();
                assert_eq!(d.action, want, "{shape:?}");
                assert_eq!(d.switched_from.as_deref(), Some("development"));
            }
        }
    }

    #[test]
    fn entries_of_another_workspace_or_of_nobody_are_refused() {
        for k in [
            OwnerKey::Foreign,
            OwnerKey::Workspace {
                root: "/b".into(),
                profile: "staging".into(),
            },
        ] {
            for verb in [start, restart] {
                let e = verb(
                    &Presence::Conflict(k.clone()),
                    "server",
                    "staging",
                    Shape::Fork,
                )
                .unwrap_err();
                assert_eq!(e.exit_code(), ExitCode::ConflictingProcess);
            }
            let e = stop(&Presence::Conflict(k), "server", "staging").unwrap_err();
            assert_eq!(e.exit_code(), ExitCode::ConflictingProcess);
        }
    }

    #[test]
    fn restart_reloads_cluster_and_restarts_fork_and_dependencies() {
        let ours = Presence::Ours { live: true };
        assert_eq!(
            action(restart(&ours, "s", "p", Shape::Cluster)),
            Action::Reload
        );
        assert_eq!(
            action(restart(&ours, "s", "p", Shape::Fork)),
            Action::Restart
        );
        assert_eq!(
            action(restart(&ours, "s", "p", Shape::Dependency)),
            Action::Restart
        );
        assert_eq!(
            action(restart(&Presence::Absent, "s", "p", Shape::Cluster)),
            Action::Start
        );
        assert_eq!(
            restart(&ours, "s", "p", Shape::Fork).unwrap().switched_from,
            None
        );
    }

    #[test]
    fn stop_touches_only_our_entries() {
        assert_eq!(
            stop(&Presence::Absent, "s", "p").unwrap(),
            Action::AlreadyStopped
        );
        assert_eq!(
            stop(&Presence::Ours { live: true }, "s", "p").unwrap(),
            Action::Stop
        );
        assert_eq!(stop(&other(true), "s", "p").unwrap(), Action::Stop);
        assert_eq!(
            stop(&Presence::Ours { live: false }, "s", "p").unwrap(),
            Action::AlreadyStopped
        );
        assert!(stop(&Presence::Conflict(OwnerKey::Foreign), "s", "p").is_err());
    }

    #[test]
    fn only_launching_actions_wait() {
        assert!(Action::Reload.launches() && Action::Replace.launches());
        assert!(!Action::Keep.launches() && !Action::Stop.launches());
    }
}
