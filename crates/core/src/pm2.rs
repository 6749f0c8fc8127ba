//! PM2's process table as data, and who owns an entry: this workspace and profile, this
//! workspace under another profile, or not us. `Pm2Process` is the one model of a PM2 process:
//! the JS side hands it over from PM2's API (the plans, the agent, the readiness wait), the
//! runtime reads it from PM2's RPC socket (status), and the agent's exits carry it.

use crate::error::Owner;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pm2Process {
    pub name: String,
    pub pm_id: u32,
    pub pid: Option<u32>,
    /// PM2's status: online, launching, stopping, stopped, errored, one-launch-status, waiting restart.
    pub status: String,
    pub workspace: Option<String>,
    pub profile: Option<String>,
    pub kind: Option<String>,
    /// PM2's `pm_uptime`: when this process started (ms since the epoch).
    pub started_ms: Option<i64>,
    /// PM2's `restart_time`: how often PM2 restarted the entry.
    pub restart_time: u32,
    /// How the last process of this entry ended.
    pub exit_code: Option<i64>,
    /// PM2's monitor figures, when it has them.
    pub memory: Option<u64>,
    pub cpu: Option<f64>,
    /// `NODE_APP_INSTANCE`: which instance of its app this process is.
    pub instance: Option<u32>,
    /// PM2's pid file of this process (`pm_pid_path`), re-read by the readiness wait so a
    /// restart by the agent is followed.
    pub pid_file: Option<String>,
    /// The variables we set at its last launch, and those it must not see (see
    /// [`crate::catalog::unset_stale`]), from its env.
    pub env: LaunchedEnv,
}

/// What PM2 keeps in an entry's env about our last launch: PM2 merges a reload's or restart's
/// env into the old one, so a variable the new env lacks would stay; these name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchedEnv {
    /// `ORCHESTRATOR_ENV_KEYS`: the variables we set.
    pub keys: Vec<String>,
    /// `ORCHESTRATOR_UNSET`: variables PM2 still holds that the app must not see.
    pub unset: Vec<String>,
}

impl LaunchedEnv {
    /// From the two variables' comma-separated values.
    pub fn parse(keys: Option<&str>, unset: Option<&str>) -> LaunchedEnv {
        let list = |v: Option<&str>| -> Vec<String> {
            v.unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect()
        };
        LaunchedEnv {
            keys: list(keys),
            unset: list(unset),
        }
    }
}

impl Pm2Process {
    pub fn is_live(&self) -> bool {
        matches!(
            self.status.as_str(),
            "online" | "launching" | "waiting restart" | "stopping"
        )
    }
}

/// What PM2 holds under one name, seen from one workspace and profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Absent,
    /// Ours, this profile; `live` when any instance runs.
    Ours {
        live: bool,
    },
    /// Ours, but started under another profile.
    OtherProfile {
        profile: String,
        live: bool,
    },
    Conflict(OwnerKey),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerKey {
    Workspace { root: String, profile: String },
    Foreign,
}

impl From<OwnerKey> for Owner {
    fn from(k: OwnerKey) -> Owner {
        match k {
            OwnerKey::Workspace { root, profile } => Owner::Workspace { root, profile },
            OwnerKey::Foreign => Owner::Foreign,
        }
    }
}

/// Pure: classifies the PM2 entries named `service` against (`workspace`, `profile`).
pub fn presence(list: &[Pm2Process], service: &str, workspace: &str, profile: &str) -> Presence {
    let entries: Vec<&Pm2Process> = list.iter().filter(|p| p.name == service).collect();
    if entries.is_empty() {
        return Presence::Absent;
    }
    let live = entries.iter().any(|p| p.is_live());
    for e in &entries {
        match (&e.workspace, &e.profile) {
            (Some(w), Some(p)) if w == workspace => {
                if p != profile {
                    return Presence::OtherProfile {
                        profile: p.clone(),
                        live,
                    };
                }
            }
            (Some(w), p) => {
                return Presence::Conflict(OwnerKey::Workspace {
                    root: w.clone(),
                    profile: p.clone().unwrap_or_else(|| "?".into()),
                })
            }
            (None, _) => return Presence::Conflict(OwnerKey::Foreign),
        }
    }
    Presence::Ours { live }
}

/// The profile a running service of ours was started with, if any.
pub fn running_profile(list: &[Pm2Process], service: &str, workspace: &str) -> Option<String> {
    list.iter()
        .filter(|p| p.name == service && p.workspace.as_deref() == Some(workspace) && p.is_live())
        .find_map(|p| p.profile.clone())
}

/// What our last launch of `service` in this workspace left in PM2's env for it.
pub fn entry_env(list: &[Pm2Process], service: &str, workspace: &str) -> LaunchedEnv {
    list.iter()
        .find(|p| p.name == service && p.workspace.as_deref() == Some(workspace))
        .map(|p| p.env.clone())
        .unwrap_or_default()
}

pub fn pids(list: &[Pm2Process], service: &str) -> Vec<u32> {
    list.iter()
        .filter(|p| p.name == service)
        .filter_map(|p| p.pid)
        .filter(|p| *p > 0)
        .collect()
}

