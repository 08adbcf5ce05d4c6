//! Proxmox privileges: what an operation needs, and what an API token has.
//!
//! Over SSH or on the node pvedr runs as root, which has every privilege. Over the API a
//! token has what its ACLs give, and Proxmox alone works that out (the ACL tree, propagation,
//! `NoAccess`, pools): pvedr asks for each exact path, `GET /access/permissions?path=P`
//! (pve-access-control `src/PVE/API2/AccessControl.pm` `permissions`, which answers
//! `{P: {privilege: propagate}}` from `PVE/RPCEnvironment.pm` `permissions`), and derives
//! nothing from the whole tree.

use std::collections::BTreeSet;
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

/// A token's effective privileges on one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privs(BTreeSet<String>);

impl Privs {
    /// The answer to `GET /access/permissions?path=PATH`: `{PATH: {"VM.Audit": 1}}`, or `{}`
    /// when the token has nothing there; entries for other paths are ignored.
    pub fn from_answer(v: &Value, path: &str) -> Privs {
        let set = v
            .get(path)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        Privs(set)
    }

    pub fn has(&self, privilege: &str) -> bool {
        self.0.contains(privilege)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_asked_path_counts() {
        let a = json!({"/vms/100": {"VM.Backup": 0}, "/vms": {"VM.Allocate": 1}});
        let p = Privs::from_answer(&a, "/vms/100");
        assert!(p.has("VM.Backup"));
        assert!(
            !p.has("VM.Allocate"),
            "another path's entry is not this one's"
        );
        assert!(!Privs::from_answer(&json!({}), "/vms/100").has("VM.Backup"));
    }
}
