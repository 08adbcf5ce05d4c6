//! A guest's config, typed: built from `key: value` pairs, so that the same type serves
//! the JSON of `GET /nodes/N/{qemu,lxc}/V/config` and the text of a backup's config
//! (`pvesm extractconfig`, pve-storage `PVE/CLI/pvesm.pm`). Values are property strings
//! ([`super::props`]); keys not read here stay in [`GuestConfig::rest`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Kind;
use super::props::{Props, boolean};
use crate::validate;

/// A VM drive that is no CD-ROM, or a container's root file system or mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// `scsi0`, `efidisk0`, `rootfs`, `mp1`.
    pub key: String,
    /// What the value names: `STORAGE:NAME`, a path (`/dev/sdb`, a bind mount) or `none`.
    pub source: String,
    /// The storage, when `source` is a storage volume.
    pub storage: Option<String>,
    pub size: Option<String>,
    /// Whether vzdump backs it up: a VM drive unless `backup=0`; a container's root file
    /// system always, a mount point only with `backup=1` (pve-container
    /// `src/PVE/LXC/Config.pm` `mountpoint_backup_enabled`).
    pub backup: bool,
    pub props: Props,
}

impl Disk {
    /// A storage volume, not a path (bind mount, device, passed-through disk) or `none`.
    pub fn is_volume(&self) -> bool {
        self.storage.is_some()
    }
}

/// A `netN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    pub key: String,
    pub bridge: Option<String>,
    /// The VLAN tag.
    pub tag: Option<u16>,
    pub firewall: bool,
    pub link_down: bool,
    /// A VM's `MODEL=MAC` or `macaddr=` (qemu-server `QemuServer/Network.pm`: each model
    /// is an alias of `macaddr`), a container's `hwaddr=`.
    pub mac: Option<String>,
    pub props: Props,
}

impl Net {
    /// The value with its link down, an old `link_down` replaced: Proxmox refuses a key
    /// given twice (`parse_property_string`: "duplicate key").
    pub fn with_link_down(&self) -> String {
        let rest = self.props.print_without("link_down");
        if rest.is_empty() {
            "link_down=1".into()
        } else {
            format!("{rest},link_down=1")
        }
    }
}

/// A volume named by key (`unused0`, or a disk's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub key: String,
    pub volume: String,
}

/// A `hostpciN` or `usbN`: a host device, or a cluster mapping (`mapping=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub key: String,
    /// `host=` or the bare value; `None` for a mapping.
    pub host: Option<String>,
    /// `mapping=`: a cluster resource mapping's ID (`/cluster/mapping/{pci,usb}`).
    pub mapping: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestConfig {
    pub disks: Vec<Disk>,
    pub nets: Vec<Net>,
    pub unused: Vec<Volume>,
    pub devices: Vec<Device>,
    /// A container's raw `lxc.*` keys, as `key: value`.
    pub lxc: Vec<String>,
    pub template: bool,
    pub protection: bool,
    pub lock: Option<String>,
    /// The snapshot the current state derives from.
    pub parent: Option<String>,
    /// Every other key but `digest`.
    pub rest: BTreeMap<String, String>,
}

const VM_DRIVES: &[&str] = &["ide", "scsi", "virtio", "sata", "efidisk", "tpmstate"];
const MODELS: &[&str] = &[
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
];

/// `prefix` and digits (`mp0`, `net12`).
fn numbered(key: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| {
        key.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
    })
}

/// The storage of `STORAGE:NAME`, a valid storage ID with a name after it.
fn storage_of(source: &str) -> Option<String> {
    let (sid, name) = source.split_once(':')?;
    (!name.is_empty() && !source.starts_with('/') && validate::storage_id(sid).is_ok())
        .then(|| sid.to_string())
}

impl GuestConfig {
    /// From the config's keys and values, in any order (a backup's text may hold a key
    /// twice: the last wins, as in pve-guest-common `AbstractConfig.pm` `parse_config`).
    pub fn from_pairs(kind: Kind, pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let all: BTreeMap<String, String> = pairs.into_iter().collect();
        let mut c = GuestConfig::default();
        for (k, v) in all {
            c.add(kind, k, v);
        }
        c
    }

