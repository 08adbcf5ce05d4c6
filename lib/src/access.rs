//! Proxmox privileges: what an operation needs, and what an API token has.
//!
//! Over SSH or on the node pvedr runs as root, which has every privilege. Over the API a
//! token has what its ACLs give: `GET /access/permissions` answers, per ACL path, each
//! privilege with `1` when it propagates to the paths below (pve-access-control
//! `src/PVE/API2/AccessControl.pm` `permissions`, from `PVE::AccessControl::permission`).
//! A privilege holds on a path when the nearest listed path at or above it grants it, an
//! ancestor only when it propagates, as `PVE/RPCEnvironment.pm` `permissions` walks the tree.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// One privilege check: any of `privs` on `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub path: String,
    pub any_of: Vec<&'static str>,
}

impl Need {
    pub fn new(path: impl Into<String>, any_of: &[&'static str]) -> Need {
        Need {
            path: path.into(),
            any_of: any_of.to_vec(),
        }
    }

    pub fn vm(vmid: u64, any_of: &[&'static str]) -> Need {
        Need::new(format!("/vms/{vmid}"), any_of)
    }

    pub fn storage(sid: &str, any_of: &[&'static str]) -> Need {
        Need::new(format!("/storage/{sid}"), any_of)
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.any_of.join(" or "), self.path)
    }
}

/// Every need of `needs` that `has` does not meet, as one readable phrase.
pub fn describe(missing: &[Need]) -> String {
    missing
        .iter()
        .map(Need::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A token's effective privileges, as `/access/permissions` gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perms {
    paths: BTreeMap<String, BTreeMap<String, bool>>,
}

impl Perms {
    /// `{"/": {"Sys.Audit": 1}, "/vms/100": {"VM.Backup": 0}}`; anything else is ignored.
    pub fn from_json(v: &Value) -> Perms {
        let mut paths = BTreeMap::new();
        if let Value::Object(m) = v {
            for (path, privs) in m {
                let Value::Object(privs) = privs else {
                    continue;
                };
                let set = privs
                    .iter()
                    .map(|(p, prop)| (p.clone(), propagates(prop)))
                    .collect();
                paths.insert(normalize(path), set);
            }
        }
        Perms { paths }
    }

    /// Whether `privilege` holds on `path`.
    pub fn has(&self, path: &str, privilege: &str) -> bool {
        let mut p = normalize(path);
        let mut exact = true;
        loop {
            if let Some(privs) = self.paths.get(&p) {
                return privs.get(privilege).is_some_and(|&prop| exact || prop);
            }
            if p == "/" {
                return false;
            }
            p = parent(&p);
            exact = false;
        }
    }

    /// The needs not met.
    pub fn missing(&self, needs: &[Need]) -> Vec<Need> {
        needs
            .iter()
            .filter(|n| !n.any_of.iter().any(|p| self.has(&n.path, p)))
            .cloned()
            .collect()
    }
}

fn propagates(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() != Some(0),
        Value::String(s) => s != "0",
        _ => false,
    }
}

fn normalize(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else if t.starts_with('/') {
        t.into()
    } else {
        format!("/{t}")
    }
}

fn parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => p[..i].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nearest_path_decides_and_ancestors_only_when_propagated() {
        let p = Perms::from_json(&json!({
            "/": {"Sys.Audit": 1, "VM.Audit": 0},
            "/storage/nas": {"Datastore.Audit": 1},
            "/vms/100": {"VM.Backup": 0}
        }));
        assert!(p.has("/", "VM.Audit"));
        assert!(!p.has("/vms/101", "VM.Audit"), "not propagated");
        assert!(p.has("/nodes/pve1", "Sys.Audit"));
        assert!(p.has("/storage/nas", "Datastore.Audit"));
        assert!(
            !p.has("/storage/nas", "Sys.Audit"),
            "the nearest path decides"
        );
        assert!(p.has("/vms/100", "VM.Backup"));
        let missing = p.missing(&[
            Need::vm(100, &["VM.Allocate"]),
            Need::storage("nas", &["Datastore.Allocate", "Datastore.Audit"]),
        ]);
        assert_eq!(describe(&missing), "VM.Allocate on /vms/100");
    }
}
