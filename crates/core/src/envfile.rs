//! Profile environment: `config/env/<profile>.env` (dotenv) layered over the ecosystem's `env` and
//! `env_<profile>` blocks. Values never leave this module in messages: only names and sources do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a variable's value came from, for messages and dry runs (names only, never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    EcosystemEnv,
    EcosystemProfile(String),
    EnvFile(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedEnv {
    pub vars: BTreeMap<String, (String, Source)>,
}

impl ResolvedEnv {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(|(v, _)| v.as_str())
    }

    pub fn values(&self) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    fn layer(&mut self, vars: impl IntoIterator<Item = (String, String)>, source: Source) {
        for (k, v) in vars {
            self.vars.insert(k, (v, source.clone()));
        }
    }
}

pub fn env_file_path(root: &Path, profile: &str) -> PathBuf {
    root.join("config")
        .join("env")
        .join(format!("{profile}.env"))
}

/// Parses dotenv text as compose reads `.env` and `env_file`s (compose-go's dotenv rules): a
/// leading BOM and CRLF line ends are accepted; `export ` is skipped; `#` starts a comment line,
/// and ` #` a comment after an unquoted value; unquoted values run to the end of the line
/// (spaces included, trailing ones trimmed); `'…'` is literal; `"…"` takes `\n`, `\t`, `\"`,
/// `\\` and `\$` escapes and may span lines; `${VAR}` in unquoted and double-quoted values
/// expands from the variables above it, then from the process environment; a bare `NAME` line
/// takes the variable from the environment. A bad line is reported with its line and column
/// (counted from the start of the line).
pub fn parse_env_text(text: &str, file: &Path) -> Result<Vec<(String, String)>> {
    parse_dotenv(text, file, &|k| std::env::var(k).ok())
}

