//! What a node offers a guest: its storages and its bridges (SDN vnets among them), the
//! cluster's resource mappings and its QEMU's capabilities, typed; [`NodeFacts`] keeps them
//! for the plans of many guests.

use std::cell::OnceCell;
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::Client;
use crate::error::Result;
use crate::pvesh::{self, paths};
use crate::transport::RemoteCommand;

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
            content: content_list(&pvesh::str_of(m, "content").unwrap_or_default()),
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

    /// Whether it may hold `content` (`images`, `rootdir`, `backup`…): a whole entry of
    /// its content list.
    pub fn allows(&self, content: &str) -> bool {
        self.content.contains(content)
    }

    pub fn provisioning(&self) -> Provisioning {
        Provisioning::of(&self.storage_type)
    }
}

/// A storage's `content` entries, split as Proxmox splits a `-list` format (pve-common
/// `src/PVE/ParseUtils.pm` `split_list`: commas, semicolons and white space; pve-storage
/// `src/PVE/Storage/Plugin.pm` `decode_value` reads `content` so, and
/// `content_hash_to_string` gives the API's answer joined by commas).
fn content_list(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c == ',' || c == ';' || c == '\0' || c.is_whitespace())
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// A bridge a guest's `bridge=` may name on a node: a Linux or OVS bridge, or an SDN vnet
/// whose zone takes in the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub iface: String,
    /// `bridge`, `OVSBridge` or `vnet`.
    pub iface_type: String,
}

/// A cluster resource mapping (`/cluster/mapping/pci`, `/cluster/mapping/usb`, pve-manager
/// `PVE/API2/Cluster/Mapping/PCI.pm`, `USB.pm` `index`): its ID and the nodes its `map`
/// entries (`node=N,path=…,id=…`) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub id: String,
    pub nodes: Vec<String>,
}

/// `/nodes/N/storage`: every storage of storage.cfg, with whether it is enabled there.
fn storages_cmd(node: &str) -> RemoteCommand {
    pvesh::get(&paths::storages(node), &[])
}

fn parse_storages(items: &[Map<String, Value>]) -> Vec<Storage> {
    items.iter().filter_map(Storage::from_json).collect()
}

/// `/nodes/N/network --type any_bridge`: the node's Linux and OVS bridges and the SDN vnets
/// of zones on the node, each only if the caller may see it (pve-manager
/// `PVE/API2/Network.pm` `index`: `any_bridge` keeps `bridge`/`OVSBridge` and adds
/// pve-network `PVE/Network/SDN.pm` `get_local_vnets`; a bridge or vnet without `SDN.Audit`
/// or `SDN.Use` on `/sdn/zones/ZONE/IFACE` is left out).
fn bridges_cmd(node: &str) -> RemoteCommand {
    pvesh::get(&paths::network(node), &["--type", "any_bridge"])
}

fn parse_bridges(items: &[Map<String, Value>]) -> Vec<Bridge> {
    items
        .iter()
        .filter_map(|m| {
            Some(Bridge {
                iface: pvesh::str_of(m, "iface")?,
                iface_type: pvesh::str_of(m, "type").unwrap_or_default(),
            })
        })
        .collect()
}

/// The mappings the caller may see (`Mapping.Audit`, `Mapping.Use` or `Mapping.Modify` on
/// `/mapping/KIND/ID`), of one kind.
fn mappings_cmd(kind: &str) -> RemoteCommand {
    pvesh::get(&format!("/cluster/mapping/{kind}"), &[])
}

fn parse_mappings(items: &[Map<String, Value>]) -> Vec<Mapping> {
    items
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
        .collect()
}

/// `/nodes/N/capabilities/qemu/cpu` (qemu-server `API2/Qemu/CPU.pm` `index`: CPU models by
/// `name`) or `…/machines` (`API2/Qemu/Machine.pm`: machine versions by `id`, e.g.
/// `pc-q35-9.0`, `pc-i440fx-8.1+pve1`).
fn capability_cmd(node: &str, what: &str) -> RemoteCommand {
    pvesh::get(&format!("/nodes/{node}/capabilities/qemu/{what}"), &[])
}

fn parse_names(items: &[Map<String, Value>], key: &str) -> Vec<String> {
    items.iter().filter_map(|m| pvesh::str_of(m, key)).collect()
}

impl Client<'_> {
    /// `/nodes/N/storage`: every storage of storage.cfg, with whether it is enabled there.
    pub fn storages(&self, node: &str) -> Result<Vec<Storage>> {
        Ok(parse_storages(&self.list(&storages_cmd(node))?))
    }

    /// The node's bridges and SDN vnets the caller may see (see [`Bridge`]).
    pub fn bridges(&self, node: &str) -> Result<Vec<Bridge>> {
        Ok(parse_bridges(&self.list(&bridges_cmd(node))?))
    }

    /// `/cluster/mapping/{pci,usb}`: the mappings the caller may see (`Mapping.Audit`,
    /// `Mapping.Use` or `Mapping.Modify` on `/mapping/KIND/ID`).
    pub fn mappings(&self, kind: &str) -> Result<Vec<Mapping>> {
        Ok(parse_mappings(&self.list(&mappings_cmd(kind))?))
    }

    /// `/nodes/N/capabilities/qemu/cpu`: the CPU models the node's QEMU offers, by name
    /// (qemu-server `API2/Qemu/CPU.pm` `index`).
    pub fn cpu_models(&self, node: &str) -> Result<Vec<String>> {
        let items = self.list(&capability_cmd(node, "cpu"))?;
        Ok(parse_names(&items, "name"))
    }

    /// `/nodes/N/capabilities/qemu/machines`: the machine versions the node's QEMU runs,
    /// by id (`pc-q35-9.0`, `pc-i440fx-8.1+pve1`; qemu-server `API2/Qemu/Machine.pm`).
    pub fn machines(&self, node: &str) -> Result<Vec<String>> {
        let items = self.list(&capability_cmd(node, "machines"))?;
        Ok(parse_names(&items, "id"))
    }
}

