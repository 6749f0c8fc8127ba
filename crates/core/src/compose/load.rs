//! Loading a project: the stages in compose-go's order, every service normalized, every
//! resource read, every problem kept with its file, key and line.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::check::cross_check;
use super::files::*;
use super::model::*;
use super::stages::*;
use super::{merge, service, yaml};
use crate::error::Error;

/// Loads the workspace's compose project. `None` when it has no compose file.
pub fn load(req: &LoadRequest) -> Option<ComposeFile> {
    let pre = |k: &str| -> Option<String> {
        (req.shell)(k).or_else(|| {
            req.profile_vars
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
    };
    let files = find_files(req.fs, req.root, &pre)?;
    let main = files[0].clone();
    let dir = main.parent().unwrap_or(req.root).to_path_buf();
    let mut diags = Vec::new();
    let dotenv = match project_dotenv(req.fs, &dir, req.shell) {
        Ok(v) => v,
        Err(e) => {
            let (file, key, message) = match &e {
                Error::InvalidConfig { file, key, message } => {
                    (file.clone(), key.clone(), message.clone())
                }
                other => (dir.join(".env"), String::new(), other.message()),
            };
            diags.push(Diag {
                severity: DiagLevel::Error,
                line: key.strip_prefix("line ").and_then(|n| n.parse().ok()),
                file,
                key,
                service: None,
                message,
                remediation: "Fix the project's .env (dotenv: NAME=value per line)".into(),
                var: None,
            });
            Vec::new()
        }
    };
    // compose's order: the shell, then (ours) the profile's env file, then the project's .env.
    let lookup = |k: &str| -> Option<String> {
        pre(k).or_else(|| {
            dotenv
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
    };
    let mut l = Loader {
        fs: req.fs,
        lookup: &lookup,
        diags,
        origin: BTreeMap::new(),
        main_dir: dir.clone(),
    };
    let mut out = ComposeFile {
        file: main.clone(),
        dir: dir.clone(),
        ..Default::default()
    };
    let Some(mut first) = l.read(&main) else {
        out.diags = l.diags;
        return Some(out);
    };
    l.note_origins(&first);
    l.includes(&mut first, 0, &mut vec![main.clone()]);
    let main_lines = first.lines.clone();
    let mut tree = first.tree;
    for f in &files[1..] {
        if let Some(mut o) = l.read(f) {
            l.note_origins(&o);
            l.includes(&mut o, 0, &mut vec![f.clone()]);
            tree = merge::merge_files(tree, o.tree);
        }
    }
    l.extends(&mut tree, &main, &main_lines);
    let mut tree_v = Value::Mapping(tree);
    yaml::drop_tags(&mut tree_v);
    let Value::Mapping(tree) = tree_v else {
        unreachable!()
    };

    for k in tree.keys() {
        match k.as_str() {
            Some("models") => l.file_diag(
                DiagLevel::Warning,
                &main,
                Some(&main_lines),
                "models",
                "`models` (AI models) are not provided".into(),
                "Run model services outside the orchestrator".into(),
            ),
            Some(key) if TOP_LEVEL_KEYS.contains(&key) => {}
            Some(key) => l.file_diag(DiagLevel::Error, &main, Some(&main_lines), key, "is not a top-level key of the compose specification (services, networks, volumes, secrets, configs, include, name, x-…)".into(), format!("Remove `{key}`, or rename it `x-{key}` to keep it as an extension")),
            None => {}
        }
    }
    out.name = tree.get("name").and_then(service::scalar);
    // Top-level resources.
    let section = |k: &str| match tree.get(k) {
        Some(Value::Mapping(m)) => m.clone(),
        _ => Mapping::new(),
    };
    for (k, v) in section("volumes") {
        let Some(name) = service::scalar(&k) else {
            continue;
        };
        let m = match v {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        };
        let (external, explicit) = external_and_name(&m);
        out.volumes.insert(
            name,
            VolumeDef {
                name: explicit,
                external,
                driver: m.get("driver").and_then(service::scalar),
                driver_opts: kv(m.get("driver_opts")),
                labels: kv(m.get("labels")),
            },
        );
    }
    for (k, v) in section("networks") {
        let Some(name) = service::scalar(&k) else {
            continue;
        };
        let m = match v {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        };
        let mut ipam = Vec::new();
        let mut ipam_driver = None;
        if let Some(Value::Mapping(i)) = m.get("ipam") {
            ipam_driver = i.get("driver").and_then(service::scalar);
            if let Some(Value::Sequence(cfgs)) = i.get("config") {
                for c in cfgs {
                    if let Value::Mapping(c) = c {
                        ipam.push(IpamPool {
                            subnet: c.get("subnet").and_then(service::scalar),
                            gateway: c.get("gateway").and_then(service::scalar),
                            ip_range: c.get("ip_range").and_then(service::scalar),
                        });
                    }
                }
            }
        }
        let (external, explicit) = external_and_name(&m);
        out.networks.insert(
            name,
            NetworkDef {
                name: explicit,
                external,
                driver: m.get("driver").and_then(service::scalar),
                driver_opts: kv(m.get("driver_opts")),
                internal: flag(&m, "internal"),
                attachable: flag(&m, "attachable"),
                enable_ipv6: flag(&m, "enable_ipv6"),
                labels: kv(m.get("labels")),
                ipam_driver,
                ipam,
            },
        );
    }
    for (sec, is_secret) in [("secrets", true), ("configs", false)] {
        for (k, v) in section(sec) {
            let Some(name) = service::scalar(&k) else {
                continue;
            };
            let m = match v {
                Value::Mapping(m) => m,
                _ => Mapping::new(),
            };
            let key = format!("{sec}.{name}");
            let mut def = FileDef {
                external: flag(&m, "external"),
                ..Default::default()
            };
            if let Some(f) = m.get("file").and_then(service::scalar) {
                def.file = Some(service::clean(&dir.join(f)));
            } else if let Some(var) = m.get("environment").and_then(service::scalar) {
                match lookup(&var) {
                    Some(val) => def.content = Some(val),
                    None => l.file_diag(DiagLevel::Error, &main, Some(&main_lines), &format!("{key}.environment"), format!("names {var}, which is not set"), format!("Set {var} in the shell, config/env/<profile>.env or the project's .env")),
                }
            } else if let Some(c) = m
                .get("content")
                .and_then(service::scalar)
                .filter(|_| !is_secret)
            {
                def.content = Some(c);
            } else if !def.external {
                l.file_diag(
                    DiagLevel::Error,
                    &main,
                    Some(&main_lines),
                    &key,
                    format!(
                        "needs `file` or `environment`{}",
                        if is_secret { "" } else { " or `content`" }
                    ),
                    "Point it at a file: `file: ./secret.txt`".into(),
                );
            }
            if def.external {
                l.file_diag(
                    DiagLevel::Warning,
                    &main,
                    Some(&main_lines),
                    &key,
                    format!("external {sec} live in swarm; services using it start without it"),
                    format!("Use `file:` for {sec} on one host"),
                );
            }
            if is_secret {
                out.secrets.insert(name, def);
            } else {
                out.configs.insert(name, def);
            }
        }
    }

    // Services.
    let services = match tree.get("services") {
        Some(Value::Mapping(m)) => m.clone(),
        None | Some(Value::Null) => Mapping::new(),
        Some(_) => {
            l.file_diag(
                DiagLevel::Error,
                &main,
                Some(&main_lines),
                "services",
                "must be a mapping of service definitions".into(),
                "Write `services:` followed by one mapping per service".into(),
            );
            Mapping::new()
        }
    };
    let mut diags = std::mem::take(&mut l.diags);
    for (k, v) in &services {
        let Some(name) = service::scalar(k) else {
            continue;
        };
        out.names.push(name.clone());
        let (file, lines) = l
            .origin
            .get(&name)
            .cloned()
            .unwrap_or_else(|| (main.clone(), main_lines.clone()));
        if !crate::names::is_valid_name(&name) {
            diags.push(Diag { severity: DiagLevel::Error, line: lines.line(&format!("services.{name}")), key: format!("services.{name}"), file, service: Some(name.clone()), message: "is not a service name the orchestrator can use (letters, digits, '.', '_', '-', at most 64)".into(), remediation: "Rename the service".into(), var: None });
            continue;
        }
        let empty = Mapping::new();
        let m = match v {
            Value::Mapping(m) => m,
            // `name:` with nothing under it is an empty definition (which then lacks an image).
            Value::Null => &empty,
            _ => {
                diags.push(Diag {
                    severity: DiagLevel::Error,
                    line: lines.line(&format!("services.{name}")),
                    key: format!("services.{name}"),
                    file,
                    service: Some(name.clone()),
                    message: "must be a mapping".into(),
                    remediation: "Give the service at least `image:`".into(),
                    var: None,
                });
                continue;
            }
        };
        let mut c = service::Ctx {
            file: &file,
            dir: &dir,
            lines: &lines,
            service: &name,
            diags: &mut diags,
            lookup: &lookup,
        };
        let s = service::normalize(&mut c, m);
        out.services.push(s);
    }
    // compose profiles: COMPOSE_PROFILES, then the plugin's per-profile list.
    out.active_profiles = lookup("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for p in req.compose_profiles {
        if !out.active_profiles.contains(p) {
            out.active_profiles.push(p.clone());
        }
    }
    cross_check(&mut out, &mut diags, &main, &main_lines);
    // Services with an error are not in `services` (they cannot start); `names` keeps them.
    let broken: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .filter_map(|d| d.service.clone())
        .collect();
    out.services.retain(|s| !broken.contains(&s.name));
    out.diags = diags;
    Some(out)
}
