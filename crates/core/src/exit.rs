//! The exit-code table of `docs/exit-codes.md` (DESIGN §3). Names and numbers are a contract.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ExitCode {
    Ok,
    Failure,
    Usage,
    ProfileUndefined,
    ServiceUnknown,
    EnvMissing,
    Prerequisite,
    PortInUse,
    ConflictingProcess,
    ImageUnavailable,
    DependencyDegraded,
    ContainerFailed,
    RestartThresholdExceeded,
    Unhealthy,
}

impl ExitCode {
    pub const ALL: [ExitCode; 14] = [
        ExitCode::Ok,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::ProfileUndefined,
        ExitCode::ServiceUnknown,
        ExitCode::EnvMissing,
        ExitCode::Prerequisite,
        ExitCode::PortInUse,
        ExitCode::ConflictingProcess,
        ExitCode::ImageUnavailable,
        ExitCode::DependencyDegraded,
        ExitCode::ContainerFailed,
        ExitCode::RestartThresholdExceeded,
        ExitCode::Unhealthy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ExitCode::Ok => "OK",
            ExitCode::Failure => "EXIT_FAILURE",
            ExitCode::Usage => "EXIT_USAGE",
            ExitCode::ProfileUndefined => "EXIT_PROFILE_UNDEFINED",
            ExitCode::ServiceUnknown => "EXIT_SERVICE_UNKNOWN",
            ExitCode::EnvMissing => "EXIT_ENV_MISSING",
            ExitCode::Prerequisite => "EXIT_PREREQUISITE",
            ExitCode::PortInUse => "EXIT_PORT_IN_USE",
            ExitCode::ConflictingProcess => "EXIT_CONFLICTING_PROCESS",
            ExitCode::ImageUnavailable => "EXIT_IMAGE_UNAVAILABLE",
            ExitCode::DependencyDegraded => "EXIT_DEPENDENCY_DEGRADED",
            ExitCode::ContainerFailed => "EXIT_CONTAINER_FAILED",
            ExitCode::RestartThresholdExceeded => "EXIT_RESTART_THRESHOLD_EXCEEDED",
            ExitCode::Unhealthy => "EXIT_UNHEALTHY",
        }
    }

    pub fn number(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::ProfileUndefined => 10,
            ExitCode::ServiceUnknown => 11,
            ExitCode::EnvMissing => 12,
            ExitCode::Prerequisite => 13,
            ExitCode::PortInUse => 14,
            ExitCode::ConflictingProcess => 15,
            ExitCode::ImageUnavailable => 16,
            ExitCode::DependencyDegraded => 17,
            ExitCode::ContainerFailed => 18,
            ExitCode::RestartThresholdExceeded => 19,
            ExitCode::Unhealthy => 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_design_contract() {
        let table: Vec<(&str, i32)> = ExitCode::ALL
            .iter()
            .map(|c| (c.name(), c.number()))
            .collect();
        assert_eq!(
            table,
            vec![
                ("OK", 0),
                ("EXIT_FAILURE", 1),
                ("EXIT_USAGE", 2),
                ("EXIT_PROFILE_UNDEFINED", 10),
                ("EXIT_SERVICE_UNKNOWN", 11),
                ("EXIT_ENV_MISSING", 12),
                ("EXIT_PREREQUISITE", 13),
                ("EXIT_PORT_IN_USE", 14),
                ("EXIT_CONFLICTING_PROCESS", 15),
                ("EXIT_IMAGE_UNAVAILABLE", 16),
                ("EXIT_DEPENDENCY_DEGRADED", 17),
                ("EXIT_CONTAINER_FAILED", 18),
                ("EXIT_RESTART_THRESHOLD_EXCEEDED", 19),
                ("EXIT_UNHEALTHY", 20),
            ]
        );
    }
}
