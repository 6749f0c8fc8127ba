//! Pure: the container a compose service becomes for one workspace and profile — name, image,
//! env, ports, mounts, healthcheck, network and the labels that make it recognisable (compose's
//! own plus ours). The spec travels as JSON to the container runner, and its hash decides whether
//! a running container can be adopted or must be recreated.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compose::{ComposeFile, ComposeService, Condition, MountSource};

pub const LABEL_WORKSPACE: &str = "dev.orchestrator.workspace";
pub const LABEL_PROFILE: &str = "dev.orchestrator.profile";
pub const LABEL_SERVICE: &str = "dev.orchestrator.service";
pub const LABEL_HASH: &str = "dev.orchestrator.config-hash";
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";
pub const COMPOSE_NUMBER: &str = "com.docker.compose.container-number";

/// compose's default `stop_grace_period`.
pub const DEFAULT_STOP_SECONDS: u64 = 10;
pub const DEFAULT_HEALTH_TIMEOUT_SECONDS: u64 = 90;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortSpec {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// Engine-side volume name (`<project>_<name>` as compose names it).
    pub name: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSpec {
    pub test: Vec<String>,
    pub interval_ns: Option<i64>,
    pub timeout_ns: Option<i64>,
    pub retries: Option<i64>,
    pub start_period_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    pub service: String,
    pub workspace: String,
    pub profile: String,
    pub project: String,
    /// Container name: `container_name`, else `<project>-<service>-1` as compose names it.
    pub name: String,
    pub image: String,
    /// `NAME=value`, sorted by name (env_file first, `environment` wins).
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub ports: Vec<PortSpec>,
    /// Bind mounts as the engine takes them: `/abs/src:/target[:ro]`.
    pub binds: Vec<String>,
    pub volumes: Vec<VolumeSpec>,
    /// `None`: the image's own healthcheck applies (if any). `["NONE"]` disables it.
    pub healthcheck: Option<HealthSpec>,
    pub labels: BTreeMap<String, String>,
    /// The project network (`<project>_default`); services reach each other by service name.
    pub network: String,
    pub stop_timeout_seconds: u64,
    /// How long `start` waits for healthy (not part of the container's identity).
    #[serde(default)]
    pub health_timeout_seconds: u64,
}

impl ContainerSpec {
    /// Identity of what the engine would run: everything but the wait limit.
    pub fn config_hash(&self) -> String {
        let mut s = self.clone();
        s.health_timeout_seconds = 0;
        let bytes = serde_json::to_vec(&s).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
    }

    /// Labels on the created container: ours + compose's + the config hash.
    pub fn container_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        l.insert(LABEL_HASH.into(), self.config_hash());
        l
    }

    pub fn has_healthcheck(&self, image_has_one: bool) -> bool {
        match &self.healthcheck {
            Some(h) => h.test.first().map(String::as_str) != Some("NONE"),
            None => image_has_one,
        }
    }

    pub fn host_ports(&self) -> Vec<u16> {
        self.ports.iter().map(|p| p.host_port).collect()
    }
}

/// compose's project-name rule: lowercase letters, digits, `_`, `-`.
pub fn project_name(compose: &ComposeFile, workspace_name: &str) -> String {
    let raw = compose
        .name
        .clone()
        .unwrap_or_else(|| workspace_name.into());
    let mut s: String = raw
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_matches(|c| c == '-' || c == '_').to_string();
    if s.is_empty() {
        "workspace".into()
    } else {
        s
    }
}

fn nanos(d: Option<std::time::Duration>) -> Option<i64> {
    d.map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
}

pub struct SpecInput<'a> {
    pub workspace_root: &'a Path,
    pub workspace_name: &'a str,
    pub profile: &'a str,
    pub compose: &'a ComposeFile,
    pub service: &'a ComposeService,
    /// Variables read from the service's `env_file`s, in order.
    pub env_file_vars: Vec<(String, String)>,
    pub health_timeout_seconds: Option<u64>,
}

