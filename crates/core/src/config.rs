//! `nx.json` → `pluginsConfig["@workspace/orchestrator"]`: what no standard file has (DESIGN §1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::names::PLUGIN_KEY;

pub const DEFAULT_PROFILE: &str = "development";
pub const DEFAULT_READY_TIMEOUT_SECONDS: u64 = 60;

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthConfig {
    /// `http://host:port/path`, ready when it answers 2xx.
    pub http: Option<String>,
    /// `host:port`, ready when it accepts a connection.
    pub tcp: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConfig {
    #[serde(default)]
    pub required_env: Vec<String>,
    #[serde(default)]
    pub ports: Vec<u16>,
    pub health: Option<HealthConfig>,
    /// How long `start` waits for ports and health before failing.
    pub ready_timeout_seconds: Option<u64>,
    /// Dependencies' health limit (used from the Docker issue on).
    pub health_timeout_seconds: Option<u64>,
    /// Overrides of the restart policy (`policy.rs`), with optional `profiles.<name>` layers.
    pub restart_policy: Option<serde_json::Value>,
    /// Services this one needs (an app's database): Nx graph edges of the inferred projects,
    /// so `nx run server:start` starts them first, and what the service waits on while a
    /// command starts many (`schedule`). Absent, an app waits on the services its project.json
    /// names in `implicitDependencies` (`Catalog::implicit_waits`), else on every docker
    /// dependency of the command; `[]` says it needs none.
    #[serde(default)]
    pub depends_on: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PluginConfig {
    #[serde(default = "default_profiles")]
    pub profiles: Vec<String>,
    pub default_services: Option<Vec<String>>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    pub logs: Option<serde_json::Value>,
    /// The workspace's restart policy over the defaults, with optional `profiles.<name>` layers.
    pub restart_policy: Option<serde_json::Value>,
    /// Compose profiles (`profiles:` of compose services) each orchestrator profile enables,
    /// besides `COMPOSE_PROFILES`: `{ "development": ["debug"] }`.
    #[serde(default)]
    pub compose_profiles: BTreeMap<String, Vec<String>>,
}

fn default_profiles() -> Vec<String> {
    vec!["development".into(), "staging".into(), "production".into()]
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            profiles: default_profiles(),
            default_services: None,
            services: BTreeMap::new(),
            logs: None,
            restart_policy: None,
            compose_profiles: BTreeMap::new(),
        }
    }
}

pub fn nx_json_path(root: &Path) -> PathBuf {
    root.join("nx.json")
}

/// Parses the plugin section out of the text of `nx.json`. No section means defaults.
pub fn parse_plugin_config(nx_json_text: &str, file: &Path) -> Result<PluginConfig> {
    let doc: serde_json::Value =
        serde_json::from_str(nx_json_text).map_err(|e| Error::InvalidConfig {
            file: file.to_path_buf(),
            key: format!("line {}", e.line()),
            message: e.to_string(),
        })?;
    let Some(section) = doc.get("pluginsConfig").and_then(|p| p.get(PLUGIN_KEY)) else {
        return Ok(PluginConfig::default());
    };
    let cfg: PluginConfig =
        serde_json::from_value(section.clone()).map_err(|e| Error::InvalidConfig {
            file: file.to_path_buf(),
            key: format!("pluginsConfig[\"{PLUGIN_KEY}\"]"),
            message: e.to_string(),
        })?;
    for p in &cfg.profiles {
        if !crate::names::is_valid_name(p) {
            return Err(Error::InvalidConfig {
                file: file.to_path_buf(),
                key: format!("pluginsConfig[\"{PLUGIN_KEY}\"].profiles"),
                message: format!(
                    "\"{p}\" is not a valid profile name (letters, digits, '.', '_', '-')"
                ),
            });
        }
    }
    crate::rotate::policy(cfg.logs.as_ref(), file)?;
    let base = format!("pluginsConfig[\"{PLUGIN_KEY}\"]");
    if let Some(layer) = &cfg.restart_policy {
        crate::policy::validate_layer(layer, file, &format!("{base}.restartPolicy"))?;
    }
    for (name, svc) in &cfg.services {
        if let Some(layer) = &svc.restart_policy {
            let key = format!("{base}.services.{name}.restartPolicy");
            crate::policy::validate_layer(layer, file, &key)?;
        }
        for profile in &cfg.profiles {
            cfg.restart_policy_for(name, profile, file)?;
        }
    }
    Ok(cfg)
}

impl PluginConfig {
    /// The service's restart policy under `profile`, every layer applied (`policy::resolve`).
    pub fn restart_policy_for(
        &self,
        service: &str,
        profile: &str,
        file: &Path,
    ) -> Result<crate::policy::RestartPolicy> {
        self.restart_policy_with(service, profile, file, None)
    }

    /// [`Self::restart_policy_for`] with what the service's own file says (compose `restart:`,
    /// the ecosystem's PM2 options) between the workspace's layer and the service's.
    pub fn restart_policy_with(
        &self,
        service: &str,
        profile: &str,
        file: &Path,
        file_layer: Option<&serde_json::Value>,
    ) -> Result<crate::policy::RestartPolicy> {
        crate::policy::resolve_with(
            self.restart_policy.as_ref(),
            file_layer,
            self.services
                .get(service)
                .and_then(|s| s.restart_policy.as_ref()),
            service,
            profile,
            file,
        )
    }
}

pub fn load_plugin_config(root: &Path) -> Result<PluginConfig> {
    let file = nx_json_path(root);
    match std::fs::read_to_string(&file) {
        Ok(text) => parse_plugin_config(&text, &file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PluginConfig::default()),
        Err(source) => Err(Error::Io {
            op: crate::error::IoOp::Read,
            path: file,
            source,
        }),
    }
}

