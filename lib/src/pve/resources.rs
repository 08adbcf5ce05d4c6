//! `/cluster/resources --type vm` and a storage volume, as types (pve-manager
//! `PVE/API2/Cluster.pm` `resources`; pve-storage `PVE/API2/Storage/Content.pm` `info`).
//! Fields keep the names of Proxmox's JSON.

use serde_json::{Map, Value};

use super::Kind;
use crate::pvesh::{self, bool_of, paths, str_of, uint_of};
use crate::records::{self, Guest};
use crate::transport::RemoteCommand;

/// One guest of `/cluster/resources --type vm`. Proxmox leaves out what it does not know
/// (a guest of an offline node has no `name`; `pool` needs `Pool.Audit`), hence the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub vmid: u64,
    pub node: Option<String>,
    /// `qemu` or `lxc`; `openvz` and the other resource types are no guest.
    pub r#type: Kind,
    /// `running`, `stopped`; `unknown` on an offline node.
    pub status: Option<String>,
    pub name: Option<String>,
    pub template: bool,
    /// Split as pve-common `PVE::Tools::split_list` splits Proxmox's `"prod;web"`.
    pub tags: Vec<String>,
    pub lock: Option<String>,
    /// The HA manager's runtime state, when HA manages the guest.
    pub hastate: Option<String>,
    pub pool: Option<String>,
}

/// `pvesh get /cluster/resources --type vm`, also sent inside a batch.
pub fn vm_resources_cmd() -> RemoteCommand {
    pvesh::get(paths::CLUSTER_RESOURCES, &["--type", "vm"])
}

impl Resource {
    /// An entry of the list; `None` for what is not a guest or names no VMID.
    pub fn from_json(m: &Map<String, Value>) -> Option<Resource> {
        Some(Resource {
            r#type: Kind::parse(&str_of(m, "type")?)?,
            vmid: uint_of(m, "vmid")?,
            node: str_of(m, "node"),
            status: str_of(m, "status"),
            name: str_of(m, "name"),
            template: bool_of(m, "template").unwrap_or(false),
            tags: str_of(m, "tags")
                .map(|t| records::split_tags(&t))
                .unwrap_or_default(),
            lock: str_of(m, "lock"),
            hastate: str_of(m, "hastate"),
            pool: str_of(m, "pool"),
        })
    }

    /// The guests of a list answer.
    pub fn all(items: &[Map<String, Value>]) -> Vec<Resource> {
        items.iter().filter_map(Resource::from_json).collect()
    }

    pub fn running(&self) -> bool {
        self.status.as_deref() == Some("running")
    }

    /// Whether HA manages it (pve-ha-manager `vm_is_ha_managed`: any state but `ignored`).
    pub fn ha_managed(&self) -> bool {
        self.hastate.as_deref().is_some_and(|s| s != "ignored")
    }
}

impl From<Resource> for Guest {
    /// The `guest` record of the contract.
    fn from(r: Resource) -> Guest {
        Guest {
            node: r.node,
            vmid: r.vmid,
            name: r.name,
            guest_type: r.r#type.as_str().into(),
            status: r.status,
            template: r.template,
            tags: r.tags,
            lock: r.lock,
            pool: r.pool,
            extra: Map::new(),
        }
    }
}

/// One volume of a storage (`/nodes/N/storage/S/content/VOLID`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Volume {
    /// Its path on the node; storages without one (PBS, RBD) give none.
    pub path: Option<String>,
    pub size: Option<u64>,
    pub format: Option<String>,
    pub protected: bool,
}

impl Volume {
    pub fn from_json(m: &Map<String, Value>) -> Volume {
        Volume {
            path: str_of(m, "path"),
            size: uint_of(m, "size"),
            format: str_of(m, "format"),
            protected: bool_of(m, "protected").unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_guest_entry_is_typed_and_anything_else_is_left_out() {
        let m = obj(
            json!({"id":"qemu/100","name":"web01","node":"pve1","status":"running",
            "tags":"prod;web","template":0,"type":"qemu","vmid":100,"hastate":"started"}),
        );
        let r = Resource::from_json(&m).expect("guest");
        assert_eq!(
            (r.vmid, r.r#type, r.tags.clone()),
            (100, Kind::Qemu, vec!["prod".into(), "web".into()])
        );
        assert!(r.running() && r.ha_managed() && !r.template);
        let g = Guest::from(r);
        assert_eq!(
            (g.guest_type.as_str(), g.name.as_deref()),
            ("qemu", Some("web01"))
        );
        for other in [
            json!({"type":"node","node":"pve1"}),
            json!({"type":"openvz","vmid":1}),
            json!({"type":"lxc"}),
        ] {
            assert!(Resource::from_json(&obj(other)).is_none());
        }
        let ignored = obj(json!({"type":"lxc","vmid":"101","hastate":"ignored","template":1}));
        let r = Resource::from_json(&ignored).expect("guest");
        assert!(!r.ha_managed() && r.template && !r.running());
    }
}
