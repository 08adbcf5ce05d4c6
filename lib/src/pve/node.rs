//! What a node offers a guest: its storages and its bridges (SDN vnets among them), typed.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::Client;
use crate::error::Result;
use crate::pvesh::{self, paths};

/// How a storage takes a new disk, which says what its free space means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// Space taken when the volume is made (`lvm`, `iscsidirect`…).
    Thick,
    /// A thin pool: a volume takes space as it is written, so the pool can be overcommitted
    /// (`lvmthin`, `zfspool`, `rbd`).
    Thin,
    /// Files on a file system (`dir`, `nfs`, `cifs`, `btrfs`, `cephfs`…): sparse images.
    Files,
}

impl Provisioning {
    fn of(storage_type: &str) -> Provisioning {
        match storage_type {
            "lvmthin" | "zfspool" | "zfs" | "rbd" => Provisioning::Thin,
            "dir" | "nfs" | "cifs" | "btrfs" | "cephfs" | "glusterfs" | "pbs" | "esxi" => {
                Provisioning::Files
            }
            _ => Provisioning::Thick,
        }
    }
}

/// One entry of `/nodes/N/storage` (pve-storage `API2/Storage/Status.pm` `index`, filled
/// by `Storage.pm` `storage_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub storage: String,
    /// `type`: `dir`, `lvmthin`, `zfspool`, `pbs`…
    pub storage_type: String,
    pub content: BTreeSet<String>,
    pub shared: bool,
    /// Not `disable`d and, when storage.cfg limits it with `nodes`, this node among them
    /// (`storage_check_enabled`): a storage of other nodes is still listed, with 0.
    pub enabled: bool,
    /// Activated and reporting its space.
    pub active: bool,
    pub total: Option<u64>,
    pub avail: Option<u64>,
    pub used: Option<u64>,
}

impl Storage {
    fn from_json(m: &Map<String, Value>) -> Option<Storage> {
        Some(Storage::from_status(pvesh::str_of(m, "storage")?, m))
    }

    /// `/nodes/N/storage/S/status`: the same `storage_info` entry, without its id
    /// (pve-storage `API2/Storage/Status.pm` `read_status`).
    pub(crate) fn from_status(storage: String, m: &Map<String, Value>) -> Storage {
        let size = |k| pvesh::int_of(m, k).and_then(|v| u64::try_from(v).ok());
        Storage {
            storage,
            storage_type: pvesh::str_of(m, "type").unwrap_or_default(),
            content: pvesh::str_of(m, "content")
                .unwrap_or_default()
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            shared: pvesh::bool_of(m, "shared") == Some(true),
            enabled: pvesh::bool_of(m, "enabled") == Some(true),
            active: pvesh::bool_of(m, "active") == Some(true),
            total: size("total"),
            avail: size("avail"),
            used: size("used"),
        }
    }

    /// Enabled on the node and active: a restore can write there.
    pub fn usable(&self) -> bool {
        self.enabled && self.active
    }

    /// Whether it may hold `content` (`images`, `rootdir`, `backup`…).
    pub fn allows(&self, content: &str) -> bool {
        self.content.contains(content)
    }

    pub fn provisioning(&self) -> Provisioning {
        Provisioning::of(&self.storage_type)
    }
}

/// A bridge a guest's `bridge=` may name on a node: a Linux or OVS bridge, or an SDN vnet
/// whose zone takes in the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub iface: String,
    /// `bridge`, `OVSBridge` or `vnet`.
    pub iface_type: String,
}

