//! Installing an app's npm dependencies, idempotently: a stamp in `node_modules` records the hash
//! of `package.json` + lockfile it was installed from; an unchanged app is not reinstalled.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const STAMP: &str = ".orchestrator-install.sha256";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    /// No package.json: nothing to install.
    NotNeeded,
    UpToDate,
    Installed,
}

impl InstallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallOutcome::NotNeeded => "not-needed",
            InstallOutcome::UpToDate => "up-to-date",
            InstallOutcome::Installed => "installed",
        }
    }
}

/// Pure: the stamp a directory's manifest files should produce.
pub fn manifest_hash(package_json: &[u8], lockfile: Option<&[u8]>) -> String {
    let mut h = Sha256::new();
    h.update(b"package.json\0");
    h.update(package_json);
    if let Some(lock) = lockfile {
        h.update(b"\0package-lock.json\0");
        h.update(lock);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn stamp_path(cwd: &Path) -> PathBuf {
    cwd.join("node_modules").join(STAMP)
}

/// Redirects a child's stdout to our stderr, so machine-readable stdout (`--json`) stays clean.
pub fn stdout_to_stderr() -> Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::inherit(),
    }
}

pub async fn ensure_installed(service: &str, cwd: &Path) -> Result<InstallOutcome> {
    let manifest = cwd.join("package.json");
    let package_json = match tokio::fs::read(&manifest).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(InstallOutcome::NotNeeded),
        Err(source) => {
            return Err(Error::Io {
                op: crate::error::IoOp::Read,
                path: manifest,
                source,
            })
        }
    };
    let lock = tokio::fs::read(cwd.join("package-lock.json")).await.ok();
    let want = manifest_hash(&package_json, lock.as_deref());
    let stamp = stamp_path(cwd);
    if tokio::fs::read_to_string(&stamp)
        .await
        .ok()
        .as_deref()
        .map(str::trim)
        == Some(want.as_str())
    {
        return Ok(InstallOutcome::UpToDate);
    }
    let args: &[&str] = if lock.is_some() {
        &["ci", "--no-audit", "--no-fund"]
    } else {
        &["install", "--no-audit", "--no-fund"]
    };
    let shown = format!("npm {}", args.join(" "));
    eprintln!("[orchestrator] {service}: {shown} in {}", cwd.display());
    let status = tokio::process::Command::new("npm")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(stdout_to_stderr())
        .status()
        .await
        .map_err(|e| Error::CommandFailed {
            service: service.into(),
            command: shown.clone(),
            cwd: cwd.to_path_buf(),
            exit: format!("could not run npm: {e}"),
        })?;
    if !status.success() {
        return Err(Error::CommandFailed {
            service: service.into(),
            command: shown,
            cwd: cwd.to_path_buf(),
            exit: describe_status(status),
        });
    }
    // npm may have written the lockfile: stamp what is on disk now.
    let package_json = tokio::fs::read(&manifest).await.unwrap_or(package_json);
    let lock = tokio::fs::read(cwd.join("package-lock.json")).await.ok();
    let now = manifest_hash(&package_json, lock.as_deref());
    let modules = cwd.join("node_modules");
    tokio::fs::create_dir_all(&modules)
        .await
        .map_err(|source| Error::Io {
            op: crate::error::IoOp::Write,
            path: modules,
            source,
        })?;
    tokio::fs::write(&stamp, now)
        .await
        .map_err(|source| Error::Io {
            op: crate::error::IoOp::Write,
            path: stamp,
            source,
        })?;
    Ok(InstallOutcome::Installed)
}

pub fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown exit".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_manifest_or_lockfile() {
        let a = manifest_hash(b"{}", None);
        assert_eq!(a, manifest_hash(b"{}", None));
        assert_ne!(a, manifest_hash(b"{ }", None));
        assert_ne!(a, manifest_hash(b"{}", Some(b"lock")));
        assert_ne!(
            manifest_hash(b"{}", Some(b"lock")),
            manifest_hash(b"{}", Some(b"lock2"))
        );
        assert_eq!(a.len(), 64);
    }
}
