//! Merging compose trees, as the specification's `13-merge.md` says: an override file onto the
//! main file, and a service onto the one it `extends`. Mappings merge key by key; `command`,
//! `entrypoint` and `healthcheck.test` are replaced; `environment`, `labels` and the other
//! key/value lists merge by key whatever form each side uses; sequences append and keep one
//! entry per identity (a volume per target, a port per mapping, a secret per target);
//! `!reset` removes a value and `!override` replaces it whole.

use serde_yaml_ng::{Mapping, Value};

use super::yaml::tag_of;

/// Service keys whose list form `KEY=value` (or mapping) merges by key.
const KEY_VALUE: &[&str] = &["environment", "labels", "sysctls", "annotations"];
/// Service keys replaced whole by the later definition.
const REPLACED: &[&str] = &["command", "entrypoint"];

/// `[K=V, K]` (or a mapping) as a mapping `{K: V, K: null}`.
pub fn key_value_mapping(v: &Value) -> Option<Mapping> {
    match v {
        Value::Mapping(m) => Some(m.clone()),
        Value::Sequence(items) => {
            let mut m = Mapping::new();
            for i in items {
                let s = match i {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                match s.split_once('=') {
                    Some((k, val)) => m.insert(Value::from(k), Value::from(val)),
                    None => m.insert(Value::from(s.as_str()), Value::Null),
                };
            }
            Some(m)
        }
        _ => None,
    }
}

/// Service fields brought to the one form merging needs (lists of names to mappings).
pub fn canonical_service(s: &mut Mapping) {
    for k in KEY_VALUE {
        if let Some(v) = s.get(*k) {
            if let Some(m) = key_value_mapping(v) {
                s.insert(Value::from(*k), Value::Mapping(m));
            }
        }
    }
    if let Some(Value::Sequence(items)) = s.get("depends_on") {
        let mut m = Mapping::new();
        for i in items {
            if let Some(name) = i.as_str() {
                let mut c = Mapping::new();
                c.insert("condition".into(), "service_started".into());
                m.insert(Value::from(name), Value::Mapping(c));
            }
        }
        s.insert("depends_on".into(), Value::Mapping(m));
    }
    if let Some(Value::Sequence(items)) = s.get("networks") {
        let mut m = Mapping::new();
        for i in items {
            if let Some(name) = i.as_str() {
                m.insert(Value::from(name), Value::Null);
            }
        }
        s.insert("networks".into(), Value::Mapping(m));
    }
    if let Some(Value::String(ctx)) = s.get("build") {
        let mut m = Mapping::new();
        m.insert("context".into(), Value::from(ctx.as_str()));
        s.insert("build".into(), Value::Mapping(m));
    }
    if let Some(Value::Mapping(b)) = s.get_mut("build") {
        if let Some(m) = b.get("args").and_then(key_value_mapping) {
            b.insert("args".into(), Value::Mapping(m));
        }
        if let Some(m) = b.get("labels").and_then(key_value_mapping) {
            b.insert("labels".into(), Value::Mapping(m));
        }
    }
    if let Some(Value::String(f)) = s.get("env_file") {
        let f = f.clone();
        s.insert("env_file".into(), Value::Sequence(vec![Value::from(f)]));
    }
}

/// The identity of a sequence item under `key`: later items with the same identity replace
/// earlier ones.
fn identity(key: &str, item: &Value) -> String {
    let s = |v: &Value| serde_yaml_ng::to_string(v).unwrap_or_default();
    match (key, item) {
        ("volumes", Value::String(v)) => {
            let parts: Vec<&str> = v.split(':').collect();
            parts.get(1).or(parts.first()).unwrap_or(&"").to_string()
        }
        ("volumes" | "secrets" | "configs", Value::Mapping(m)) => m
            .get("target")
            .or_else(|| m.get("source"))
            .map(s)
            .unwrap_or_else(|| s(item)),
        ("secrets" | "configs", Value::String(v)) => v.clone(),
        ("env_file", Value::Mapping(m)) => m.get("path").map(s).unwrap_or_else(|| s(item)),
        _ => s(item),
    }
}

fn merge_sequence(key: &str, base: Vec<Value>, over: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in base.into_iter().chain(over) {
        let id = identity(key, &item);
        match out.iter().position(|x| identity(key, x) == id) {
            Some(p) => out[p] = item,
            None => out.push(item),
        }
    }
    out
}

/// Merges `over` onto `base` at `key` (the last key of the path, for the rules above).
fn merge_value(key: &str, base: Value, over: Value) -> Option<Value> {
    match tag_of(&over).as_deref() {
        Some("reset") => return None,
        Some("override") => {
            if let Value::Tagged(t) = over {
                return Some(t.value);
            }
        }
        _ => {}
    }
    if REPLACED.contains(&key) || key == "test" {
        return Some(over);
    }
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => Some(Value::Mapping(merge_mapping(b, o))),
        (Value::Sequence(b), Value::Sequence(o)) => {
            Some(Value::Sequence(merge_sequence(key, b, o)))
        }
        (_, o) => Some(o),
    }
}

