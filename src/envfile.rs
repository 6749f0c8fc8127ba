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

/// Parses dotenv text. A leading BOM and CRLF line ends are accepted; a bad line is reported
/// with the file and line number.
pub fn parse_env_text(text: &str, file: &Path) -> Result<Vec<(String, String)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalised = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    for item in dotenvy::from_read_iter(normalised.as_bytes()) {
        match item {
            Ok(pair) => out.push(pair),
            Err(dotenvy::Error::LineParse(line, index)) => {
                let line_no = normalised[..normalised.find(&line).unwrap_or(0)]
                    .matches('\n')
                    .count()
                    + 1;
                return Err(Error::InvalidConfig {
                    file: file.to_path_buf(),
                    key: format!("line {line_no}"),
                    message: format!(
                        "cannot parse dotenv line at column {index}; expected NAME=value"
                    ),
                });
            }
            Err(e) => {
                return Err(Error::InvalidConfig {
                    file: file.to_path_buf(),
                    key: "(file)".into(),
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// Reads the profile's env file; a missing file is an empty layer (verify reports it).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_env_text(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::ReadFile {
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