/// Pure: the container for a compose service.
pub fn spec(input: SpecInput) -> ContainerSpec {
    let s = input.service;
    let project = project_name(input.compose, input.workspace_name);
    let mut env: BTreeMap<String, String> = input.env_file_vars.into_iter().collect();
    for (k, v) in &s.environment {
        env.insert(k.clone(), v.clone());
    }
    let mut binds = Vec::new();
    let mut volumes = Vec::new();
    for m in &s.volumes {
        match &m.source {
            MountSource::Bind(p) => binds.push(format!(
                "{}:{}{}",
                p.display(),
                m.target,
                if m.read_only { ":ro" } else { "" }
            )),
            MountSource::Named(n) => volumes.push(VolumeSpec {
                name: format!("{project}_{n}"),
                target: m.target.clone(),
                read_only: m.read_only,
            }),
        }
    }
    let mut labels = s.labels.clone();
    labels.insert(COMPOSE_PROJECT.into(), project.clone());
    labels.insert(COMPOSE_SERVICE.into(), s.name.clone());
    labels.insert(COMPOSE_ONEOFF.into(), "False".into());
    labels.insert(COMPOSE_NUMBER.into(), "1".into());
    labels.insert(
        LABEL_WORKSPACE.into(),
        input.workspace_root.display().to_string(),
    );
    labels.insert(LABEL_PROFILE.into(), input.profile.into());
    labels.insert(LABEL_SERVICE.into(), s.name.clone());
    ContainerSpec {
        service: s.name.clone(),
        workspace: input.workspace_root.display().to_string(),
        profile: input.profile.into(),
        name: s
            .container_name
            .clone()
            .unwrap_or_else(|| format!("{project}-{}-1", s.name)),
        network: format!("{project}_default"),
        project,
        image: s.image.clone(),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cmd: s.command.clone(),
        entrypoint: s.entrypoint.clone(),
        ports: s
            .ports
            .iter()
            .map(|p| PortSpec {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol.clone(),
            })
            .collect(),
        binds,
        volumes,
        healthcheck: s.healthcheck.as_ref().map(|h| HealthSpec {
            test: h.test.clone(),
            interval_ns: nanos(h.interval),
            timeout_ns: nanos(h.timeout),
            retries: h.retries.map(i64::from),
            start_period_ns: nanos(h.start_period),
        }),
        labels,
        stop_timeout_seconds: s
            .stop_grace_period
            .map(|d| d.as_secs().max(1))
            .unwrap_or(DEFAULT_STOP_SECONDS),
        health_timeout_seconds: input
            .health_timeout_seconds
            .unwrap_or(DEFAULT_HEALTH_TIMEOUT_SECONDS),
    }
}

/// Whether some service depends on `name` with `condition: service_healthy` (or any condition
/// when `any`): then `name` must be ready before its dependents start.
pub fn gates(compose: &ComposeFile, name: &str) -> bool {
    compose.services.iter().any(|s| {
        s.depends_on
            .iter()
            .any(|(d, c)| d == name && matches!(c, Condition::Healthy | Condition::Started))
    })
}

