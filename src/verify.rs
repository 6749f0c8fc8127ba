//! `verify`: the report (as the JSON contract) and its text.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::{self, js_error};
use orchestrator_runtime::verify;

#[napi(object)]
pub struct VerifyRequest {
    pub workspace_root: String,
    /// The evaluated `ecosystem.config.js` export (absent when it could not be loaded).
    pub ecosystem: Option<serde_json::Value>,
    /// Why loading the ecosystem file failed.
    pub ecosystem_error: Option<String>,
    pub ecosystem_file: String,
    pub profile: Option<String>,
    pub all_profiles: Option<bool>,
    /// The plugin's package directory (executors.json and the schemas).
    pub plugin_root: String,
    pub command: String,
}

#[napi(object)]
pub struct VerifyResult {
    /// `{ workspace, ok, profiles: [{ profile, order, services: [{ name, kind, definition }] }],
    /// problems: [{ rule, file, at, line, profile, message, remediation }], warnings: [same] }`
    pub report: serde_json::Value,
    pub ok: bool,
    pub problems: u32,
    /// The report as text (dry run per profile, then the problems).
    pub text: String,
}

/// Lints and dry-runs the workspace; changes nothing.
#[napi]
pub fn verify(env: &Env, req: VerifyRequest) -> Result<VerifyResult> {
    boundary::sync(env, || {
        let ecosystem = match (req.ecosystem, req.ecosystem_error) {
            (_, Some(e)) => Err(e),
            (Some(v), None) => Ok(v),
            (None, None) => Err("no ecosystem was given".into()),
        };
        let r = verify::verify(&verify::VerifyRequest {
            workspace_root: PathBuf::from(req.workspace_root),
            ecosystem,
            ecosystem_file: PathBuf::from(req.ecosystem_file),
            profile: req.profile,
            all_profiles: req.all_profiles.unwrap_or(false),
            plugin_root: PathBuf::from(req.plugin_root),
        })
        .map_err(|e| js_error(e, &req.command))?;
        Ok(VerifyResult {
            report: serde_json::to_value(&r).unwrap_or_default(),
            ok: r.ok,
            problems: r.problems.len() as u32,
            text: verify::render(&r),
        })
    })
}

/// Installs (`install: true`) or removes the pre-commit hook that runs verify; returns the
/// hook's path (null: there was none to remove).
#[napi]
pub fn verify_hook(
    env: &Env,
    workspace_root: String,
    install: bool,
    command: String,
) -> Result<Option<String>> {
    boundary::sync(env, || {
        let root = PathBuf::from(workspace_root);
        let got = if install {
            orchestrator_runtime::git_hook::install_hook(&root).map(Some)
        } else {
            orchestrator_runtime::git_hook::remove_hook(&root)
        };
        got.map(|p| p.map(|p| p.display().to_string()))
            .map_err(|e| js_error(e, &command))
    })
}
