//! The YAML stage of loading a compose file: parse, resolve `<<` merge keys (chained ones
//! too), drop `x-*` extension fields, honour compose's `!reset` / `!override` tags, and index
//! the line of every key path so that a problem can name its line.

use std::collections::HashMap;

use serde_yaml_ng::{Mapping, Value};

/// Parses YAML text into a value; the error names the line and column.
pub fn parse(text: &str) -> Result<Value, (Option<u32>, String)> {
    let mut v: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        (
            e.location().map(|l| l.line() as u32),
            format!("YAML does not parse: {e}"),
        )
    })?;
    merge_keys(&mut v).map_err(|m| (None, m))?;
    Ok(v)
}

/// `<<: *anchor` and `<<: [*a, *b]`: keys of the mapping win, then the sources in order. A
/// source that itself merges is resolved first (serde_yaml_ng's `apply_merge` leaves a chained
/// `<<` behind).
pub fn merge_keys(v: &mut Value) -> Result<(), String> {
    match v {
        Value::Mapping(m) => {
            let merge = m.remove("<<");
            for (_, x) in m.iter_mut() {
                merge_keys(x)?;
            }
            if let Some(mut src) = merge {
                merge_keys(&mut src)?;
                let sources =
                    match src {
                        Value::Mapping(s) => vec![s],
                        Value::Sequence(items) => items
                            .into_iter()
                            .map(|i| match untag(i) {
                                Value::Mapping(s) => Ok(s),
                                _ => Err("a `<<` list must hold mappings (anchors of mappings)"
                                    .to_string()),
                            })
                            .collect::<Result<_, _>>()?,
                        Value::Tagged(t) => match t.value {
                            Value::Mapping(s) => vec![s],
                            _ => return Err("`<<` must name a mapping".into()),
                        },
                        Value::Null => Vec::new(),
                        _ => return Err("`<<` must name a mapping (an anchor of a mapping)".into()),
                    };
                for s in sources {
                    for (k, x) in s {
                        if !m.contains_key(&k) {
                            m.insert(k, x);
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Sequence(items) => items.iter_mut().try_for_each(merge_keys),
        Value::Tagged(t) => merge_keys(&mut t.value),
        _ => Ok(()),
    }
}

fn untag(v: Value) -> Value {
    match v {
        Value::Tagged(t) => t.value,
        other => other,
    }
}

/// Keys whose mapping holds user data (variable names, labels), where `x-` is not an extension.
const DATA_KEYS: &[&str] = &[
    "environment",
    "labels",
    "args",
    "sysctls",
    "driver_opts",
    "annotations",
    "extra_hosts",
    "options",
    "secrets",
    "configs",
];

/// Drops `x-*` keys from every mapping except those holding user data.
pub fn strip_extensions(v: &mut Value) {
    if let Value::Mapping(m) = v {
        m.retain(|k, _| !k.as_str().is_some_and(|s| s.starts_with("x-")));
        for (k, x) in m.iter_mut() {
            if k.as_str().is_some_and(|s| DATA_KEYS.contains(&s)) {
                continue;
            }
            strip_extensions(x);
        }
    } else if let Value::Sequence(items) = v {
        items.iter_mut().for_each(strip_extensions);
    }
}

/// The tag compose gives a value (`!reset`, `!override`), if any.
pub fn tag_of(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string().trim_start_matches('!').to_string()),
        _ => None,
    }
}

/// Removes tags from a tree once merging is done: `!reset` becomes nothing, `!override` its value.
pub fn drop_tags(v: &mut Value) {
    match v {
        Value::Tagged(t) => {
            let inner = std::mem::take(&mut t.value);
            *v = inner;
            drop_tags(v);
        }
        Value::Mapping(m) => {
            let reset: Vec<Value> = m
                .iter()
                .filter(|(_, x)| tag_of(x).as_deref() == Some("reset"))
                .map(|(k, _)| k.clone())
                .collect();
            for k in reset {
                m.remove(&k);
            }
            for (_, x) in m.iter_mut() {
                drop_tags(x);
            }
        }
        Value::Sequence(items) => {
            items.retain(|x| tag_of(x).as_deref() != Some("reset"));
            items.iter_mut().for_each(drop_tags);
        }
        _ => {}
    }
}

/// A mapping's string key lookup.
pub fn get<'a>(m: &'a Mapping, k: &str) -> Option<&'a Value> {
    m.get(k)
}

/// The line of each key path in block-style YAML (`services.db.ports[0]` → its line). Flow
/// style and odd layouts simply have fewer entries: a lookup falls back to the nearest parent.
#[derive(Debug, Default, Clone)]
pub struct LineIndex {
    lines: HashMap<String, u32>,
}

impl LineIndex {
    pub fn build(text: &str) -> LineIndex {
        let mut lines = HashMap::new();
        // (indent of the key or item, path of that node, next sequence index under it)
        let mut stack: Vec<(usize, String, usize)> = Vec::new();
        let mut block_scalar: Option<usize> = None;
        for (no, raw) in text.lines().enumerate() {
            let line_no = no as u32 + 1;
            let trimmed = raw.trim_start();
            let indent = raw.len() - trimmed.len();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(bi) = block_scalar {
                if indent > bi {
                    continue;
                }
                block_scalar = None;
            }
            if trimmed.starts_with("---") || trimmed.starts_with("...") {
                stack.clear();
                continue;
            }
            let mut rest = trimmed;
            let mut col = indent;
            // `- ` items, possibly several on one line (`- - a`), each one level deeper.
            while let Some(after) =
                rest.strip_prefix("- ")
                    .or(if rest == "-" { Some("") } else { None })
            {
                while stack.last().is_some_and(|(i, _, _)| *i >= col) {
                    stack.pop();
                }
                let (parent, idx) = match stack.last_mut() {
                    Some((_, p, n)) => {
                        let i = *n;
                        *n += 1;
                        (p.clone(), i)
                    }
                    None => (String::new(), 0),
                };
                let path = format!("{parent}[{idx}]");
                lines.entry(path.clone()).or_insert(line_no);
                stack.push((col, path, 0));
                let skipped = rest.len() - after.len();
                col += skipped;
                rest = after.trim_start();
                col += after.len() - rest.len();
            }
            if let Some((key, value)) = split_key(rest) {
                while stack.last().is_some_and(|(i, _, _)| *i >= col) {
                    stack.pop();
                }
                let parent = stack.last().map(|(_, p, _)| p.clone()).unwrap_or_default();
                let path = if parent.is_empty() {
                    key
                } else {
                    format!("{parent}.{key}")
                };
                lines.entry(path.clone()).or_insert(line_no);
                let v = value.trim();
                if v.starts_with('|') || v.starts_with('>') {
                    block_scalar = Some(col);
                }
                stack.push((col, path, 0));
            }
        }
        LineIndex { lines }
    }

    /// The line of `path`, else of its nearest parent.
    pub fn line(&self, path: &str) -> Option<u32> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// `key: value` → (key without quotes, value); `None` when the text is no mapping entry.
fn split_key(s: &str) -> Option<(String, &str)> {
    if s.starts_with(['{', '[', '"', '\'']) && !s.starts_with(['"', '\'']) {
        return None;
    }
    let (key, rest) = if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = s[1..].find(q)? + 1;
        let after = s[end + 1..].strip_prefix(':')?;
        (s[1..end].to_string(), after)
    } else {
        let pos = s
            .find(": ")
            .or_else(|| s.strip_suffix(':').map(|x| x.len()))?;
        let key = &s[..pos];
        if key.contains(" #") {
            return None;
        }
        (key.trim_end().to_string(), s.get(pos + 1..).unwrap_or(""))
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((key, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_merge_keys_resolve_and_own_keys_win() {
        let v = parse(
            "x-a: &a\n  A: 1\n  B: 1\nx-b: &b\n  <<: *a\n  B: 2\nservices:\n  s:\n    environment:\n      <<: [*b]\n      C: 3\n",
        )
        .unwrap();
        let env = &v["services"]["s"]["environment"];
        assert_eq!(env["A"], Value::from(1));
        assert_eq!(env["B"], Value::from(2));
        assert_eq!(env["C"], Value::from(3));
        assert!(env.get("<<").is_none());
    }

    #[test]
    fn extensions_are_dropped_except_in_user_data() {
        let mut v =
            parse("x-top: 1\nservices:\n  s:\n    x-mine: 2\n    labels:\n      x-keep: yes\n")
                .unwrap();
        strip_extensions(&mut v);
        assert!(v.get("x-top").is_none());
        assert!(v["services"]["s"].get("x-mine").is_none());
        assert!(v["services"]["s"]["labels"].get("x-keep").is_some());
    }

    #[test]
    fn the_line_index_names_keys_and_items() {
        let t = "services:\n  db:\n    image: x\n    command: |\n      a: b\n    ports:\n      - \"5432:5432\"\n      - target: 80\n        published: 8080\n    \"quoted\": 1\n";
        let ix = LineIndex::build(t);
        assert_eq!(ix.line("services.db"), Some(2));
        assert_eq!(ix.line("services.db.image"), Some(3));
        assert_eq!(ix.line("services.db.ports[0]"), Some(7));
        assert_eq!(ix.line("services.db.ports[1].published"), Some(9));
        assert_eq!(ix.line("services.db.quoted"), Some(10));
        assert_eq!(
            ix.line("services.db.command.a"),
            Some(4),
            "block scalars are not keys"
        );
        assert_eq!(ix.line("services.db.healthcheck.test"), Some(2));
    }
}
