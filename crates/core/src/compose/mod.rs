//! `docker-compose.yml` as `docker compose` reads it on one host, in the stages compose-go has:
//! find the files (main, override, `COMPOSE_FILE`) → parse YAML (anchors, merge keys) →
//! interpolate from the shell, the profile's env file and the project's `.env` → drop `x-*`
//! extensions → `include` → merge the override files → `extends` → normalize every service and
//! resource → cross-check references. Each stage collects its problems instead of stopping: a
//! problem belongs to one service (which alone cannot start) or to the file, and every one is
//! reported with its file, key path and line. What cannot apply on one host is a warning.

pub mod check;
pub mod files;
pub mod interp;
pub mod load;
pub mod merge;
pub mod model;
pub mod order;
pub mod service;
pub mod stages;
pub mod yaml;

#[cfg(test)]
mod conformance;

use std::path::Path;

pub use files::*;
pub use interp::interpolate;
pub use load::*;
pub use model::*;
pub use order::*;
pub use stages::LoadRequest;

/// A compose project from one text at `file` (tests, benchmarks, fixtures in memory).
pub fn from_text(text: &str, file: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> ComposeFile {
    let mut fs = MemFiles::default();
    fs.0.insert(file.to_path_buf(), text.to_string());
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("compose.yaml")
        .to_string();
    let with_file = |k: &str| {
        if k == "COMPOSE_FILE" {
            Some(name.clone())
        } else {
            lookup(k)
        }
    };
    load_mem(&fs, file.parent().unwrap_or(Path::new("/")), &with_file)
}

/// Loads from in-memory files rooted at `root`.
pub fn load_mem(
    fs: &MemFiles,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> ComposeFile {
    load(&LoadRequest {
        fs,
        root,
        shell: lookup,
        profile_vars: &[],
        compose_profiles: &[],
    })
    .unwrap_or_default()
}
