//! Compose interpolation (the specification's `12-interpolation.md`): `$$`, `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`,
//! `${VAR+alt}`, nested in defaults. Values only: keys are never interpolated. An unset variable
//! without a default becomes empty, as compose does, and is reported so that the loader can warn
//! with its name.

use serde_yaml_ng::Value;

/// What interpolating one string found besides its result.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    /// Variables used without a default and not set (they became empty strings).
    pub unset: Vec<String>,
}

/// Interpolates `s`. `Err((var, message))` for `${VAR:?message}` / `${VAR?message}`; a malformed
/// expression is `Err(("", message))`.
pub fn interpolate_found(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    found: &mut Found,
) -> Result<String, (String, String)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let mut depth = 1;
                let mut j = i + 2;
                while j < chars.len() && depth > 0 {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    return Err((String::new(), format!("unclosed \"${{\" in \"{s}\"")));
                }
                let inner: String = chars[i + 2..j - 1].iter().collect();
                out.push_str(&expand(&inner, lookup, found)?);
                i = j;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match lookup(&name) {
                    Some(v) => out.push_str(&v),
                    None => found.unset.push(name),
                }
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Interpolates `s`; errors as text (`VAR: message`), unset variables become empty.
pub fn interpolate(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    interpolate_found(s, lookup, &mut Found::default()).map_err(|(var, m)| {
        if var.is_empty() {
            m
        } else {
            format!("{var}: {m}")
        }
    })
}

fn expand(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    found: &mut Found,
) -> Result<String, (String, String)> {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err((
            String::new(),
            format!("invalid interpolation \"${{{inner}}}\""),
        ));
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let mut arg = |prefix: &str| interpolate_found(&op[prefix.len()..], lookup, found);
    let required = |message: String| {
        let m = if message.is_empty() {
            "required variable is missing a value".to_string()
        } else {
            message
        };
        Err((name.to_string(), m))
    };
    match op {
        "" => match value {
            Some(v) => Ok(v),
            None => {
                found.unset.push(name.to_string());
                Ok(String::new())
            }
        },
        _ if op.starts_with(":-") => {
            if non_empty {
                Ok(value.unwrap_or_default())
            } else {
                arg(":-")
            }
        }
        _ if op.starts_with('-') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                arg("-")
            }
        }
        _ if op.starts_with(":?") => {
            if non_empty {
                Ok(value.unwrap_or_default())
            } else {
                required(arg(":?")?)
            }
        }
        _ if op.starts_with('?') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                required(arg("?")?)
            }
        }
        _ if op.starts_with(":+") => {
            if non_empty {
                arg(":+")
            } else {
                Ok(String::new())
            }
        }
        _ if op.starts_with('+') => {
            if set {
                arg("+")
            } else {
                Ok(String::new())
            }
        }
        _ => Err((
            String::new(),
            format!("invalid interpolation \"${{{inner}}}\""),
        )),
    }
}

/// One failure of interpolating a tree: the key path, the variable (empty for a malformed
/// expression) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub path: String,
    pub var: String,
    pub message: String,
}

/// Interpolates every string value of a tree. Unset variables are collected with the path of
/// their first use; a failed value is left as written and reported.
pub fn tree(
    v: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<(String, String)>,
    failures: &mut Vec<Failure>,
) {
    match v {
        Value::String(s) => {
            let mut found = Found::default();
            match interpolate_found(s, lookup, &mut found) {
                Ok(x) => *s = x,
                Err((var, message)) => failures.push(Failure {
                    path: path.to_string(),
                    var,
                    message,
                }),
            }
            for var in found.unset {
                if !unset.iter().any(|(v, _)| *v == var) {
                    unset.push((var, path.to_string()));
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                tree(item, &format!("{path}[{i}]"), lookup, unset, failures);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_else(|| "?".into());
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                tree(item, &p, lookup, unset, failures);
            }
        }
        Value::Tagged(t) => tree(&mut t.value, path, lookup, unset, failures),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn every_form_of_the_specification() {
        let cases = [
            ("$SET ${SET}", "v v"),
            ("${UNSET:-d} ${EMPTY:-d} ${SET:-d}", "d d v"),
            ("${UNSET-d} ${EMPTY-d}", "d "),
            ("${UNSET:+a} ${EMPTY:+a} ${SET:+a}", "  a"),
            ("${UNSET+a} ${EMPTY+a}", " a"),
            ("${UNSET:-${SET}} ${UNSET:-${UNSET2:-deep}}", "v deep"),
            ("$$SET $${SET} a$", "$SET ${SET} a$"),
            ("${SET?m} ${EMPTY?m}", "v "),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &env).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn required_and_unset_variables_are_reported() {
        let mut f = Found::default();
        assert_eq!(
            interpolate_found("${EMPTY:?give it}", &env, &mut f),
            Err(("EMPTY".into(), "give it".into()))
        );
        assert_eq!(
            interpolate_found("${UNSET?}", &env, &mut f),
            Err((
                "UNSET".into(),
                "required variable is missing a value".into()
            ))
        );
        let mut f = Found::default();
        assert_eq!(
            interpolate_found("a${NOPE}b$ALSO", &env, &mut f).unwrap(),
            "ab"
        );
        assert_eq!(f.unset, vec!["NOPE".to_string(), "ALSO".to_string()]);
        assert!(interpolate("${", &env).is_err());
        assert!(interpolate("${1A}", &env).is_err());
    }
}