    /// The `data` of `GET …/config`: strings and numbers; a container's raw keys come as
    /// `lxc: [[KEY, VALUE], …]` (pve-container `API2/LXC/Config.pm` `vm_config`).
    pub fn from_json(kind: Kind, m: &Map<String, Value>) -> Self {
        let mut pairs = Vec::new();
        for (k, v) in m {
            match v {
                Value::String(s) => pairs.push((k.clone(), s.clone())),
                Value::Number(n) => pairs.push((k.clone(), n.to_string())),
                Value::Array(raw) if k == "lxc" => pairs.extend(raw.iter().filter_map(|e| {
                    let kv = e.as_array()?;
                    Some((kv.first()?.as_str()?.into(), kv.get(1)?.as_str()?.into()))
                })),
                _ => {}
            }
        }
        Self::from_pairs(kind, pairs)
    }

    /// A config file's text: `key: value` lines up to the first snapshot section
    /// (`[name]`), `#` lines (the description) skipped.
    pub fn from_text(kind: Kind, text: &str) -> Self {
        let pairs = text
            .lines()
            .take_while(|l| !l.starts_with('['))
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            });
        Self::from_pairs(kind, pairs)
    }

    fn add(&mut self, kind: Kind, k: String, v: String) {
        let lxc = kind == Kind::Lxc;
        match k.as_str() {
            "digest" => {}
            "template" => self.template = boolean(&v).unwrap_or(false),
            "protection" => self.protection = boolean(&v).unwrap_or(false),
            "lock" => self.lock = Some(v),
            "parent" => self.parent = Some(v),
            _ if lxc && k.starts_with("lxc.") => self.lxc.push(format!("{k}: {v}")),
            _ if numbered(&k, &["net"]) => self.nets.push(net(k, &v)),
            _ if numbered(&k, &["unused"]) => self.unused.push(Volume { key: k, volume: v }),
            _ if !lxc && numbered(&k, &["hostpci", "usb"]) => self.devices.push(device(k, &v)),
            // The root file system first, as Proxmox lists a container's volumes.
            "rootfs" if lxc => self.disks.insert(0, disk(k, &v, lxc)),
            _ if lxc && numbered(&k, &["mp"]) => self.disks.push(disk(k, &v, lxc)),
            _ if !lxc && numbered(&k, VM_DRIVES) => {
                let d = disk(k, &v, lxc);
                if d.props.get("media") != Some("cdrom") {
                    self.disks.push(d);
                }
            }
            _ => {
                self.rest.insert(k, v);
            }
        }
    }

    /// No key but the digest: what qmrestore leaves of a VM it failed to restore to a new
    /// VMID (qemu-server `API2/Qemu.pm` `create_vm`).
    pub fn is_empty(&self) -> bool {
        *self == GuestConfig::default()
    }

    /// The storage of a container's root file system, when it is a volume.
    pub fn rootfs_storage(&self) -> Option<&str> {
        let d = self.disks.iter().find(|d| d.key == "rootfs")?;
        d.storage.as_deref()
    }
}

fn disk(key: String, v: &str, lxc: bool) -> Disk {
    let props = Props::parse(v);
    let source = props
        .main(&["volume", "file"])
        .unwrap_or_default()
        .to_string();
    let backup = match (lxc, key.as_str()) {
        (true, "rootfs") => true,
        (true, _) => props.flag("backup").unwrap_or(false),
        (false, _) => props.flag("backup").unwrap_or(true),
    };
    Disk {
        storage: storage_of(&source),
        size: props.get("size").map(str::to_string),
        key,
        source,
        backup,
        props,
    }
}