/// What one node offers a restore, read once and shared by the plans of every guest of a
/// run (pve-restore keeps one per node per run): its storages, bridges and vnets, the
/// cluster's resource mappings, its QEMU's CPU models and machine versions. Each part is
/// read when first asked for, or all at once in one parallel batch ([`NodeFacts::prefetch`]).
/// A read that failed is not kept: the next ask reads again and gets the node's own error,
/// as without the cache. The holder drops it when the node changes (a restore ran).
#[derive(Debug, Default)]
pub struct NodeFacts {
    node: String,
    storages: OnceCell<Vec<Storage>>,
    bridges: OnceCell<Vec<Bridge>>,
    pci: OnceCell<Vec<Mapping>>,
    usb: OnceCell<Vec<Mapping>>,
    cpu_models: OnceCell<Vec<String>>,
    machines: OnceCell<Vec<String>>,
}

/// The cell's value, read into it first if it has none; a failed read leaves it empty.
fn kept<T>(cell: &OnceCell<Vec<T>>, read: impl FnOnce() -> Result<Vec<T>>) -> Result<&[T]> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = read()?;
    Ok(cell.get_or_init(|| v))
}

impl NodeFacts {
    pub fn new(node: &str) -> NodeFacts {
        NodeFacts {
            node: node.to_string(),
            ..Default::default()
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn storages(&self, c: &Client) -> Result<&[Storage]> {
        kept(&self.storages, || c.storages(&self.node))
    }

    pub fn bridges(&self, c: &Client) -> Result<&[Bridge]> {
        kept(&self.bridges, || c.bridges(&self.node))
    }

    /// The cluster's `pci` or `usb` mappings (the same for every node; kept per node for
    /// one place to drop them).
    pub fn mappings(&self, c: &Client, kind: &str) -> Result<&[Mapping]> {
        let cell = if kind == "usb" { &self.usb } else { &self.pci };
        kept(cell, || c.mappings(kind))
    }

    pub fn cpu_models(&self, c: &Client) -> Result<&[String]> {
        kept(&self.cpu_models, || c.cpu_models(&self.node))
    }

    pub fn machines(&self, c: &Client) -> Result<&[String]> {
        kept(&self.machines, || c.machines(&self.node))
    }

    /// Every part not read yet, in one batch (in parallel on the node; over the API one
    /// request each). A part that fails is left to be read, and to fail, when asked for:
    /// only the batch itself failing is an error.
    pub fn prefetch(&self, c: &Client) -> Result<()> {
        let parts: Vec<Part> = Part::ALL
            .into_iter()
            .filter(|p| !self.is_read(*p))
            .collect();
        let cmds: Vec<RemoteCommand> = parts.iter().map(|p| p.cmd(&self.node)).collect();
        let outs = c.t.exec_batch(&cmds)?;
        for ((p, cmd), out) in parts.into_iter().zip(&cmds).zip(outs) {
            if let Ok(items) = pvesh::parse_list(c.t.host(), cmd, out) {
                self.fill(p, &items);
            }
        }
        Ok(())
    }

    fn is_read(&self, p: Part) -> bool {
        match p {
            Part::Storages => self.storages.get().is_some(),
            Part::Bridges => self.bridges.get().is_some(),
            Part::Pci => self.pci.get().is_some(),
            Part::Usb => self.usb.get().is_some(),
            Part::Cpu => self.cpu_models.get().is_some(),
            Part::Machines => self.machines.get().is_some(),
        }
    }

    fn fill(&self, p: Part, items: &[Map<String, Value>]) {
        // Only empty cells are filled, so `set` cannot refuse.
        match p {
            Part::Storages => drop(self.storages.set(parse_storages(items))),
            Part::Bridges => drop(self.bridges.set(parse_bridges(items))),
            Part::Pci => drop(self.pci.set(parse_mappings(items))),
            Part::Usb => drop(self.usb.set(parse_mappings(items))),
            Part::Cpu => drop(self.cpu_models.set(parse_names(items, "name"))),
            Part::Machines => drop(self.machines.set(parse_names(items, "id"))),
        }
    }
}

/// The reads [`NodeFacts`] keeps.
#[derive(Debug, Clone, Copy)]
enum Part {
    Storages,
    Bridges,
    Pci,
    Usb,
    Cpu,
    Machines,
}

impl Part {
    const ALL: [Part; 6] = [
        Part::Storages,
        Part::Bridges,
        Part::Pci,
        Part::Usb,
        Part::Cpu,
        Part::Machines,
    ];

    fn cmd(self, node: &str) -> RemoteCommand {
        match self {
            Part::Storages => storages_cmd(node),
            Part::Bridges => bridges_cmd(node),
            Part::Pci => mappings_cmd("pci"),
            Part::Usb => mappings_cmd("usb"),
            Part::Cpu => capability_cmd(node, "cpu"),
            Part::Machines => capability_cmd(node, "machines"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_a_list_of_whole_entries() {
        let m = |content: &str| {
            let v = serde_json::json!({"storage": "s", "content": content});
            Storage::from_json(v.as_object().expect("object")).expect("storage")
        };
        let s = m("rootdir,backup; iso  images");
        for c in ["rootdir", "backup", "iso", "images"] {
            assert!(s.allows(c), "{c}: {:?}", s.content);
        }
        for c in ["root", "image", "", "backup; iso", "vztmpl"] {
            assert!(!s.allows(c), "{c:?}: {:?}", s.content);
        }
        assert!(m("").content.is_empty());
    }

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