/// Resolves the profile a command runs under: the requested one, else `development`.
/// An unregistered profile fails before anything starts.
pub fn resolve_profile(
    requested: Option<&str>,
    cfg: &PluginConfig,
    nx_json: &Path,
) -> Result<String> {
    let profile = requested
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_PROFILE);
    if cfg.profiles.iter().any(|p| p == profile) {
        Ok(profile.to_string())
    } else {
        // A name no profile could have (`../x`, spaces, 10 KB) is bad input, not a missing
        // registration: the message must not suggest registering it.
        crate::names::validate_name(profile, "profile")?;
        Err(Error::ProfileUndefined {
            profile: profile.to_string(),
            registered: cfg.profiles.clone(),
            nx_json: nx_json.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> PluginConfig {
        parse_plugin_config(text, Path::new("/ws/nx.json")).unwrap()
    }

    #[test]
    fn missing_section_gives_the_three_standard_profiles() {
        let c = cfg(r#"{"namedInputs":{}}"#);
        assert_eq!(c.profiles, vec!["development", "staging", "production"]);
        assert!(c.default_services.is_none());
    }

    #[test]
    fn reads_services_and_profiles() {
        let c = cfg(r#"{"pluginsConfig":{"@workspace/orchestrator":{
            "profiles":["development","staging","qa"],
            "defaultServices":["admin"],
            "services":{"server":{"requiredEnv":["DATABASE_URL"],"ports":[3000],
              "health":{"http":"http://127.0.0.1:3000/health"}}}}}}"#);
        assert_eq!(c.profiles, vec!["development", "staging", "qa"]);
        assert_eq!(c.default_services, Some(vec!["admin".to_string()]));
        let s = &c.services["server"];
        assert_eq!(s.required_env, vec!["DATABASE_URL"]);
        assert_eq!(s.ports, vec![3000]);
        assert_eq!(
            s.health.as_ref().unwrap().http.as_deref(),
            Some("http://127.0.0.1:3000/health")
        );
    }

    #[test]
    fn absent_profile_means_development() {
        let c = PluginConfig::default();
        assert_eq!(
            resolve_profile(None, &c, Path::new("nx.json")).unwrap(),
            "development"
        );
        assert_eq!(
            resolve_profile(Some(""), &c, Path::new("nx.json")).unwrap(),
            "development"
        );
        assert_eq!(
            resolve_profile(Some("staging"), &c, Path::new("nx.json")).unwrap(),
            "staging"
        );
    }

    #[test]
    fn unregistered_profile_names_itself_and_where_to_register() {
        let c = PluginConfig::default();
        let err = resolve_profile(Some("qa"), &c, Path::new("/ws/nx.json")).unwrap_err();
        let a = err.actionable("nx run server:start --profile qa");
        assert_eq!(a.code, "EXIT_PROFILE_UNDEFINED");
        assert_eq!(a.exit_code, 10);
        assert!(a.message.contains("\"qa\""), "{}", a.message);
        assert!(
            a.remediation[0].contains("/ws/nx.json"),
            "{:?}",
            a.remediation
        );
        // A name no profile can have is bad input, cut short in the message.
        for bad in ["../x", "a b", &"p".repeat(10_240)] {
            let a = resolve_profile(Some(bad), &c, Path::new("/ws/nx.json"))
                .unwrap_err()
                .actionable("start");
            assert_eq!(a.code, "EXIT_USAGE", "{bad:.20}");
            assert!(a.message.len() < 200, "{}", a.message);
        }
    }

    #[test]
    fn malformed_json_names_file_and_line() {
        let err = parse_plugin_config("{\n  \"pluginsConfig\": ,\n}", Path::new("/ws/nx.json"))
            .unwrap_err();
        let a = err.actionable("x");
        assert_eq!(a.code, "EXIT_USAGE");
        assert!(a.message.contains("/ws/nx.json: line 2"), "{}", a.message);
    }

    #[test]
    fn restart_policies_are_validated_when_nx_json_is_read() {
        let text = r#"{"pluginsConfig":{"@workspace/orchestrator":{
            "restartPolicy":{"backoffInitialMs":1000},
            "services":{"server":{"restartPolicy":{"profiles":{"production":{"backoffMaxMs":500}}}}}}}}"#;
        let err = parse_plugin_config(text, Path::new("/ws/nx.json")).unwrap_err();
        let m = err.message();
        assert!(
            m.contains("/ws/nx.json") && m.contains("services.server.restartPolicy.backoffMaxMs"),
            "{m}"
        );
        assert!(m.contains("production"), "{m}");
        let ok = cfg(r#"{"pluginsConfig":{"@workspace/orchestrator":{
            "restartPolicy":{"maxRestarts":3},
            "services":{"server":{"restartPolicy":{"windowSeconds":60}}}}}}"#);
        let p = ok
            .restart_policy_for("server", "staging", Path::new("nx.json"))
            .unwrap();
        assert_eq!((p.max_restarts, p.window_seconds), (3, 60));
        assert_eq!(
            ok.restart_policy_for("admin", "staging", Path::new("nx.json"))
                .unwrap()
                .window_seconds,
            600
        );
    }

    #[test]
    fn wrong_type_in_section_is_reported_with_the_key() {
        let err = parse_plugin_config(
            r#"{"pluginsConfig":{"@workspace/orchestrator":{"profiles":"staging"}}}"#,
            Path::new("/ws/nx.json"),
        )
        .unwrap_err();
        assert!(err
            .message()
            .contains("pluginsConfig[\"@workspace/orchestrator\"]"));
    }
}
