//! Node and host from a Terraform `terraform.tfvars` file, so IP addresses live in one place.

use std::path::Path;

use crate::error::{Error, Result};

/// Variables tried, in order, for the SSH host when `--tfvars-host-var` is not given.
/// URLs (`https://10.0.0.2:8006/api2/json`) are reduced to their host.
pub const DEFAULT_HOST_VARS: &[&str] = &[
    "pve_host",
    "proxmox_host",
    "pm_api_url",
    "proxmox_endpoint",
    "virtual_environment_endpoint",
    "proxmox_api_url",
];

/// Variables tried, in order, for the node name when `--tfvars-node-var` is not given.
pub const DEFAULT_NODE_VARS: &[&str] = &["pve_node", "proxmox_node", "target_node", "node_name"];

/// The values read from a tfvars file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TfvarsTarget {
    pub host: Option<String>,
    pub node: Option<String>,
}

/// Reads the file; `host_var`/`node_var` override the default lists.
pub fn read(path: &Path, host_var: Option<&str>, node_var: Option<&str>) -> Result<TfvarsTarget> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let body: hcl::Map<String, hcl::Value> = hcl::from_str(&text).map_err(|e| Error::File {
        path: path.to_path_buf(),
        message: format!("not a valid tfvars file: {e}"),
    })?;
    let find = |explicit: Option<&str>, defaults: &[&str]| -> Result<Option<String>> {
        let names: Vec<&str> = match explicit {
            Some(n) => vec![n],
            None => defaults.to_vec(),
        };
        for n in &names {
            match body.get(*n) {
                Some(hcl::Value::String(s)) => return Ok(Some(s.clone())),
                Some(_) => {
                    return Err(Error::File {
                        path: path.to_path_buf(),
                        message: format!("variable '{n}' is not a string"),
                    });
                }
                None => {}
            }
        }
        if explicit.is_some() {
            return Err(Error::File {
                path: path.to_path_buf(),
                message: format!("variable '{}' is not set", names[0]),
            });
        }
        Ok(None)
    };
    let host = find(host_var, DEFAULT_HOST_VARS)?.map(|h| host_of(&h));
    let node = find(node_var, DEFAULT_NODE_VARS)?;
    Ok(TfvarsTarget { host, node })
}

/// `https://10.0.0.2:8006/api2/json` → `10.0.0.2`; a bare host stays as it is.
fn host_of(v: &str) -> String {
    let rest = v.split_once("://").map(|(_, r)| r).unwrap_or(v);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = hostport
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(hostport);
    if let Some(inner) = hostport.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner).to_string();
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => hostport.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_and_overrides() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("terraform.tfvars");
        std::fs::write(
            &p,
            "pm_api_url = \"https://10.0.0.2:8006/api2/json\"\ntarget_node = \"pve1\"\nmy_ip = \"192.168.1.5\"\ncount = 3\n",
        )
        .expect("write");
        let t = read(&p, None, None).expect("read");
        assert_eq!(t.host.as_deref(), Some("10.0.0.2"));
        assert_eq!(t.node.as_deref(), Some("pve1"));
        let t = read(&p, Some("my_ip"), None).expect("read");
        assert_eq!(t.host.as_deref(), Some("192.168.1.5"));
        assert!(read(&p, Some("missing"), None).is_err());
        assert!(read(&p, Some("count"), None).is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("pve1.lan"), "pve1.lan");
        assert_eq!(host_of("https://[fd00::2]:8006/"), "fd00::2");
        assert_eq!(host_of("https://root@pve:8006"), "pve");
    }
}