/// [`parse_env_text`] with the environment that answers `${VAR}` and bare names given.
pub fn parse_dotenv(
    text: &str,
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n");
    let bad = |line: usize, col: usize, what: String| Error::InvalidConfig {
        file: file.to_path_buf(),
        key: format!("line {line}"),
        message: format!("column {col}: {what}"),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    let mut line_start = 0;
    while i < chars.len() {
        // Skip blank space and comment lines.
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
            line_start = i;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        // `export NAME=…`
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        if rest.starts_with("export") && rest[6..].starts_with([' ', '\t']) {
            i += 6;
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
        }
        let key_start = i;
        while i < chars.len() && !matches!(chars[i], '=' | ':' | '\n') {
            let k = chars[i];
            if !(k.is_alphanumeric()
                || matches!(k, '_' | '.' | '-' | '[' | ']')
                || k == ' '
                || k == '\t')
            {
                return Err(bad(
                    line,
                    i - line_start + 1,
                    format!("unexpected character {k:?} in a variable name; expected NAME=value"),
                ));
            }
            i += 1;
        }
        let key: String = chars[key_start..i]
            .iter()
            .collect::<String>()
            .trim_end()
            .to_string();
        if key.is_empty() {
            return Err(bad(
                line,
                i - line_start + 1,
                "a line must start with a variable name; expected NAME=value".into(),
            ));
        }
        if key.contains([' ', '\t']) {
            return Err(bad(
                line,
                key_start - line_start + 1,
                format!("variable name \"{key}\" contains a space; expected NAME=value"),
            ));
        }
        if i >= chars.len() || chars[i] == '\n' {
            // A bare name: inherited from the environment.
            if let Some(v) = lookup(&key) {
                out.push((key, v));
            }
            continue;
        }
        i += 1; // `=` or `:`
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        let known = |k: &str, out: &[(String, String)]| {
            out.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .or_else(|| lookup(k))
        };
        let value = match chars.get(i) {
            Some(q @ ('\'' | '"')) => {
                let q = *q;
                let open_line = line;
                let open_col = i - line_start + 1;
                i += 1;
                let mut v = String::new();
                let mut closed = false;
                while i < chars.len() {
                    let ch = chars[i];
                    if ch == '\\' && q == '"' && i + 1 < chars.len() {
                        let n = chars[i + 1];
                        match n {
                            'n' => v.push('\n'),
                            't' => v.push('\t'),
                            'r' => v.push('\r'),
                            '"' => v.push('"'),
                            '\\' => v.push('\\'),
                            '$' => v.push_str("$$"),
                            other => {
                                v.push('\\');
                                v.push(other);
                            }
                        }
                        i += 2;
                        continue;
                    }
                    if ch == '\\' && q == '\'' && chars.get(i + 1) == Some(&'\'') {
                        v.push('\'');
                        i += 2;
                        continue;
                    }
                    if ch == q {
                        closed = true;
                        i += 1;
                        break;
                    }
                    if ch == '\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    v.push(ch);
                    i += 1;
                }
                if !closed {
                    return Err(bad(
                        open_line,
                        open_col,
                        format!("unterminated {q}quoted{q} value"),
                    ));
                }
                // The rest of the line may only hold a comment.
                while i < chars.len() && chars[i] != '\n' {
                    if chars[i] == '#' {
                        while i < chars.len() && chars[i] != '\n' {
                            i += 1;
                        }
                        break;
                    }
                    if !chars[i].is_whitespace() {
                        return Err(bad(
                            line,
                            i - line_start + 1,
                            "unexpected text after the closing quote".into(),
                        ));
                    }
                    i += 1;
                }
                if q == '"' {
                    crate::compose::interp::interpolate(&v, &|k| known(k, &out))
                        .map_err(|m| bad(open_line, open_col, m))?
                } else {
                    v
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                let raw: String = chars[start..i].iter().collect();
                let raw = match raw.find(" #").or_else(|| raw.find("\t#")) {
                    Some(p) => raw[..p].to_string(),
                    None if raw.starts_with('#') => String::new(),
                    None => raw,
                };
                let raw = raw.trim_end().to_string();
                crate::compose::interp::interpolate(&raw, &|k| known(k, &out))
                    .map_err(|m| bad(line, start - line_start + 1, m))?
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// Reads the profile's env file; a missing file is an empty layer (verify reports it).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_env_text(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Io {
            op: crate::error::IoOp::Read,
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Precedence, lowest first: ecosystem `env`, ecosystem `env_<profile>`, `config/env/<profile>.env`.
/// The env file is the operator's per-machine layer, so it wins over defaults written in code.
pub fn resolve(
    ecosystem_env: Vec<(String, String)>,
    ecosystem_profile_env: Vec<(String, String)>,
    profile: &str,
    file_vars: Vec<(String, String)>,
    file: &Path,
) -> ResolvedEnv {
    let mut env = ResolvedEnv::default();
    env.layer(ecosystem_env, Source::EcosystemEnv);
    env.layer(
        ecosystem_profile_env,
        Source::EcosystemProfile(profile.to_string()),
    );
    env.layer(file_vars, Source::EnvFile(file.to_path_buf()));
    env
}

/// Names of required variables that are absent or empty, in declaration order.
pub fn missing_required(required: &[String], env: &ResolvedEnv) -> Vec<String> {
    required
        .iter()
        .filter(|k| env.get(k).map(|v| v.is_empty()).unwrap_or(true))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_quotes_export_comments_bom_and_crlf() {
        let text = "\u{feff}# comment\r\nexport A=1\r\nB=\"two words\"\r\nC='single'\r\nD=\r\n";
        let vars = parse_env_text(text, Path::new("x.env")).unwrap();
        assert_eq!(
            vars,
            kv(&[("A", "1"), ("B", "two words"), ("C", "single"), ("D", "")])
        );
    }

    #[test]
    fn a_line_without_equals_is_reported_with_its_line_number() {
        let err = parse_env_text(
            "A=1\nB=2\nnot a pair\n",
            Path::new("/ws/config/env/staging.env"),
        )
        .unwrap_err();
        let msg = err.message();
        assert!(msg.contains("/ws/config/env/staging.env: line 3"), "{msg}");
        assert!(!msg.contains("A=1"));
    }

    #[test]
    fn env_file_wins_over_profile_block_which_wins_over_env() {
        let env = resolve(
            kv(&[("A", "base"), ("B", "base"), ("C", "base")]),
            kv(&[("B", "profile"), ("C", "profile")]),
            "staging",
            kv(&[("C", "file")]),
            Path::new("/ws/config/env/staging.env"),
        );
        assert_eq!(env.get("A"), Some("base"));
        assert_eq!(env.get("B"), Some("profile"));
        assert_eq!(env.get("C"), Some("file"));
        assert_eq!(env.vars["B"].1, Source::EcosystemProfile("staging".into()));
        assert_eq!(
            env.vars["C"].1,
            Source::EnvFile("/ws/config/env/staging.env".into())
        );
    }

    #[test]
    fn required_variables_missing_or_empty_are_listed_in_order() {
        let env = resolve(
            kv(&[("PORT", "3000"), ("EMPTY", "")]),
            vec![],
            "development",
            vec![],
            Path::new("f"),
        );
        let required = vec![
            "DATABASE_URL".to_string(),
            "PORT".into(),
            "EMPTY".into(),
            "SECRET".into(),
        ];
        assert_eq!(
            missing_required(&required, &env),
            vec!["DATABASE_URL", "EMPTY", "SECRET"]
        );
    }

    #[test]
    fn env_path_is_per_profile() {
        assert_eq!(
            env_file_path(Path::new("/ws"), "staging"),
            PathBuf::from("/ws/config/env/staging.env")
        );
    }
}
