//! `createNodesV2`/`createDependencies`: the inferred projects and edges of one workspace.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::{self, js_error};

#[napi(object)]
pub struct InferRequest {
    pub workspace_root: String,
    pub ecosystem: serde_json::Value,
    pub ecosystem_file: String,
    /// The workspace's directory relative to the Nx workspace root (`.` when the same).
    pub rel: String,
    /// The projects the workspace's project.json files already name: inferred targets join a
    /// project of the same name where it is, instead of defining it twice.
    pub projects: Option<Vec<NamedProject>>,
}

#[napi(object)]
pub struct NamedProject {
    pub name: String,
    /// Relative to the Nx workspace root.
    pub root: String,
}

/// `{ projects: { <root>: ProjectConfiguration }, edges: [[source, target]] }`.
#[napi]
pub fn infer_projects(env: &Env, req: InferRequest) -> Result<serde_json::Value> {
    boundary::sync(env, || {
        let root = PathBuf::from(&req.workspace_root);
        let command = "nx graph (createNodesV2 of @workspace/orchestrator)";
        let cat = orchestrator_core::catalog::load(
            &root,
            &req.ecosystem,
            &PathBuf::from(&req.ecosystem_file),
        )
        .map_err(|e| js_error(e, command))?;
        // `depends_on` does not depend on a profile; the default profile's env answers ${VARS}.
        let vars = orchestrator_core::envfile::read_env_file(
            &cat.env_file(orchestrator_core::config::DEFAULT_PROFILE),
        )
        .unwrap_or_default();
        let deps: Vec<(String, Vec<String>)> =
            match cat.compose_for(orchestrator_core::config::DEFAULT_PROFILE, &vars) {
                Some(c) => c
                    .services
                    .iter()
                    .map(|s| {
                        (
                            s.name.clone(),
                            s.depends_on.iter().map(|d| d.name.clone()).collect(),
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            };
        let existing: std::collections::BTreeMap<String, String> = req
            .projects
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.name, p.root))
            .collect();
        let inferred = orchestrator_core::infer::infer(&cat, &req.rel, &deps, &existing);
        Ok(serde_json::to_value(inferred).unwrap_or_default())
    })
}
