//! What a failed engine operation says: which operation, on what, the engine's status code and
//! message, and what that means (worth retrying, a missing external resource, not found). Plain
//! data in the core, below the runtime's Docker client and below `crate::error`, which needs no
//! Docker client to say what an engine refused.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Connect,
    Version,
    InspectImage,
    Pull,
    Network,
    Volume,
    Build,
    Create,
    Rename,
    Start,
    Stop,
    Remove,
    Inspect,
    Events,
    Logs,
    Wait,
    Copy,
    Exec,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Connect => "connect",
            Op::Version => "version",
            Op::InspectImage => "inspect image",
            Op::Pull => "pull",
            Op::Network => "create network",
            Op::Volume => "create volume",
            Op::Build => "build image",
            Op::Create => "create",
            Op::Rename => "rename container",
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Remove => "remove",
            Op::Inspect => "inspect",
            Op::Events => "events",
            Op::Logs => "logs",
            Op::Wait => "wait",
            Op::Copy => "copy files into",
            Op::Exec => "exec in",
        }
    }
}

/// One failed engine operation: which, on what, the engine's status code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerError {
    pub op: Op,
    pub target: String,
    pub status: Option<u16>,
    pub message: String,
}

impl DockerError {
    /// An external network or volume that does not exist (compose never creates those).
    pub fn missing(op: Op, target: &str, what: &str) -> Self {
        DockerError {
            op,
            target: target.into(),
            status: Some(404),
            message: format!(
                "{what} \"{target}\" does not exist, and an external one is never created"
            ),
        }
    }

    /// The missing external resource this error names: ("volume" | "network", name).
    pub fn missing_external(&self) -> Option<(&'static str, &str)> {
        if self.status != Some(404) || !self.message.contains("an external one is never created") {
            return None;
        }
        match self.op {
            Op::Volume => Some(("volume", &self.target)),
            Op::Network => Some(("network", &self.target)),
            _ => None,
        }
    }

    pub fn not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// Worth one more try: the connection broke or the engine said "try later". Engine verdicts
    /// (404, 409, a failed pull, a refused port) are not.
    pub fn is_transient(&self) -> bool {
        match self.status {
            None => {
                let m = self.message.to_lowercase();
                !m.contains("deserialize") && !m.contains("no such file")
            }
            Some(s) => matches!(s, 408 | 429 | 502 | 503 | 504),
        }
    }
}

impl std::fmt::Display for DockerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(
                f,
                "{} {}: engine status {s}: {}",
                self.op.as_str(),
                self.target,
                self.message
            ),
            None => write!(f, "{} {}: {}", self.op.as_str(), self.target, self.message),
        }
    }
}

pub type DResult<T> = std::result::Result<T, DockerError>;
