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

    /// Actions that bind the service's ports anew, so the ports must be free first.
    pub fn needs_free_ports(self) -> bool {
        matches!(self, Action::Start | Action::Replace)
    }
}

fn conflict(service: &str, profile: &str, owner: Owner) -> Error {
    Error::ConflictingProcess {
        service: service.into(),
        owner,
        profile: profile.into(),
    }
}

pub fn decide_start(p: &Presence, service: &str, profile: &str) -> Result<Action, Error> {
    match p {
        Presence::Absent => Ok(Action::Start),
        Presence::Ours { live: true } => Ok(Action::Keep),
        Presence::Ours { live: false } => Ok(Action::Replace),
        Presence::OtherProfile {
            profile: theirs,
            live: true,
        } => Err(conflict(
            service,
            profile,
            Owner::Profile {
                profile: theirs.clone(),
            },
        )),
        Presence::OtherProfile { live: false, .. } => Ok(Action::Replace),
        Presence::Conflict(k) => Err(conflict(service, profile, k.clone().into())),
    }
}

pub fn decide_restart(
    p: &Presence,
    service: &str,
    profile: &str,
    cluster: bool,
) -> Result<Action, Error> {
    match p {
        Presence::Ours { live: true } if cluster => Ok(Action::Reload),
        Presence::Ours { live: true } => Ok(Action::Restart),
        other => decide_start(other, service, profile),
    }
}

pub fn decide_stop(p: &Presence, service: &str, profile: &str) -> Result<Action, Error> {
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

    #[test]
    fn start_is_idempotent_and_replaces_stopped_entries() {
        assert_eq!(
            decide_start(&Presence::Absent, "s", "staging").unwrap(),
            Action::Start
        );
        assert_eq!(
            decide_start(&Presence::Ours { live: true }, "s", "staging").unwrap(),
            Action::Keep
        );
        assert_eq!(
            decide_start(&Presence::Ours { live: false }, "s", "staging").unwrap(),
            Action::Replace
        );
        assert_eq!(
            decide_start(&other(false), "s", "staging").unwrap(),
            Action::Replace
        );
    }

    #[test]
    fn start_refuses_a_live_other_profile_and_foreign_entries() {
        let e = decide_start(&other(true), "server", "staging").unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::ConflictingProcess);
        let a = e.actionable("nx run server:start --profile staging");
        assert!(a.message.contains("profile development"), "{}", a.message);
        assert!(
            a.remediation.iter().any(|r| r.contains("workspace:stop")),
            "{:?}",
            a.remediation
        );
        assert!(
            a.remediation.iter().any(|r| r.contains("workspace:status")),
            "{:?}",
            a.remediation
        );
        for k in [
            OwnerKey::Foreign,
            OwnerKey::Workspace {
                root: "/b".into(),
                profile: "staging".into(),
            },
        ] {
            let e = decide_start(&Presence::Conflict(k), "server", "staging").unwrap_err();
            assert_eq!(e.exit_code(), ExitCode::ConflictingProcess);
        }
    }

    #[test]
    fn restart_reloads_cluster_and_restarts_fork() {
        assert_eq!(
            decide_restart(&Presence::Ours { live: true }, "s", "p", true).unwrap(),
            Action::Reload
        );
        assert_eq!(
            decide_restart(&Presence::Ours { live: true }, "s", "p", false).unwrap(),
            Action::Restart
        );
        assert_eq!(
            decide_restart(&Presence::Absent, "s", "p", true).unwrap(),
            Action::Start
        );
        assert!(decide_restart(&other(true), "s", "p", true).is_err());
    }

    #[test]
    fn stop_touches_only_our_entries() {
        assert_eq!(
            decide_stop(&Presence::Absent, "s", "p").unwrap(),
            Action::AlreadyStopped
        );
        assert_eq!(
            decide_stop(&Presence::Ours { live: true }, "s", "p").unwrap(),
            Action::Stop
        );
        assert_eq!(decide_stop(&other(true), "s", "p").unwrap(), Action::Stop);
        assert_eq!(
            decide_stop(&Presence::Ours { live: false }, "s", "p").unwrap(),
            Action::AlreadyStopped
        );
        assert!(decide_stop(&Presence::Conflict(OwnerKey::Foreign), "s", "p").is_err());
    }

    #[test]
    fn only_launching_actions_wait_and_only_fresh_starts_check_ports() {
        assert!(Action::Reload.launches() && !Action::Reload.needs_free_ports());
        assert!(Action::Start.needs_free_ports() && Action::Replace.needs_free_ports());
        assert!(!Action::Keep.launches() && !Action::Stop.launches());
    }
}
