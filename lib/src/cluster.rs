//! The cluster as `/cluster/status` shows it, and the way to run a node-local command
//! (`qm`, `pct`, `vzdump`) on the node that owns a guest: the connection itself when
//! it lands there, else a [`Hop`] over the cluster's own SSH (pve-cluster `SSHInfo.pm`).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::pvesh;
use crate::transport::{Hop, Transport};
use crate::validate;

/// The node the connection lands on (`local: 1`) and each online node's IP.
#[derive(Debug, Default, Clone)]
pub struct Cluster {
    pub local: Option<String>,
    pub ips: HashMap<String, String>,
}

impl Cluster {
    /// `None`: run on the connection itself; `Some(t)`: on the node through the API, or
    /// through the cluster's SSH.
    pub fn route<'a>(
        &self,
        t: &'a dyn Transport,
        node: &str,
    ) -> Result<Option<Box<dyn Transport + 'a>>> {
        if self.local.as_deref() == Some(node) {
            return Ok(None);
        }
        let ip = self.ips.get(node).ok_or_else(|| {
            Error::Refused(format!(
                "node {node} is not in /cluster/status (offline, or not in this cluster): its guests cannot be reached"
            ))
        })?;
        Ok(Some(match t.on_node(node) {
            Some(direct) => direct,
            None => Box::new(Hop::new(t, node, ip)),
        }))
    }
}

/// Reads `/cluster/status`; node names and IPs are validated (they reach a shell).
pub fn read(t: &dyn Transport) -> Result<Cluster> {
    let cmd = pvesh::get(pvesh::paths::CLUSTER_STATUS, &[]);
    let items = pvesh::parse_list(t.host(), &cmd, t.exec(&cmd)?)?;
    let bad = |what: &str, v: &str| Error::Protocol {
        host: t.host().into(),
        command: cmd.line(),
        message: format!("the node sent an invalid {what} '{}'", v.escape_debug()),
    };
    let mut c = Cluster::default();
    for m in items
        .iter()
        .filter(|m| pvesh::str_of(m, "type").as_deref() == Some("node"))
    {
        let Some(name) = pvesh::str_of(m, "name") else {
            continue;
        };
        validate::node(&name).map_err(|_| bad("node name", &name))?;
        if pvesh::bool_of(m, "local") == Some(true) {
            c.local = Some(name.clone());
        }
        let online = pvesh::bool_of(m, "online") != Some(false);
        if let Some(ip) = pvesh::str_of(m, "ip").filter(|_| online) {
            if !valid_ip(&ip) {
                return Err(bad("IP address", &ip));
            }
            c.ips.insert(name, ip);
        }
    }
    Ok(c)
}

fn valid_ip(ip: &str) -> bool {
    !ip.is_empty()
        && ip.len() <= 64
        && ip
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b".:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Local;

    #[test]
    fn local_node_needs_no_hop_and_unknown_nodes_are_refused() {
        let mut c = Cluster {
            local: Some("pve1".into()),
            ..Default::default()
        };
        c.ips.insert("pve2".into(), "10.0.0.2".into());
        let local = Local::default();
        assert!(c.route(&local, "pve1").expect("route").is_none());
        assert!(c.route(&local, "pve2").expect("route").is_some());
        assert!(c.route(&local, "pve3").is_err());
        assert!(valid_ip("10.0.0.2") && valid_ip("fe80::1") && !valid_ip("1;reboot"));
    }
}
