//! Tool versions: node and PM2 (the Docker engine joins with the Docker issue).

use semver::Version;

use crate::error::{Error, Result};

pub const MIN_NODE: &str = "18.0.0";
pub const MIN_PM2: &str = "6.0.0";

fn parse(v: &str) -> Option<Version> {
    let v = v.trim().trim_start_matches('v');
    Version::parse(v).ok().or_else(|| {
        // "20.1" or "20" → pad; anything else is unknown.
        let mut parts: Vec<&str> = v.split('.').collect();
        while parts.len() < 3 {
            parts.push("0");
        }
        Version::parse(&parts[..3].join(".")).ok()
    })
}

/// Pure: `found` must be at least `minimum`; `None` means the tool is missing.
pub fn check(tool: &str, found: Option<&str>, minimum: &str, remediation: &str) -> Result<()> {
    let min = parse(minimum).expect("minimum versions are valid semver");
    let ok = found.and_then(parse).is_some_and(|v| v >= min);
    if ok {
        Ok(())
    } else {
        Err(Error::Prerequisite {
            tool: tool.into(),
            found: found.map(str::to_string),
            minimum: minimum.into(),
            remediation: remediation.into(),
        })
    }
}

pub fn check_node_and_pm2(node: &str, pm2: Option<&str>, root: &std::path::Path) -> Result<()> {
    check(
        "node",
        Some(node),
        MIN_NODE,
        &format!("Install Node.js {MIN_NODE} or newer (https://nodejs.org or your distribution's nodejs package), then rerun"),
    )?;
    check(
        "pm2",
        pm2,
        MIN_PM2,
        &format!(
            "Run `npm install --save-dev pm2@latest` in {} (PM2 {MIN_PM2} or newer)",
            root.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_current_and_rejects_old_or_missing() {
        assert!(check("node", Some("v20.20.2"), MIN_NODE, "x").is_ok());
        assert!(check("node", Some("18.0.0"), MIN_NODE, "x").is_ok());
        assert!(check("pm2", Some("6.0.14"), MIN_PM2, "x").is_ok());
        let e = check("pm2", Some("4.5.6"), MIN_PM2, "upgrade pm2").unwrap_err();
        let a = e.actionable("orchestrator start");
        assert_eq!((a.code.as_str(), a.exit_code), ("EXIT_PREREQUISITE", 13));
        assert!(
            a.message
                .contains("pm2 4.5.6 is older than the supported minimum 6.0.0"),
            "{}",
            a.message
        );
        assert_eq!(a.remediation, vec!["upgrade pm2"]);
        let e = check("pm2", None, MIN_PM2, "install pm2").unwrap_err();
        assert!(e.message().contains("pm2 was not found"));
        assert!(check("node", Some("16.20"), MIN_NODE, "x").is_err());
        assert!(check("node", Some("garbage"), MIN_NODE, "x").is_err());
    }
}
