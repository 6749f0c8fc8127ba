//! `verify`'s report as text: the problems, then the dry run per profile.

use serde_json::Value;

use super::model::{Problem, Report, MASK};

/// Pure: the report as text: per profile the start order and what would run, then the
/// problems (or that there are none).
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    for p in &r.profiles {
        s += &format!(
            "profile {}: start order {}\n",
            p.profile,
            p.order.join(" → ")
        );
        for d in &p.services {
            let waits = if d.waits_on.is_empty() {
                String::new()
            } else {
                format!(" (waits on {})", d.waits_on.join(", "))
            };
            s += &format!(
                "  {:<12} {:<10} {}{waits}\n",
                d.name,
                d.kind,
                summary(&d.definition)
            );
        }
    }
    let item = |mark: &str, p: &Problem| {
        let at = if p.at.is_empty() {
            String::new()
        } else {
            format!(" {}", p.at)
        };
        let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
        let profile = p
            .profile
            .as_ref()
            .map(|x| format!(" [{x}]"))
            .unwrap_or_default();
        format!(
            "{mark} {}{profile}: {}{line}{at}\n    {}\n    → {}\n",
            p.rule,
            p.file.display(),
            p.message,
            p.remediation
        )
    };
    for p in &r.warnings {
        s += &item("⚠", p);
    }
    for p in &r.problems {
        s += &item("✗", p);
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    s += &match (r.problems.len(), r.warnings.len()) {
        (0, 0) => "verify: no problems\n".to_string(),
        (0, w) => format!("verify: no problems ({})\n", plural(w, "warning")),
        (p, 0) => format!("verify: {}\n", plural(p, "problem")),
        (p, w) => format!(
            "verify: {} ({})\n",
            plural(p, "problem"),
            plural(w, "warning")
        ),
    };
    s
}

/// One line about a dry-run definition.
fn summary(d: &Value) -> String {
    let str_of = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default();
    let env_names = |v: Option<&Value>| -> String {
        match v {
            Some(Value::Object(o)) => o
                .keys()
                .filter(|k| !k.starts_with("ORCHESTRATOR_"))
                .map(|k| format!("{k}={MASK}"))
                .collect::<Vec<_>>()
                .join(" "),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        }
    };
    if d.get("image").is_some() {
        let ports: Vec<String> = d
            .get("ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        format!(
                            "{}:{}",
                            p.get("hostPort").map(Value::to_string).unwrap_or_default(),
                            p.get("containerPort")
                                .map(Value::to_string)
                                .unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "container {} image {} ports [{}] env {}",
            str_of("name"),
            str_of("image"),
            ports.join(", "),
            env_names(d.get("env"))
        )
    } else {
        let mode = str_of("exec_mode");
        format!(
            "pm2 {} {}{} env {}",
            str_of("script"),
            if mode.is_empty() { "fork" } else { mode },
            d.get("instances")
                .map(|i| format!(" ×{i}"))
                .unwrap_or_default(),
            env_names(d.get("env"))
        )
    }
}
