//! Images built from a compose `build:` through the Engine's build API: the context as a tar
//! stream (what `.dockerignore` leaves in), the build settings, and a hash of both so an image is
//! rebuilt only when its context or settings changed (the hash is a label of the image we build).
//! The matcher and the hash are pure; reading the context is the edge.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::compose::Build;

/// One `.dockerignore` rule.
#[derive(Debug, Clone)]
struct Rule {
    re: regex::Regex,
    negate: bool,
}

/// `.dockerignore` as the engine's builder reads it: one pattern a line, `#` comments, `!`
/// re-includes, `*` and `?` within a path element, `**` across elements, leading `/` and `./`
/// ignored; a pattern matching a directory excludes what is under it; the last matching rule wins.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let mut rules = Vec::new();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pat = pat
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            if pat.is_empty() {
                continue;
            }
            let mut re = String::from("^");
            let chars: Vec<char> = pat.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                match chars[i] {
                    '*' if chars.get(i + 1) == Some(&'*') => {
                        re.push_str(".*");
                        i += 2;
                        if chars.get(i) == Some(&'/') {
                            i += 1;
                            re.push_str("/?");
                        }
                        continue;
                    }
                    '*' => re.push_str("[^/]*"),
                    '?' => re.push_str("[^/]"),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
                i += 1;
            }
            // The pattern or anything under what it names.
            re.push_str("(/.*)?$");
            if let Ok(re) = regex::Regex::new(&re) {
                rules.push(Rule { re, negate });
            }
        }
        Ignore { rules }
    }

    /// Whether `rel` (a `/`-separated path relative to the context) is left out.
    pub fn excludes(&self, rel: &str) -> bool {
        let mut out = false;
        for r in &self.rules {
            if r.re.is_match(rel) {
                out = !r.negate;
            }
        }
        out
    }
}

/// The files of a context that go to the builder, sorted, relative to it. The Dockerfile and
/// `.dockerignore` always go (the builder needs them).
pub fn context_files(
    dir: &Path,
    ignore: &Ignore,
    dockerfile: &str,
) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for entry in std::fs::read_dir(&abs)? {
            let entry = entry?;
            let r = rel.join(entry.file_name());
            let key = r.to_string_lossy().replace('\\', "/");
            let ty = entry.file_type()?;
            let always = key == dockerfile || key == ".dockerignore";
            if ignore.excludes(&key) && !always {
                // A re-included path under an excluded directory still needs the walk.
                if !(ty.is_dir() && ignore.rules.iter().any(|x| x.negate)) {
                    continue;
                }
            }
            if ty.is_dir() {
                stack.push(r);
            } else if ty.is_file() || ty.is_symlink() {
                if ignore.excludes(&key) && !always {
                    continue;
                }
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The context directory, its Dockerfile's path in it, and whether the file is written inline.
pub fn dockerfile_of(b: &Build) -> String {
    if b.dockerfile_inline.is_some() {
        return ".orchestrator.Dockerfile".into();
    }
    b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into())
}

/// The hash that decides a rebuild: the build settings and every file of the context (path,
/// mode, bytes), in order.
pub fn context_hash(b: &Build, image: &str) -> std::io::Result<String> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(b).unwrap_or_default());
    h.update(image.as_bytes());
    if b.remote.is_none() {
        let ignore = read_ignore(&b.context);
        let dockerfile = dockerfile_of(b);
        for rel in context_files(&b.context, &ignore, &dockerfile)? {
            let abs = b.context.join(&rel);
            let meta = std::fs::symlink_metadata(&abs)?;
            h.update(rel.to_string_lossy().as_bytes());
            h.update([0]);
            use std::os::unix::fs::PermissionsExt;
            h.update(meta.permissions().mode().to_le_bytes());
            if meta.is_file() {
                h.update(std::fs::read(&abs)?);
            } else if let Ok(t) = std::fs::read_link(&abs) {
                h.update(t.to_string_lossy().as_bytes());
            }
            h.update([0]);
        }
    }
    Ok(h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn read_ignore(dir: &Path) -> Ignore {
    Ignore::parse(&std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default())
}

/// The context as a tar archive (in memory: contexts of dependencies are small; a large one is a
/// `.dockerignore` away from being small).
pub fn context_tar(b: &Build) -> std::io::Result<Vec<u8>> {
    let ignore = read_ignore(&b.context);
    let dockerfile = dockerfile_of(b);
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    for rel in context_files(&b.context, &ignore, &dockerfile)? {
        tar.append_path_with_name(b.context.join(&rel), &rel)?;
    }
    if let Some(text) = &b.dockerfile_inline {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, &dockerfile, text.as_bytes())?;
    }
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns_negation_and_directories() {
        let ig = Ignore::parse(
            "# comment\nnode_modules\n*.log\n!keep.log\n**/tmp\n/dist/\nsecret?.txt\n",
        );
        assert!(ig.excludes("node_modules"));
        assert!(ig.excludes("node_modules/x/y.js"));
        assert!(ig.excludes("a.log") && !ig.excludes("keep.log"));
        assert!(!ig.excludes("sub/a.log"), "* stays within one element");
        assert!(ig.excludes("a/b/tmp/x"));
        assert!(ig.excludes("dist/app.js"));
        assert!(ig.excludes("secret1.txt") && !ig.excludes("secret12.txt"));
        assert!(!ig.excludes("src/main.rs"));
    }

    #[test]
    fn the_hash_follows_the_context_and_settings_but_not_ignored_files() {
        let dir = std::env::temp_dir().join(format!("orch-build-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("node_modules")).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY a /a\n").unwrap();
        std::fs::write(dir.join("a"), "1").unwrap();
        std::fs::write(dir.join(".dockerignore"), "node_modules\n").unwrap();
        std::fs::write(dir.join("node_modules/big"), "x").unwrap();
        let b = Build {
            context: dir.clone(),
            remote: None,
            dockerfile: None,
            dockerfile_inline: None,
            args: Default::default(),
            target: None,
            labels: Default::default(),
            network: None,
            no_cache: false,
            pull: false,
            extra_hosts: vec![],
            shm_size: None,
        };
        let h1 = context_hash(&b, "img").unwrap();
        std::fs::write(dir.join("node_modules/big"), "changed").unwrap();
        assert_eq!(
            context_hash(&b, "img").unwrap(),
            h1,
            "ignored files do not count"
        );
        std::fs::write(dir.join("a"), "2").unwrap();
        let h2 = context_hash(&b, "img").unwrap();
        assert_ne!(h2, h1);
        let mut b2 = b.clone();
        b2.args.insert("V".into(), "1".into());
        assert_ne!(context_hash(&b2, "img").unwrap(), h2, "settings count");
        let files = context_files(&dir, &Ignore::parse("node_modules\n"), "Dockerfile").unwrap();
        assert_eq!(
            files,
            vec![
                PathBuf::from(".dockerignore"),
                PathBuf::from("Dockerfile"),
                PathBuf::from("a")
            ]
        );
        let tar = context_tar(&b).unwrap();
        assert!(tar.len() >= 3 * 512);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
