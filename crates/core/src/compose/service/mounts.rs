//! `volumes:` (short and long syntax: binds, volumes, tmpfs) and `secrets:`/`configs:` mounts.

use serde_yaml_ng::Value;

use super::ctx::*;
use crate::compose::model::*;

const SHORT_VOLUME_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "z",
    "Z",
    "consistent",
    "cached",
    "delegated",
    "nocopy",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
];

pub(crate) fn is_path(s: &str) -> bool {
    s.starts_with('.') || s.starts_with('/') || s.starts_with('~')
}

pub(crate) fn mount(c: &mut Ctx, v: &Value, key: &str) -> Option<Mount> {
    match v {
        Value::Mapping(m) => {
            for k in m.keys().filter_map(Value::as_str) {
                if ![
                    "type",
                    "source",
                    "target",
                    "read_only",
                    "bind",
                    "volume",
                    "tmpfs",
                    "image",
                    "consistency",
                ]
                .contains(&k)
                {
                    c.error(
                        &format!("{key}.{k}"),
                        "is not a key of the long volume syntax",
                    );
                }
            }
            let kind = match m.get("type").and_then(scalar).as_deref() {
                Some("volume") | None => MountKind::Volume,
                Some("bind") => MountKind::Bind,
                Some("tmpfs") => MountKind::Tmpfs,
                Some("npipe") => MountKind::Npipe,
                Some("image") => MountKind::Image,
                Some("cluster") => MountKind::Cluster,
                Some(other) => {
                    c.error(&format!("{key}.type"), format!("\"{other}\" is not a mount type (volume, bind, tmpfs, npipe, image, cluster)"));
                    return None;
                }
            };
            let Some(target) = m.get("target").and_then(scalar) else {
                c.error(&format!("{key}.target"), "is required");
                return None;
            };
            let source = m.get("source").and_then(scalar).filter(|s| !s.is_empty());
            let sub = |k: &str| match m.get(k) {
                Some(Value::Mapping(x)) => Some(x.clone()),
                _ => None,
            };
            let mut mt = Mount {
                kind,
                source: None,
                target,
                read_only: m
                    .get("read_only")
                    .and_then(|x| boolean(c, x, &format!("{key}.read_only")))
                    .unwrap_or(false),
                selinux: None,
                nocopy: false,
                subpath: None,
                propagation: None,
                create_host_path: true,
                tmpfs_size: None,
                tmpfs_mode: None,
            };
            match kind {
                MountKind::Bind => {
                    let Some(src) = source else {
                        c.error(&format!("{key}.source"), "is required for a bind mount");
                        return None;
                    };
                    mt.source = Some(c.resolve(&src).display().to_string());
                    if let Some(b) = sub("bind") {
                        mt.propagation = b.get("propagation").and_then(scalar);
                        mt.selinux = b.get("selinux").and_then(scalar);
                        if let Some(x) = b.get("create_host_path") {
                            mt.create_host_path =
                                boolean(c, x, &format!("{key}.bind.create_host_path"))
                                    .unwrap_or(true);
                        }
                    }
                }
                MountKind::Volume => {
                    mt.source = source;
                    if let Some(vo) = sub("volume") {
                        if let Some(x) = vo.get("nocopy") {
                            mt.nocopy =
                                boolean(c, x, &format!("{key}.volume.nocopy")).unwrap_or(false);
                        }
                        mt.subpath = vo.get("subpath").and_then(scalar);
                    }
                }
                MountKind::Tmpfs => {
                    if let Some(t) = sub("tmpfs") {
                        if let Some(x) = t.get("size") {
                            mt.tmpfs_size = bytes(c, x, &format!("{key}.tmpfs.size"));
                        }
                        if let Some(x) = t.get("mode") {
                            mt.tmpfs_mode = integer(c, x, &format!("{key}.tmpfs.mode"));
                        }
                    }
                }
                MountKind::Npipe | MountKind::Cluster | MountKind::Image => {
                    c.warn(key, format!("a mount of type {kind:?} is not made on this engine (Linux, Engine API 1.41)").to_lowercase());
                    return None;
                }
            }
            Some(mt)
        }
        other => {
            let s = string(c, other, key)?;
            let parts: Vec<&str> = s.split(':').collect();
            let (src, target, opts) = match parts.as_slice() {
                [t] => (None, *t, ""),
                [s0, t] => (Some(*s0), *t, ""),
                [s0, t, o] => (Some(*s0), *t, *o),
                _ => {
                    c.error(key, format!("\"{s}\" is not SOURCE:TARGET[:OPTIONS]"));
                    return None;
                }
            };
            if target.is_empty() || !target.starts_with('/') {
                c.error(key, format!("\"{s}\": the container path must be absolute"));
                return None;
            }
            let mut mt = Mount {
                kind: MountKind::Volume,
                source: None,
                target: target.to_string(),
                read_only: false,
                selinux: None,
                nocopy: false,
                subpath: None,
                propagation: None,
                create_host_path: true,
                tmpfs_size: None,
                tmpfs_mode: None,
            };
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                match o {
                    "ro" => mt.read_only = true,
                    "rw" => mt.read_only = false,
                    "z" | "Z" => mt.selinux = Some(o.to_string()),
                    "nocopy" => mt.nocopy = true,
                    "consistent" | "cached" | "delegated" => {}
                    p if SHORT_VOLUME_OPTIONS.contains(&p) => mt.propagation = Some(p.to_string()),
                    other => {
                        c.error(
                            key,
                            format!(
                                "\"{other}\" is not a volume option ({})",
                                SHORT_VOLUME_OPTIONS.join(", ")
                            ),
                        );
                        return None;
                    }
                }
            }
            match src {
                Some(p) if is_path(p) => {
                    mt.kind = MountKind::Bind;
                    mt.source = Some(c.resolve(p).display().to_string());
                }
                Some(name) => mt.source = Some(name.to_string()),
                None => {}
            }
            Some(mt)
        }
    }
}

pub(crate) fn file_mounts(c: &mut Ctx, v: &Value, key: &str, default_dir: &str) -> Vec<FileMount> {
    let Value::Sequence(items) = v else {
        c.error(key, "must be a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = format!("{key}[{i}]");
        let (source, target, mode) = match item {
            Value::Mapping(m) => {
                let Some(source) = m.get("source").and_then(scalar) else {
                    c.error(&format!("{k}.source"), "is required");
                    continue;
                };
                let mode = match m.get("mode") {
                    Some(Value::Number(n)) => n.as_u64().map(|x| x as u32),
                    Some(Value::String(s)) => {
                        u32::from_str_radix(s.trim_start_matches("0o").trim_start_matches('0'), 8)
                            .ok()
                            .or(Some(0))
                    }
                    _ => None,
                };
                for w in ["uid", "gid"] {
                    if m.contains_key(w) {
                        c.warn(
                            &format!("{k}.{w}"),
                            format!("`{w}` needs swarm; the file keeps its owner on the host"),
                        );
                    }
                }
                (source, m.get("target").and_then(scalar), mode)
            }
            other => match scalar(other) {
                Some(s) => (s, None, None),
                None => {
                    c.error(&k, "must be a name or a mapping with source");
                    continue;
                }
            },
        };
        let target = match target {
            Some(t) if t.starts_with('/') => t,
            Some(t) => format!("{default_dir}/{t}"),
            None => format!("{default_dir}/{source}"),
        };
        out.push(FileMount {
            source,
            target: target.replace("//", "/"),
            mode,
        });
    }
    out
}