/// Whether PM2 runs the app's script with Node (only then does `node_args` apply): no
/// interpreter, or one named `node`, and a `.js`, `.cjs` or `.mjs` script.
pub fn runs_with_node(app: &serde_json::Value) -> bool {
    let interpreter = app
        .get("interpreter")
        .or_else(|| app.get("exec_interpreter"))
        .and_then(serde_json::Value::as_str);
    let node = match interpreter {
        None => true,
        Some(i) => {
            let base = i.rsplit(['/', '\\']).next().unwrap_or(i);
            base == "node" || base == "node.exe"
        }
    };
    let script = app.get("script").and_then(serde_json::Value::as_str);
    node && script.is_some_and(|s| [".js", ".cjs", ".mjs"].iter().any(|e| s.ends_with(e)))
}

/// A Node app's PM2 definition with our preload (`lib/preload.js`: its own log lines, graceful
/// shutdown, stale variables removed) first in `node_args`, and `ORCHESTRATOR_CAPTURE=1` in its
/// env; an app PM2 does not run with Node is returned as it is. Applying it twice changes
/// nothing.
pub fn with_preload(app: &serde_json::Value, preload: &std::path::Path) -> serde_json::Value {
    use serde_json::Value;
    if !runs_with_node(app) {
        return app.clone();
    }
    let preload = preload.display().to_string();
    let existing: Vec<Value> = match app.get("node_args") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) => s.split_whitespace().map(Value::from).collect(),
        _ => Vec::new(),
    };
    let node_args = if existing.iter().any(|a| a.as_str() == Some(&preload)) {
        existing
    } else {
        let mut args = vec![Value::from("--require"), Value::from(preload)];
        args.extend(existing);
        args
    };
    let mut out = app.clone();
    if let Some(obj) = out.as_object_mut() {
        obj.insert("node_args".into(), Value::Array(node_args));
        let env = obj
            .entry("env")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(env) = env.as_object_mut() {
            env.insert("ORCHESTRATOR_CAPTURE".into(), Value::from("1"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, status: &str, ws: Option<&str>, profile: Option<&str>) -> Pm2Process {
        Pm2Process {
            name: name.into(),
            pm_id: 0,
            pid: Some(100),
            status: status.into(),
            workspace: ws.map(Into::into),
            profile: profile.map(Into::into),
            kind: Some("app".into()),
            ..Default::default()
        }
    }

    #[test]
    fn absent_when_no_entry_has_the_name() {
        assert_eq!(
            presence(
                &[p("admin", "online", Some("/ws"), Some("development"))],
                "server",
                "/ws",
                "development"
            ),
            Presence::Absent
        );
    }

    #[test]
    fn ours_live_or_stopped() {
        let l = [
            p("server", "online", Some("/ws"), Some("staging")),
            p("server", "online", Some("/ws"), Some("staging")),
        ];
        assert_eq!(
            presence(&l, "server", "/ws", "staging"),
            Presence::Ours { live: true }
        );
        let l = [p("server", "stopped", Some("/ws"), Some("staging"))];
        assert_eq!(
            presence(&l, "server", "/ws", "staging"),
            Presence::Ours { live: false }
        );
        let l = [p("server", "errored", Some("/ws"), Some("staging"))];
        assert_eq!(
            presence(&l, "server", "/ws", "staging"),
            Presence::Ours { live: false }
        );
    }

    #[test]
    fn other_profile_of_this_workspace() {
        let l = [p("server", "online", Some("/ws"), Some("development"))];
        assert_eq!(
            presence(&l, "server", "/ws", "staging"),
            Presence::OtherProfile {
                profile: "development".into(),
                live: true
            }
        );
        assert_eq!(
            running_profile(&l, "server", "/ws"),
            Some("development".into())
        );
        assert_eq!(running_profile(&l, "server", "/other"), None);
    }

    #[test]
    fn another_workspace_or_a_hand_started_process_conflicts() {
        let l = [p(
            "server",
            "stopped",
            Some("/elsewhere"),
            Some("production"),
        )];
        assert_eq!(
            presence(&l, "server", "/ws", "production"),
            Presence::Conflict(OwnerKey::Workspace {
                root: "/elsewhere".into(),
                profile: "production".into()
            })
        );
        let l = [p("server", "online", None, None)];
        assert_eq!(
            presence(&l, "server", "/ws", "development"),
            Presence::Conflict(OwnerKey::Foreign)
        );
    }

    /// Moved from capture.spec (the preload's rules were JS until the launch moved to Rust).
    #[test]
    fn which_apps_get_the_preload_node_scripts_not_other_interpreters_node_args_kept() {
        use serde_json::json;
        assert!(runs_with_node(&json!({"script": "src/main.js"})));
        assert!(runs_with_node(
            &json!({"script": "main.mjs", "interpreter": "/usr/bin/node"})
        ));
        assert!(!runs_with_node(
            &json!({"script": "app.py", "interpreter": "python3"})
        ));
        assert!(!runs_with_node(
            &json!({"script": "npm", "args": "run dev"})
        ));
        assert!(!runs_with_node(
            &json!({"script": "main.js", "interpreter": "none"})
        ));
        let preload = std::path::Path::new("/pkg/lib/preload.js");
        let app = with_preload(
            &json!({"script": "main.js", "node_args": "--max-old-space-size=256", "env": {"A": "1"}}),
            preload,
        );
        assert_eq!(
            app["node_args"],
            json!([
                "--require",
                "/pkg/lib/preload.js",
                "--max-old-space-size=256"
            ])
        );
        assert_eq!(app["env"], json!({"A": "1", "ORCHESTRATOR_CAPTURE": "1"}));
        assert_eq!(
            with_preload(&app, preload)["node_args"],
            app["node_args"],
            "applied once"
        );
        let py = json!({"script": "app.py", "interpreter": "python3"});
        assert_eq!(with_preload(&py, preload), py);
    }
}
