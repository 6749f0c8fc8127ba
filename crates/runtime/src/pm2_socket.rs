//! PM2 for a command: its RPC socket wherever the call is the one PM2's client would send, and
//! the client (a [`Client`], PM2's JS client on the binding's side) for the calls that need its
//! configuration steps (a start, a restart with a new definition, a reload).
//!
//! By socket: the process table (`getMonitorData`), and stop, delete and restart of entries by
//! their PM2 ids (`stopProcessId`, `deleteProcessId`, `restartProcessId` with the env it has),
//! which is what PM2's client sends for a numeric id after its own bookkeeping. Measured here
//! (docs/benchmarks.md): 70 concurrent stops of plain PM2 apps through PM2's client return
//! together after 3.9 s; the same stops straight on the socket, one connection each, after
//! 1.1–1.5 s, each as its process is gone.

use std::path::PathBuf;
use std::time::Duration;

use orchestrator_core::pm2::Pm2Process;
use serde_json::json;

use crate::launch::{BoxFuture, Pm2, Pm2Call};
use crate::pm2rpc;

/// A stop waits out the process's own kill timeout (a container runner's is its grace period
/// plus 5 s): PM2 decides; this only bounds a daemon that never answers.
const CALL: Duration = Duration::from_secs(3600);

/// PM2's own client, for the calls only it makes whole (its table is read here, by socket).
pub trait Client: Send + Sync {
    fn call(&self, call: Pm2Call) -> BoxFuture<'_, Result<(), String>>;
}

pub struct Pm2Socket<'a> {
    pub client: &'a dyn Client,
    pub home: PathBuf,
}

/// Pure: the socket method and argument for `call` on one PM2 id, when the socket does it.
pub fn by_socket(call: &Pm2Call, id: u32) -> Option<(&'static str, serde_json::Value)> {
    match call {
        Pm2Call::Stop(_) => Some(("stopProcessId", json!(id))),
        Pm2Call::Delete(_) => Some(("deleteProcessId", json!(id))),
        // As defined: the env PM2 keeps for it, unchanged.
        Pm2Call::RestartName(_) => Some(("restartProcessId", json!({"id": id, "env": {}}))),
        Pm2Call::Start(_) | Pm2Call::Restart(_) | Pm2Call::Reload(_) => None,
    }
}

impl Pm2 for Pm2Socket<'_> {
    fn call(&self, call: Pm2Call) -> BoxFuture<'_, Result<(), String>> {
        let ids = match &call {
            Pm2Call::Stop(t) | Pm2Call::Delete(t) | Pm2Call::RestartName(t) => t.ids.clone(),
            _ => Vec::new(),
        };
        if ids.is_empty() || by_socket(&call, 0).is_none() {
            return self.client.call(call);
        }
        Box::pin(async move {
            // A cluster's instances one after another, as PM2's client does them.
            for id in ids {
                let (method, arg) = by_socket(&call, id).expect("checked above");
                pm2rpc::act(&self.home, method, arg, CALL).await?;
            }
            Ok(())
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Pm2Process>, String>> {
        Box::pin(async move {
            pm2rpc::list_within(&self.home, Duration::from_secs(60))
                .await?
                .ok_or_else(|| "PM2's daemon is not running".to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::Target;

    #[test]
    fn stop_delete_and_restart_as_defined_go_by_socket_the_rest_by_the_client() {
        let t = Target {
            name: "api".into(),
            ids: vec![3],
        };
        assert_eq!(
            by_socket(&Pm2Call::Stop(t.clone()), 3),
            Some(("stopProcessId", json!(3)))
        );
        assert_eq!(
            by_socket(&Pm2Call::Delete(t.clone()), 3),
            Some(("deleteProcessId", json!(3)))
        );
        assert_eq!(
            by_socket(&Pm2Call::RestartName(t), 3),
            Some(("restartProcessId", json!({"id": 3, "env": {}})))
        );
        let app = json!({"name": "api"});
        assert_eq!(by_socket(&Pm2Call::Start(app.clone()), 3), None);
        assert_eq!(by_socket(&Pm2Call::Restart(app.clone()), 3), None);
        assert_eq!(by_socket(&Pm2Call::Reload(app), 3), None);
    }
}
