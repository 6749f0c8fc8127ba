//! `verify` (FR-012): lints and dry-runs everything the workflow would do, without starting
//! anything. Every check is independent (one broken file does not hide the others'
//! problems); each problem names its file, its key (or line), what is wrong and what to do.
//! The dry run shows, per profile, the start order and what would run for each service — the
//! PM2 app definition or the container spec — with every environment value masked.

use std::path::Path;

use crate::catalog::{self};
use crate::config::{self, PluginConfig};

pub mod checks;
pub mod model;
pub mod render;

use checks::*;
pub use render::render;

pub use model::*;

/// Runs every check and the dry run. Never changes anything. An unregistered `--profile` is
/// bad input, not a problem of the workspace: `EXIT_PROFILE_UNDEFINED`.
pub fn verify(req: &VerifyRequest) -> crate::error::Result<Report> {
    let root = &req.workspace_root;
    let nx_json = config::nx_json_path(root);
    let mut c = Collector::new();
    let cfg = match config::load_plugin_config(root) {
        Ok(cfg) => cfg,
        Err(e) => {
            c.error("nx-json", &e, &nx_json, None);
            PluginConfig::default()
        }
    };
    let profiles: Vec<String> = if req.all_profiles {
        cfg.profiles.clone()
    } else {
        vec![config::resolve_profile(
            req.profile.as_deref(),
            &cfg,
            &nx_json,
        )?]
    };
    check_targets(&mut c, root, &req.plugin_root);
    let ecosystem = match &req.ecosystem {
        Ok(v) => Some(v.clone()),
        Err(message) => {
            c.add(
                "ecosystem",
                &req.ecosystem_file,
                "(module)",
                None,
                // The loader's message already names the file and says it could not be loaded.
                if message.contains("could not be loaded") {
                    message.clone()
                } else {
                    format!("could not be loaded: {message}")
                },
                format!(
                    "Run node -e \"require('{}')\" to see the error, and fix it",
                    req.ecosystem_file.display()
                ),
            );
            None
        }
    };
    let compose = compose_project(root);
    // The catalog: the ecosystem (an empty one when it could not be loaded, so compose is
    // still checked), compose service names, nx.json's references to both.
    let eco = ecosystem
        .clone()
        .unwrap_or(serde_json::json!({ "apps": [] }));
    let cat = match catalog::build(
        root,
        &crate::catalog::workspace_name(root),
        &req.ecosystem_file,
        &eco,
        cfg.clone(),
        compose.clone(),
    ) {
        Ok(cat) => Some(cat),
        Err(e) => {
            c.error("ecosystem", &e, &req.ecosystem_file, None);
            None
        }
    };
    if let Some(eco) = &ecosystem {
        check_ecosystem(&mut c, eco, &req.ecosystem_file, root, &profiles);
    }
    let mut plans = Vec::new();
    if let Some(cat) = &cat {
        for profile in &profiles {
            for s in &cat.services {
                if let Err(e) = cfg.restart_policy_for(&s.name, profile, &nx_json) {
                    c.error("restart-policy", &e, &nx_json, Some(profile));
                }
            }
            if let Some(plan) = check_profile(&mut c, cat, profile) {
                plans.push(plan);
            }
        }
        check_log_dirs(&mut c, cat);
        check_shadowed_scripts(&mut c, cat);
    }
    Ok(Report {
        workspace: root.clone(),
        ok: c.problems.is_empty(),
        profiles: plans,
        problems: c.problems,
        warnings: c.warnings,
    })
}

/// The compose project without a profile; its problems are reported per profile below.
fn compose_project(root: &Path) -> Option<crate::compose::ComposeFile> {
    crate::catalog::load_compose(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn options_are_checked_against_the_schema_subset_we_use() {
        let schema = serde_json::json!({
            "properties": {
                "profile": { "type": "string" },
                "json": { "type": "boolean" },
                "format": { "type": "string", "enum": ["table", "json"] },
                "tail": { "type": ["integer", "string"] }
            },
            "additionalProperties": false
        });
        let m = |k: &str, v: Value| schema_mismatch(&schema, k, &v);
        assert_eq!(m("profile", "staging".into()), None);
        assert_eq!(m("tail", 5.into()), None);
        assert_eq!(m("tail", "5".into()), None);
        assert!(m("json", "yes".into()).unwrap().contains("must be boolean"));
        assert!(m("format", "yaml".into())
            .unwrap()
            .contains("one of \"table\", \"json\""));
        assert!(m("colour", true.into())
            .unwrap()
            .contains("unknown option \"colour\""));
        let open = serde_json::json!({ "properties": {} });
        assert_eq!(schema_mismatch(&open, "anything", &Value::Null), None);
    }

    #[test]
    fn masks_build_args_like_env() {
        let c = crate::compose::from_text(
            "services:\n  api:\n    build:\n      context: .\n      args: {NPM_TOKEN: s3cr3t}\n    environment: {A: s3cr3t}\n",
            Path::new("/ws/compose.yaml"),
            &|_| None,
        );
        let spec = crate::container::spec(crate::container::SpecInput {
            workspace_root: Path::new("/ws"),
            workspace_name: "ws",
            profile: "development",
            compose: &c,
            service: &c.services[0],
            env_file_vars: vec![],
            health_timeout_seconds: None,
            replica: 1,
        });
        let v = masked_container(&spec);
        assert!(!v.to_string().contains("s3cr3t"), "{v}");
        assert_eq!(v["build"]["args"]["NPM_TOKEN"], MASK);
    }

    #[test]
    fn masks_every_environment_value() {
        let app = masked_app(
            serde_json::json!({ "name": "a", "env": { "SECRET": "s3cr3t", "PORT": "1" } }),
        );
        assert_eq!(app["env"]["SECRET"], MASK);
        assert_eq!(app["env"]["PORT"], MASK);
        assert!(!app.to_string().contains("s3cr3t"));
    }

    #[test]
    fn the_text_report_lists_problems_with_file_key_and_remediation() {
        let r = Report {
            workspace: "/ws".into(),
            ok: false,
            profiles: vec![],
            problems: vec![Problem {
                rule: "compose",
                file: "/ws/docker-compose.yml".into(),
                at: "services.db.ports[0]".into(),
                line: Some(7),
                profile: Some("staging".into()),
                message: "\"99999:1\" is not a port mapping".into(),
                remediation: "Fix `services.db.ports[0]`".into(),
            }],
            warnings: vec![Problem {
                rule: "healthcheck",
                file: "/ws/docker-compose.yml".into(),
                at: "services.db.healthcheck.interval".into(),
                line: None,
                profile: Some("staging".into()),
                message: "interval 60s is longer than 30s".into(),
                remediation: "Set healthcheck.interval to 30s or less".into(),
            }],
        };
        let t = render(&r);
        assert!(
            t.contains("✗ compose [staging]: /ws/docker-compose.yml:7 services.db.ports[0]"),
            "{t}"
        );
        assert!(t.contains(
            "⚠ healthcheck [staging]: /ws/docker-compose.yml services.db.healthcheck.interval"
        ));
        assert!(t.contains("→ Set healthcheck.interval"));
        assert!(t.ends_with("verify: 1 problem (1 warning)\n"));
    }
}
