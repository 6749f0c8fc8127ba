//! `ports:`, short and long syntax, ranges included.

use serde_yaml_ng::Value;

use super::ctx::*;
use crate::compose::model::*;

pub(crate) fn port_number(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok()
}

pub(crate) fn port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a)?, port_number(b)?);
            (a <= b).then_some((a, b))
        }
        None => port_number(s).map(|p| (p, p)),
    }
}

/// The short port syntax: `[[IP:](HOST|RANGE):](CONTAINER|RANGE)[/PROTOCOL]`, IPv6 with or
/// without brackets, an empty host part for an ephemeral port (`127.0.0.1::80`).
pub fn parse_port_short(spec: &str) -> Result<Vec<PortMapping>, String> {
    let (body, protocol) = match spec.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("\"{protocol}\" is not a protocol (tcp, udp, sctp)"));
    }
    let (host_ip, host, container) = match body.rsplit_once(':') {
        None => (None, None, body),
        Some((rest, container)) => match rest.rsplit_once(':') {
            None => (None, Some(rest), container),
            Some((ip, host)) => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                (Some(ip.to_string()), Some(host), container)
            }
        },
    };
    let host = host.filter(|h| !h.is_empty());
    mappings(host_ip, host, container, &protocol).ok_or_else(|| {
        format!("\"{spec}\" is not a port mapping like 8080:80, 127.0.0.1:5432:5432 or 3000")
    })
}

pub(crate) fn mappings(
    host_ip: Option<String>,
    host: Option<&str>,
    container: &str,
    protocol: &str,
) -> Option<Vec<PortMapping>> {
    let (c0, c1) = port_range(container)?;
    let one = |host_port: Option<u16>, end: Option<u16>, cp: u16| PortMapping {
        host_ip: host_ip.clone().filter(|i| !i.is_empty()),
        host_port,
        host_port_end: end,
        container_port: cp,
        protocol: protocol.to_string(),
    };
    match host {
        None => Some((c0..=c1).map(|cp| one(None, None, cp)).collect()),
        Some(h) => {
            let (h0, h1) = port_range(h)?;
            if c0 == c1 {
                Some(vec![one(Some(h0), (h1 != h0).then_some(h1), c0)])
            } else if h1 - h0 == c1 - c0 {
                Some(
                    (0..=(c1 - c0))
                        .map(|i| one(Some(h0 + i), None, c0 + i))
                        .collect(),
                )
            } else {
                None
            }
        }
    }
}

pub(crate) fn ports(c: &mut Ctx, v: &Value) -> Vec<PortMapping> {
    let Value::Sequence(items) = v else {
        c.error("ports", "must be a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("ports[{i}]");
        match item {
            Value::Mapping(m) => {
                for k in m.keys().filter_map(Value::as_str) {
                    if ![
                        "target",
                        "published",
                        "host_ip",
                        "protocol",
                        "mode",
                        "name",
                        "app_protocol",
                    ]
                    .contains(&k)
                    {
                        c.error(
                            &format!("{key}.{k}"),
                            "is not a key of the long port syntax",
                        );
                    }
                }
                let Some(target) = m.get("target").and_then(scalar) else {
                    c.error(&format!("{key}.target"), "is required");
                    continue;
                };
                let protocol = m
                    .get("protocol")
                    .and_then(scalar)
                    .unwrap_or_else(|| "tcp".into());
                let published = m
                    .get("published")
                    .and_then(scalar)
                    .filter(|p| !p.is_empty());
                let host_ip = m.get("host_ip").and_then(scalar);
                match mappings(host_ip, published.as_deref(), &target, &protocol) {
                    Some(ms) => out.extend(ms),
                    None => c.error(
                        &key,
                        format!(
                            "target {target} / published {} do not form a port mapping",
                            published.unwrap_or_default()
                        ),
                    ),
                }
            }
            other => match scalar(other) {
                Some(s) => match parse_port_short(&s) {
                    Ok(ms) => out.extend(ms),
                    Err(m) => c.error(&key, m),
                },
                None => c.error(&key, "must be a string like \"8080:80\" or a mapping"),
            },
        }
    }
    out
}
