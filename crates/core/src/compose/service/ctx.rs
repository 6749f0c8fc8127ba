//! Reading one service: the context a key is read in (its file, line index, where problems go)
//! and the typed readers every key uses (strings, booleans, integers, durations, byte sizes,
//! lists, key/value maps), each saying what is wrong with the value it was given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::compose::merge::key_value_mapping;
use crate::compose::model::*;
use crate::compose::yaml::LineIndex;

pub struct Ctx<'a> {
    pub file: &'a Path,
    /// The directory relative paths of this service resolve against.
    pub dir: &'a Path,
    pub lines: &'a LineIndex,
    pub service: &'a str,
    pub diags: &'a mut Vec<Diag>,
    /// What bare `environment` entries take their value from.
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    pub(crate) fn at(&self, key: &str) -> String {
        format!("services.{}.{key}", self.service)
    }

    pub(crate) fn push(
        &mut self,
        severity: DiagLevel,
        key: &str,
        message: String,
        remediation: String,
    ) {
        let path = if key.is_empty() {
            format!("services.{}", self.service)
        } else {
            self.at(key)
        };
        self.diags.push(Diag {
            severity,
            file: self.file.to_path_buf(),
            line: self.lines.line(&path),
            key: path,
            service: Some(self.service.to_string()),
            message,
            remediation,
            var: None,
        });
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let key_shown = self.at(key);
        self.push(
            DiagLevel::Error,
            key,
            message.into(),
            format!("Fix `{key_shown}` in {}", self.file.display()),
        );
    }

    pub fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.push(
            DiagLevel::Warning,
            key,
            message.into(),
            "Nothing to do if that is acceptable; otherwise run this service with docker compose"
                .into(),
        );
    }

    pub(crate) fn resolve(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/") {
            return PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest);
        }
        if p == "~" {
            return PathBuf::from(std::env::var("HOME").unwrap_or_default());
        }
        let joined = self.dir.join(p.strip_prefix("./").unwrap_or(p));
        clean(&joined)
    }
}

/// `a/./b/../c` → `a/c` without touching the file system.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn string(c: &mut Ctx, v: &Value, key: &str) -> Option<String> {
    let s = scalar(v);
    if s.is_none() {
        c.error(key, "must be a string");
    }
    s
}

pub(crate) fn boolean(c: &mut Ctx, v: &Value, key: &str) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if matches!(s.as_str(), "true" | "True" | "TRUE" | "yes") => Some(true),
        Value::String(s) if matches!(s.as_str(), "false" | "False" | "FALSE" | "no") => Some(false),
        _ => {
            c.error(key, "must be true or false");
            None
        }
    }
}

pub(crate) fn integer(c: &mut Ctx, v: &Value, key: &str) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if n.is_none() {
        c.error(key, "must be an integer");
    }
    n
}

/// Go's duration syntax, as compose takes it: `1m30s`, `1.5s`, `300ms`, `2h`, `0`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * factor;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

pub(crate) fn duration(c: &mut Ctx, v: &Value, key: &str) -> Option<Duration> {
    let s = string(c, v, key)?;
    let d = parse_duration(&s);
    if d.is_none() {
        c.error(
            key,
            format!("\"{s}\" is not a duration like 10s, 1m30s or 500ms"),
        );
    }
    d
}

/// Byte sizes as the engine reads them: `512m`, `1g`, `1gb`, `64M`, `1024` (binary units).
pub fn parse_bytes(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..num_end].parse().ok()?;
    let unit = t[num_end..].trim();
    let f: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * f) as i64)
}

pub(crate) fn bytes(c: &mut Ctx, v: &Value, key: &str) -> Option<i64> {
    let s = string(c, v, key)?;
    let b = parse_bytes(&s);
    if b.is_none() {
        c.error(key, format!("\"{s}\" is not a size like 512m or 1g"));
    }
    b
}

pub(crate) fn words(c: &mut Ctx, v: &Value, key: &str) -> Option<Vec<String>> {
    match v {
        Value::Sequence(items) => {
            let mut out = Vec::new();
            for (i, x) in items.iter().enumerate() {
                out.push(string(c, x, &format!("{key}[{i}]"))?);
            }
            Some(out)
        }
        Value::Null => None,
        other => {
            let s = string(c, other, key)?;
            let w = shlex::split(&s);
            if w.is_none() {
                c.error(key, "has unbalanced quotes");
            }
            w
        }
    }
}

pub(crate) fn strings(c: &mut Ctx, v: &Value, key: &str) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, x)| string(c, x, &format!("{key}[{i}]")))
            .collect(),
        Value::Null => Vec::new(),
        other => string(c, other, key).into_iter().collect(),
    }
}

pub(crate) fn key_values(
    c: &mut Ctx,
    v: &Value,
    key: &str,
    from_env: bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(m) = key_value_mapping(v) else {
        if !v.is_null() {
            c.error(key, "must be a mapping or a list of KEY=value");
        }
        return out;
    };
    for (k, val) in &m {
        let Some(name) = scalar(k) else {
            c.error(key, "keys must be strings");
            continue;
        };
        match val {
            Value::Null => {
                if from_env {
                    if let Some(x) = (c.lookup)(&name) {
                        out.insert(name, x);
                    }
                } else {
                    out.insert(name, String::new());
                }
            }
            other => {
                if let Some(s) = string(c, other, &format!("{key}.{name}")) {
                    out.insert(name, s);
                }
            }
        }
    }
    out
}
