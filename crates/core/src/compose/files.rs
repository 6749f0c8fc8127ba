//! Where a compose project's files are: the main file and its override, `COMPOSE_FILE`, the
//! project's `.env`; read from the disk or, for tests, from memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The compose file names compose itself looks for, in its order of preference.
pub const COMPOSE_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Where the loader reads files from: the disk, or (tests) a map of paths to texts.
pub trait Files {
    fn read(&self, path: &Path) -> std::io::Result<String>;
    fn is_file(&self, path: &Path) -> bool {
        self.read(path).is_ok()
    }
}

pub struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// Files in memory, by absolute path.
#[derive(Debug, Default, Clone)]
pub struct MemFiles(pub BTreeMap<PathBuf, String>);

impl Files for MemFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// The main file and its override files: `COMPOSE_FILE` when set (paths separated by `:`),
/// else the first of [`COMPOSE_FILES`] plus its `.override` sibling.
pub fn find_files(
    fs: &dyn Files,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<PathBuf>> {
    if let Some(list) = lookup("COMPOSE_FILE").filter(|l| !l.trim().is_empty()) {
        let sep = lookup("COMPOSE_PATH_SEPARATOR").unwrap_or_else(|| ":".into());
        let files: Vec<PathBuf> = list
            .split(sep.as_str())
            .filter(|f| !f.is_empty())
            .map(|f| root.join(f))
            .collect();
        if !files.is_empty() {
            return Some(files);
        }
    }
    let main = COMPOSE_FILES
        .iter()
        .map(|f| root.join(f))
        .find(|p| fs.is_file(p))?;
    let stem = main
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('.'))
        .map(|(s, _)| s.to_string())
        .unwrap_or_default();
    let mut files = vec![main];
    if let Some(o) = ["yaml", "yml"]
        .iter()
        .map(|ext| root.join(format!("{stem}.override.{ext}")))
        .find(|p| fs.is_file(p))
    {
        files.push(o);
    }
    Some(files)
}

/// The main compose file of a directory, if any.
pub fn main_file(root: &Path) -> Option<PathBuf> {
    COMPOSE_FILES
        .iter()
        .map(|f| root.join(f))
        .find(|p| p.is_file())
}

/// The project's `.env` (beside the main file), read as compose reads it: the shell's
/// variables answer `${VAR}` inside it.
pub fn project_dotenv(
    fs: &dyn Files,
    dir: &Path,
    shell: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<(String, String)>, Error> {
    let file = dir.join(".env");
    match fs.read(&file) {
        Ok(text) => crate::envfile::parse_dotenv(&text, &file, shell),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Io {
            op: crate::error::IoOp::Read,
            path: file,
            source,
        }),
    }
}