/// Pure: `wanted` plus everything it depends on (transitively), in `order`.
pub fn with_dependencies(
    compose: &ComposeFile,
    wanted: &[String],
    order: &[String],
) -> Vec<String> {
    let mut set: Vec<String> = Vec::new();
    let mut stack: Vec<String> = wanted.to_vec();
    while let Some(n) = stack.pop() {
        if set.contains(&n) {
            continue;
        }
        if let Some(s) = compose.services.iter().find(|s| s.name == n) {
            for (d, _) in &s.depends_on {
                stack.push(d.clone());
            }
        }
        set.push(n);
    }
    order.iter().filter(|o| set.contains(o)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn compose(text: &str) -> ComposeFile {
        let vars: BTreeMap<&str, &str> = [("PGPASS", "secret"), ("PGPORT", "15432")].into();
        crate::compose::parse(text, Path::new("/ws/docker-compose.yml"), &|k| {
            vars.get(k).map(|v| v.to_string())
        })
        .unwrap()
    }

    const TEXT: &str = r#"
services:
  postgres:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${PGPASS}
      SHARED: from-environment
    ports: ["${PGPORT}:5432"]
    volumes: [pgdata:/var/lib/postgresql/data, ./init:/docker-entrypoint-initdb.d:ro]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
      interval: 1s
      retries: 30
    labels: { team: data }
    stop_grace_period: 20s
  zitadel:
    image: ghcr.io/zitadel/zitadel:v2
    container_name: my-zitadel
    depends_on: { postgres: { condition: service_healthy } }
volumes: { pgdata: {} }
"#;

    fn build(c: &ComposeFile, i: usize) -> ContainerSpec {
        spec(SpecInput {
            workspace_root: Path::new("/ws"),
            workspace_name: "@acme/Shop",
            profile: "staging",
            compose: c,
            service: &c.services[i],
            env_file_vars: vec![
                ("SHARED".into(), "from-file".into()),
                ("ONLY_FILE".into(), "1".into()),
            ],
            health_timeout_seconds: None,
        })
    }

    #[test]
    fn spec_carries_compose_and_our_labels_names_and_mounts() {
        let c = compose(TEXT);
        let s = build(&c, 0);
        assert_eq!(s.project, "acme-shop");
        assert_eq!(s.name, "acme-shop-postgres-1");
        assert_eq!(s.network, "acme-shop_default");
        assert_eq!(s.labels[COMPOSE_PROJECT], "acme-shop");
        assert_eq!(s.labels[COMPOSE_SERVICE], "postgres");
        assert_eq!(s.labels[LABEL_WORKSPACE], "/ws");
        assert_eq!(s.labels[LABEL_PROFILE], "staging");
        assert_eq!(s.labels["team"], "data");
        assert_eq!(
            s.env,
            vec![
                "ONLY_FILE=1",
                "POSTGRES_PASSWORD=secret",
                "SHARED=from-environment"
            ]
        );
        assert_eq!(s.ports[0].host_port, 15432);
        assert_eq!(s.binds, vec!["/ws/init:/docker-entrypoint-initdb.d:ro"]);
        assert_eq!(s.volumes[0].name, "acme-shop_pgdata");
        assert_eq!(s.stop_timeout_seconds, 20);
        assert_eq!(s.health_timeout_seconds, 90);
        let h = s.healthcheck.as_ref().unwrap();
        assert_eq!(h.interval_ns, Some(1_000_000_000));
        assert_eq!(h.retries, Some(30));
        assert!(s.has_healthcheck(false));
        let z = build(&c, 1);
        assert_eq!(z.name, "my-zitadel");
        assert!(!z.has_healthcheck(false) && z.has_healthcheck(true));
        assert_eq!(z.stop_timeout_seconds, DEFAULT_STOP_SECONDS);
    }

    #[test]
    fn hash_follows_identity_not_wait_limit() {
        let c = compose(TEXT);
        let a = build(&c, 0);
        let mut b = a.clone();
        b.health_timeout_seconds = 5;
        assert_eq!(a.config_hash(), b.config_hash());
        b.env.push("X=1".into());
        assert_ne!(a.config_hash(), b.config_hash());
        assert_eq!(a.container_labels()[LABEL_HASH], a.config_hash());
        let json = serde_json::to_string(&a).unwrap();
        let back: ContainerSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn dependency_closure_and_gates() {
        let c = compose(TEXT);
        let order = crate::compose::start_order(&c.services, &PathBuf::from("/ws/x.yml")).unwrap();
        assert_eq!(order, vec!["postgres", "zitadel"]);
        assert_eq!(
            with_dependencies(&c, &["zitadel".into()], &order),
            vec!["postgres", "zitadel"]
        );
        assert_eq!(
            with_dependencies(&c, &["postgres".into()], &order),
            vec!["postgres"]
        );
        assert!(gates(&c, "postgres"));
        assert!(!gates(&c, "zitadel"));
    }
}