pub fn merge_mapping(mut base: Mapping, over: Mapping) -> Mapping {
    for (k, v) in over {
        let key = k.as_str().unwrap_or("").to_string();
        match base.remove(&k) {
            Some(b) => {
                if let Some(m) = merge_value(&key, b, v) {
                    base.insert(k, m);
                }
            }
            None => {
                if tag_of(&v).as_deref() != Some("reset") {
                    base.insert(k, v);
                }
            }
        }
    }
    base
}

/// A service merged onto another (override file, or `extends`): both in canonical form.
pub fn merge_service(mut base: Mapping, mut over: Mapping) -> Mapping {
    canonical_service(&mut base);
    canonical_service(&mut over);
    merge_mapping(base, over)
}

/// A whole file merged onto another: services one by one, every other section key by key.
pub fn merge_files(mut base: Mapping, over: Mapping) -> Mapping {
    for (k, v) in over {
        if k.as_str() == Some("services") {
            let mut services = match base.remove("services") {
                Some(Value::Mapping(m)) => m,
                _ => Mapping::new(),
            };
            if let Value::Mapping(over_services) = v {
                for (name, def) in over_services {
                    let merged = match (services.remove(&name), def) {
                        (Some(Value::Mapping(b)), Value::Mapping(o)) => {
                            Value::Mapping(merge_service(b, o))
                        }
                        (_, d) => d,
                    };
                    services.insert(name, merged);
                }
            }
            base.insert("services".into(), Value::Mapping(services));
        } else {
            match base.remove(&k) {
                Some(b) => {
                    let key = k.as_str().unwrap_or("").to_string();
                    if let Some(m) = merge_value(&key, b, v) {
                        base.insert(k, m);
                    }
                }
                None => {
                    base.insert(k, v);
                }
            }
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Mapping {
        match serde_yaml_ng::from_str(text).unwrap() {
            Value::Mapping(m) => m,
            _ => panic!(),
        }
    }

    #[test]
    fn services_merge_as_the_specification_says() {
        let base = m("image: a\ncommand: [x, y]\nenvironment: [A=1, B=2]\nports: ['80:80']\nvolumes: ['d:/data', './c:/conf:ro']\nlabels: {l: 1}\nhealthcheck: {test: [CMD, a], interval: 5s}\ndepends_on: [db]\n");
        let over = m("image: b\ncommand: z\nenvironment: {B: 3, C: 4}\nports: ['81:81']\nvolumes: ['./d:/data']\nlabels: [m=2]\nhealthcheck: {test: [CMD, b]}\ndepends_on: {cache: {condition: service_healthy}}\n");
        let r = Value::Mapping(merge_service(base, over));
        assert_eq!(r["image"], Value::from("b"));
        assert_eq!(r["command"], Value::from("z"));
        assert_eq!(r["environment"], Value::Mapping(m("A: '1'\nB: 3\nC: 4\n")));
        assert_eq!(r["ports"].as_sequence().unwrap().len(), 2);
        assert_eq!(
            r["volumes"],
            serde_yaml_ng::from_str::<Value>("['./d:/data', './c:/conf:ro']").unwrap()
        );
        assert_eq!(r["labels"], Value::Mapping(m("l: 1\nm: '2'\n")));
        assert_eq!(
            r["healthcheck"]["test"],
            serde_yaml_ng::from_str::<Value>("[CMD, b]").unwrap()
        );
        assert_eq!(r["healthcheck"]["interval"], Value::from("5s"));
        assert_eq!(
            r["depends_on"]["db"]["condition"],
            Value::from("service_started")
        );
        assert_eq!(
            r["depends_on"]["cache"]["condition"],
            Value::from("service_healthy")
        );
    }

    #[test]
    fn reset_and_override_tags() {
        let base = m("ports: ['80:80']\nenvironment: {A: 1}\nhealthcheck: {test: [CMD, a]}\n");
        let over = m("ports: !reset []\nenvironment: !override {B: 2}\n");
        let r = merge_service(base, over);
        assert!(r.get("ports").is_none());
        assert_eq!(r["environment"], Value::Mapping(m("B: 2\n")));
    }
}
