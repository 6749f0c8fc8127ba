//! The cross-checks once every service loaded: references to services, networks, volumes,
//! secrets and configs that exist, `depends_on` without cycles, what one host cannot honour.

use std::collections::BTreeMap;
use std::path::Path;

use super::model::*;
use super::yaml::LineIndex;

/// References between services and resources: `depends_on`, named volumes, networks, secrets,
/// configs, `network_mode: service:…`, `extends` cycles in `depends_on`.
pub(crate) fn cross_check(
    out: &mut ComposeFile,
    diags: &mut Vec<Diag>,
    file: &Path,
    lines: &LineIndex,
) {
    let names = out.names.clone();
    let mut push =
        |sev: DiagLevel, service: &str, key: String, message: String, remediation: String| {
            diags.push(Diag {
                severity: sev,
                file: file.to_path_buf(),
                line: lines.line(&key),
                key,
                service: Some(service.to_string()),
                message,
                remediation,
                var: None,
            });
        };
    let volumes = out.volumes.clone();
    let networks = out.networks.clone();
    for s in out.services.iter_mut() {
        let n = s.name.clone();
        s.depends_on.retain(|d| {
            if names.contains(&d.name) && d.name != n {
                return true;
            }
            let key = format!("services.{n}.depends_on.{}", d.name);
            if d.required {
                push(
                    DiagLevel::Error,
                    &n,
                    key,
                    format!(
                        "names \"{}\", which is not another service of this project",
                        d.name
                    ),
                    "Name a service of the compose file, or add `required: false`".into(),
                );
            } else {
                push(
                    DiagLevel::Warning,
                    &n,
                    key,
                    format!(
                        "optional dependency \"{}\" is not defined; it is skipped",
                        d.name
                    ),
                    "Nothing to do if that is expected".into(),
                );
            }
            false
        });
        for (i, m) in s.volumes.iter().enumerate() {
            if m.kind == MountKind::Volume {
                if let Some(v) = &m.source {
                    if !volumes.contains_key(v) {
                        push(DiagLevel::Error, &n, format!("services.{n}.volumes[{i}]"), format!("named volume \"{v}\" is not declared under top-level `volumes`"), format!("Add `volumes: {{ {v}: {{}} }}` at the top level, or use a path (./{v}) for a bind mount"));
                    }
                }
            }
        }
        for a in &s.networks {
            if a.key != "default" && !networks.contains_key(&a.key) {
                push(
                    DiagLevel::Error,
                    &n,
                    format!("services.{n}.networks.{}", a.key),
                    format!(
                        "network \"{}\" is not declared under top-level `networks`",
                        a.key
                    ),
                    format!("Add `networks: {{ {}: {{}} }}` at the top level", a.key),
                );
            }
        }
        for (sec, list, defs) in [
            ("secrets", &s.secrets, &out.secrets),
            ("configs", &s.configs, &out.configs),
        ] {
            for (i, f) in list.iter().enumerate() {
                if !defs.contains_key(&f.source) {
                    push(
                        DiagLevel::Error,
                        &n,
                        format!("services.{n}.{sec}[{i}]"),
                        format!(
                            "{} \"{}\" is not declared under top-level `{sec}`",
                            &sec[..sec.len() - 1],
                            f.source
                        ),
                        format!(
                            "Declare it: `{sec}: {{ {}: {{ file: ./{} }} }}`",
                            f.source, f.source
                        ),
                    );
                }
            }
        }
        for (k, v) in [
            ("network_mode", s.network_mode.clone()),
            ("pid", s.engine.pid.clone()),
            ("ipc", s.engine.ipc.clone()),
        ] {
            if let Some(other) = v.as_deref().and_then(|x| x.strip_prefix("service:")) {
                if !names.contains(&other.to_string()) {
                    push(
                        DiagLevel::Error,
                        &n,
                        format!("services.{n}.{k}"),
                        format!("names service \"{other}\", which this project does not define"),
                        "Name a service of the compose file".into(),
                    );
                }
            }
        }
        if s.replicas > 1 && s.container_name.is_some() {
            push(
                DiagLevel::Error,
                &n,
                format!("services.{n}.container_name"),
                "a fixed container_name cannot have more than one replica".into(),
                "Remove container_name or set replicas to 1".into(),
            );
        }
    }
    // Dependency cycles.
    let graph: BTreeMap<String, Vec<String>> = out
        .services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.depends_on.iter().map(|d| d.name.clone()).collect(),
            )
        })
        .collect();
    fn visit(
        n: &str,
        g: &BTreeMap<String, Vec<String>>,
        stack: &mut Vec<String>,
        done: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        if done.iter().any(|d| d == n) {
            return;
        }
        if let Some(p) = stack.iter().position(|s| s == n) {
            let mut c = stack[p..].to_vec();
            c.push(n.to_string());
            cycles.push(c);
            return;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, stack, done, cycles);
        }
        stack.pop();
        done.push(n.to_string());
    }
    let mut cycles = Vec::new();
    let mut done = Vec::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    for c in cycles {
        let first = c[0].clone();
        diags.push(Diag {
            severity: DiagLevel::Error,
            file: file.to_path_buf(),
            line: lines.line(&format!("services.{first}.depends_on")),
            key: format!("services.{first}.depends_on"),
            service: Some(first.clone()),
            message: format!("dependency cycle: {}", c.join(" → ")),
            remediation: "Remove one depends_on of the cycle".into(),
            var: None,
        });
    }
    // A service depending on a broken one cannot start either.
    loop {
        let broken: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error())
            .filter_map(|d| d.service.clone())
            .collect();
        let mut added = false;
        for s in &out.services {
            if broken.contains(&s.name) {
                continue;
            }
            if let Some(d) = s
                .depends_on
                .iter()
                .find(|d| d.required && broken.contains(&d.name))
            {
                diags.push(Diag {
                    severity: DiagLevel::Error,
                    file: file.to_path_buf(),
                    line: lines.line(&format!("services.{}.depends_on", s.name)),
                    key: format!("services.{}.depends_on.{}", s.name, d.name),
                    service: Some(s.name.clone()),
                    message: format!("depends on \"{}\", which has errors of its own", d.name),
                    remediation: format!("Fix \"{}\" first", d.name),
                    var: None,
                });
                added = true;
            }
        }
        if !added {
            break;
        }
    }
}