impl Client<'_> {
    /// `/nodes/N/storage`: every storage of storage.cfg, with whether it is enabled there.
    pub fn storages(&self, node: &str) -> Result<Vec<Storage>> {
        let items = self.list(&pvesh::get(&paths::storages(node), &[]))?;
        Ok(items.iter().filter_map(Storage::from_json).collect())
    }

    /// `/nodes/N/network --type any_bridge`: the node's Linux and OVS bridges and the SDN
    /// vnets of zones on the node, each only if the caller may see it (pve-manager
    /// `PVE/API2/Network.pm` `index`: `any_bridge` keeps `bridge`/`OVSBridge` and adds
    /// pve-network `PVE/Network/SDN.pm` `get_local_vnets`; a bridge or vnet without
    /// `SDN.Audit` or `SDN.Use` on `/sdn/zones/ZONE/IFACE` is left out).
    pub fn bridges(&self, node: &str) -> Result<Vec<Bridge>> {
        let cmd = pvesh::get(&paths::network(node), &["--type", "any_bridge"]);
        let items = self.list(&cmd)?;
        Ok(items
            .iter()
            .filter_map(|m| {
                Some(Bridge {
                    iface: pvesh::str_of(m, "iface")?,
                    iface_type: pvesh::str_of(m, "type").unwrap_or_default(),
                })
            })
            .collect())
    }
}

/// A cluster resource mapping (`/cluster/mapping/pci`, `/cluster/mapping/usb`, pve-manager
/// `PVE/API2/Cluster/Mapping/PCI.pm`, `USB.pm` `index`): its ID and the nodes its `map`
/// entries (`node=N,path=…,id=…`) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub id: String,
    pub nodes: Vec<String>,
}

impl Client<'_> {
    /// `/cluster/mapping/{pci,usb}`: the mappings the caller may see (`Mapping.Audit`,
    /// `Mapping.Use` or `Mapping.Modify` on `/mapping/KIND/ID`).
    pub fn mappings(&self, kind: &str) -> Result<Vec<Mapping>> {
        let items = self.list(&pvesh::get(&format!("/cluster/mapping/{kind}"), &[]))?;
        Ok(items
            .iter()
            .filter_map(|m| {
                let entries = m.get("map")?.as_array()?;
                let nodes = entries
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|e| {
                        super::props::Props::parse(e)
                            .get("node")
                            .map(str::to_string)
                    })
                    .collect();
                Some(Mapping {
                    id: pvesh::str_of(m, "id")?,
                    nodes,
                })
            })
            .collect())
    }

    /// `/nodes/N/capabilities/qemu/cpu`: the CPU models the node's QEMU offers, by name
    /// (qemu-server `API2/Qemu/CPU.pm` `index`).
    pub fn cpu_models(&self, node: &str) -> Result<Vec<String>> {
        let path = format!("/nodes/{node}/capabilities/qemu/cpu");
        let items = self.list(&pvesh::get(&path, &[]))?;
        Ok(items
            .iter()
            .filter_map(|m| pvesh::str_of(m, "name"))
            .collect())
    }

    /// `/nodes/N/capabilities/qemu/machines`: the machine versions the node's QEMU runs,
    /// by id (`pc-q35-9.0`, `pc-i440fx-8.1+pve1`; qemu-server `API2/Qemu/Machine.pm`).
    pub fn machines(&self, node: &str) -> Result<Vec<String>> {
        let path = format!("/nodes/{node}/capabilities/qemu/machines");
        let items = self.list(&pvesh::get(&path, &[]))?;
        Ok(items
            .iter()
            .filter_map(|m| pvesh::str_of(m, "id"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_of_other_nodes_is_listed_but_not_usable() {
        let v = serde_json::json!({"storage": "nas", "type": "nfs", "content": "images,backup",
            "enabled": 0, "active": 0, "shared": 1, "total": 0, "avail": 0});
        let s = Storage::from_json(v.as_object().expect("object")).expect("storage");
        assert!(!s.usable() && s.allows("images") && !s.allows("rootdir") && s.shared);
        assert_eq!(s.provisioning(), Provisioning::Files);
        let v = serde_json::json!({"storage": "nvme", "type": "lvmthin", "content": "rootdir,images",
            "enabled": 1, "active": 1, "avail": "4e+11"});
        let s = Storage::from_json(v.as_object().expect("object")).expect("storage");
        assert!(s.usable() && s.provisioning() == Provisioning::Thin);
        assert_eq!(s.avail, Some(400_000_000_000));
    }
}
