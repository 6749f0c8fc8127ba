//! The optional pre-commit hook that runs `verify` before a commit touching the workflow's
//! files: its script, and installing or removing it (only ever our own).

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The first line after the shebang of the hook we install: how we recognise our own.
pub const HOOK_MARKER: &str = "# @workspace/orchestrator pre-commit hook";

/// Pure: the pre-commit hook for a workspace at `ws_from_git_root` inside its repository
/// (`.` when it is the root): when the commit touches the workflow's files, it runs
/// `orchestrator verify --all-profiles` and refuses the commit on a problem.
pub fn hook_script(ws_from_git_root: &str) -> String {
    format!(
        r#"#!/bin/sh
{HOOK_MARKER} (installed by `orchestrator verify --install-hook`;
# remove it with `orchestrator verify --remove-hook`). Runs verify when the commit touches the
# workflow's files; `git commit --no-verify` skips it.
ws='{ws}'
prefix=''
[ "$ws" = '.' ] || prefix="$ws/"
git diff --cached --name-only --diff-filter=ACMRD | while IFS= read -r f; do
  case "$f" in
    "$prefix"*) rel="${{f#"$prefix"}}" ;;
    *) continue ;;
  esac
  case "$rel" in
    ecosystem.config.*|docker-compose.yml|docker-compose.yaml|compose.yml|compose.yaml|nx.json|config/env/*|*project.json) echo yes; break ;;
  esac
done | grep -q yes || exit 0
cd "$(git rev-parse --show-toplevel)/$ws" || exit 1
echo "pre-commit: the workflow's files changed; running orchestrator verify --all-profiles"
exec npx --no-install orchestrator verify --all-profiles
"#,
        ws = ws_from_git_root.replace('\'', "")
    )
}

/// Where the repository holding `root` keeps its hooks, and `root` relative to its top.
fn hooks_dir(root: &Path) -> crate::error::Result<(PathBuf, String)> {
    let mut dir = root.to_path_buf();
    loop {
        let git = dir.join(".git");
        if git.is_dir() {
            let rel = root
                .strip_prefix(&dir)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = if rel.is_empty() { ".".into() } else { rel };
            return Ok((git.join("hooks"), rel));
        }
        if !dir.pop() {
            return Err(Error::Usage {
                message: format!("{} is not inside a git repository (no .git directory)", root.display()),
                remediation: "Run `git init` first, or call `orchestrator verify --all-profiles` from your own hook manager".into(),
            });
        }
    }
}

/// Installs the pre-commit hook; refuses to replace a hook that is not ours.
pub fn install_hook(root: &Path) -> crate::error::Result<PathBuf> {
    let (hooks, rel) = hooks_dir(root)?;
    let path = hooks.join("pre-commit");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.contains(HOOK_MARKER) {
            return Err(Error::Usage {
                message: format!("{} exists and is not ours; it was left as it is", path.display()),
                remediation: "Add `npx --no-install orchestrator verify --all-profiles` to that hook (or your hook manager: husky, lefthook)".into(),
            });
        }
    }
    let io = |source| Error::Io {
        op: crate::error::IoOp::Write,
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&hooks).map_err(io)?;
    std::fs::write(&path, hook_script(&rel)).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    Ok(path)
}

/// Removes our pre-commit hook (a hook that is not ours is left alone); `None`: there was none.
pub fn remove_hook(root: &Path) -> crate::error::Result<Option<PathBuf>> {
    let (hooks, _) = hooks_dir(root)?;
    let path = hooks.join("pre-commit");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.contains(HOOK_MARKER) => {
            std::fs::remove_file(&path).map_err(|source| Error::Io {
                op: crate::error::IoOp::Write,
                path: path.clone(),
                source,
            })?;
            Ok(Some(path))
        }
        Ok(_) => Err(Error::Usage {
            message: format!("{} is not ours; it was left as it is", path.display()),
            remediation: "Edit that hook yourself".into(),
        }),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod hook_tests {
    use super::*;

    #[test]
    fn the_hook_checks_only_the_workspace_s_workflow_files() {
        let s = hook_script("examples/workspace");
        assert!(s.starts_with("#!/bin/sh\n# @workspace/orchestrator pre-commit hook"));
        assert!(s.contains("ws='examples/workspace'"));
        assert!(s.contains("exec npx --no-install orchestrator verify --all-profiles"));
        assert!(hook_script(".").contains("ws='.'"));
        assert!(
            hook_script("a'b").contains("ws='ab'"),
            "no quote breaks out"
        );
    }
}
