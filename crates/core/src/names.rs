//! Names: the plugin's key in nx.json, and the rule every service and profile name follows
//! (they become PM2 names, log directories and container names: no path tricks).

use crate::error::{Error, Result};

/// The plugin's key in nx.json `plugins` and `pluginsConfig`.
pub const PLUGIN_KEY: &str = "@workspace/orchestrator";

/// Service and profile names: they become PM2 names and log directories, so no path tricks.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && !name.contains("..")
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub fn validate_name(name: &str, what: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        let shown: String = name.chars().take(40).collect();
        Err(Error::Usage {
            message: format!(
                "invalid {what} name \"{shown}{}\": use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                if name.chars().count() > 40 { "…" } else { "" }
            ),
            remediation: format!("Pass an existing {what} name"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_against_path_tricks() {
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            "a b",
            ".hidden",
            "x..y",
            &"a".repeat(65),
            "a\0b",
        ] {
            assert!(!is_valid_name(bad), "{bad:?} accepted");
        }
        for good in ["admin", "server-2", "db.main", "svc_1"] {
            assert!(is_valid_name(good), "{good:?} rejected");
        }
    }
}