fn net(key: String, v: &str) -> Net {
    let props = Props::parse(v);
    let mac = ["macaddr", "hwaddr"]
        .iter()
        .chain(MODELS)
        .find_map(|k| props.get(k))
        .map(str::to_string);
    Net {
        key,
        bridge: props.get("bridge").map(str::to_string),
        tag: props.get("tag").and_then(|t| t.parse().ok()),
        firewall: props.flag("firewall").unwrap_or(false),
        link_down: props.flag("link_down").unwrap_or(false),
        mac,
        props,
    }
}

fn device(key: String, v: &str) -> Device {
    let props = Props::parse(v);
    let mapping = props.get("mapping").map(str::to_string);
    let host = match mapping {
        Some(_) => None,
        None => props.main(&["host"]).map(str::to_string),
    };
    Device { key, host, mapping }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_config() {
        let text = "scsi0: local-lvm:vm-100-disk-0,size=32G\nscsi1: local-lvm:vm-100-disk-1,backup=0\n\
                    ide2: local:iso/x.iso,media=cdrom\nsata0: none,backup=0\nunused0: local-lvm:vm-100-disk-2\n\
                    net0: virtio=AA:BB:CC:DD:EE:FF,bridge=vmbr0,tag=20,firewall=1\n\
                    hostpci0: 0000:01:00.0,pcie=1\nusb0: mapping=stick\nlock: backup\ntemplate: 1\n\
                    #a description\nmemory: 2048\n[snap]\nlock: snapshot\n";
        let c = GuestConfig::from_text(Kind::Qemu, text);
        let keys: Vec<&str> = c.disks.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["sata0", "scsi0", "scsi1"]);
        assert!(!c.disks[0].is_volume() && c.disks[2].is_volume() && !c.disks[2].backup);
        assert_eq!(c.disks[1].size.as_deref(), Some("32G"));
        let n = &c.nets[0];
        assert_eq!(n.mac.as_deref(), Some("AA:BB:CC:DD:EE:FF"));
        assert_eq!(
            (n.bridge.as_deref(), n.tag, n.firewall),
            (Some("vmbr0"), Some(20), true)
        );
        assert_eq!(c.devices[0].host.as_deref(), Some("0000:01:00.0"));
        assert_eq!(c.devices[1].host, None);
        assert_eq!(c.devices[1].mapping.as_deref(), Some("stick"));
        assert_eq!((c.lock.as_deref(), c.template), (Some("backup"), true));
        assert_eq!(c.rest.get("memory").map(String::as_str), Some("2048"));
        assert!(GuestConfig::from_text(Kind::Qemu, "digest: x\n").is_empty());
        let ct = |t: &str| GuestConfig::from_text(Kind::Lxc, t);
        assert_eq!(ct("rootfs: /srv/ct101\n").rootfs_storage(), None);
        assert_eq!(ct("rootfs: bad;id:x\n").rootfs_storage(), None);
    }

    #[test]
    fn a_container_config_from_json() {
        let v = serde_json::json!({"rootfs": "volume=local-lvm:vm-101-disk-0,size=8G",
            "mp0": "/mnt/x,mp=/b", "mp1": "nas:101/vm-101-disk-1.raw,mp=/c,backup=1",
            "net0": "name=eth0,bridge=vmbr0,hwaddr=AA:BB,link_down=0", "protection": 1,
            "lxc": [["lxc.apparmor.profile", "unconfined"]], "digest": "d"});
        let c = GuestConfig::from_json(Kind::Lxc, v.as_object().expect("object"));
        assert_eq!(c.rootfs_storage(), Some("local-lvm"));
        let keys: Vec<&str> = c.disks.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["rootfs", "mp0", "mp1"]);
        let mp0 = &c.disks[1];
        assert!(!mp0.is_volume() && !mp0.backup);
        assert!(c.disks[0].backup && c.disks[2].backup && c.protection);
        assert_eq!(c.lxc, ["lxc.apparmor.profile: unconfined"]);
        assert_eq!(
            c.nets[0].with_link_down(),
            "name=eth0,bridge=vmbr0,hwaddr=AA:BB,link_down=1"
        );
    }
}
