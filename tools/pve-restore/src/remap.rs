//! Restoring onto a node with other storages and bridges (`--target-storage`,
//! `--target-bridge`, `--drop-passthrough`): from the backup's own config, where each disk
//! and NIC goes, every mismatch with the target node found before anything changes, and
//! the arguments of Proxmox's own commands that put them there. Shared with the streamed
//! restore: [`plan`], [`check`], [`ct_args`] take no transport.

use std::collections::BTreeMap;

use pvedr::pve::config::{Device, Disk, Net};
use pvedr::pve::maps::IdMap;
use pvedr::pve::props::Props;
use pvedr::pve::{Answer, Bridge, Client, GuestConfig, Mapping, NodeFacts, Provisioning, Storage};
use serde_json::{Value, json};

const GIB: u64 = 1 << 30;

/// The maps and flags a remapped restore takes.
#[derive(Debug, Clone, Default)]
pub struct Maps {
    pub storage: Option<IdMap>,
    pub bridge: Option<IdMap>,
    pub drop_passthrough: bool,
}

impl Maps {
    /// Whether any was given: without them a restore is the plain one.
    pub fn any(&self) -> bool {
        self.storage.is_some() || self.bridge.is_some() || self.drop_passthrough
    }
}

/// A disk of the backup and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskMove {
    pub key: String,
    pub from: String,
    pub to: String,
    /// The size its config gives (`size=`), in bytes; `None` when it gives none.
    pub bytes: Option<u64>,
    pub props: Props,
}

/// A NIC of the backup and the line it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetMove {
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The whole line with only `bridge=` changed (model, MAC, tag, firewall kept:
    /// `qm set --netN` replaces the line, and one without its MAC gets a new one).
    pub line: String,
}

/// Where everything of one backup goes.
#[derive(Debug, Clone, Default)]
pub struct Remap {
    pub lxc: bool,
    pub disks: Vec<DiskMove>,
    pub nets: Vec<NetMove>,
    /// A container's mount points that are no volumes (bind, device): passed again as they
    /// are, since with `--rootfs` given `pct restore` drops every mount point not passed.
    pub kept_mps: Vec<(String, String)>,
    /// Host devices (`hostpciN`, `usbN` with `host=`): refused, or dropped when asked.
    pub passthrough: Vec<Device>,
    /// Devices through a cluster resource mapping (`mapping=`): the mapping must have an
    /// entry for the target node.
    pub mapped: Vec<Device>,
}

/// A size as Proxmox writes it (`32G`, `256K`, `1.5T`; pve-common `JSONSchema.pm`
/// `parse_size`), in bytes.
pub fn size_bytes(s: &str) -> Option<u64> {
    let (num, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let mult: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => GIB,
        'T' => 1 << 40,
        _ => return None,
    };
    let v: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let bytes = v * mult as f64;
    (bytes < u64::MAX as f64).then_some(bytes.ceil() as u64)
}

/// Whole GiB, at least 1: what `pct restore --rootfs STORAGE:SIZE` takes.
pub fn whole_gib(bytes: u64) -> u64 {
    bytes.div_ceil(GIB).max(1)
}

fn human(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB as f64)
}

/// Where each disk and NIC of `config` goes under `maps`. Disks the archive does not hold
/// (a VM's `backup=0`) are left out: Proxmox does not restore them.
pub fn plan(config: &GuestConfig, lxc: bool, maps: &Maps) -> Remap {
    let mut r = Remap {
        lxc,
        ..Default::default()
    };
    for d in &config.disks {
        match &d.storage {
            Some(s) if lxc || d.backup => r.disks.push(disk_move(d, s, maps)),
            None if lxc && d.key != "rootfs" => {
                r.kept_mps.push((d.key.clone(), d.props.print_without("")))
            }
            _ => {}
        }
    }
    r.nets = config.nets.iter().map(|n| net_move(n, maps)).collect();
    let devices = |with: fn(&Device) -> bool| -> Vec<Device> {
        config.devices.iter().filter(|d| with(d)).cloned().collect()
    };
    r.passthrough = devices(|d| d.host.is_some());
    r.mapped = devices(|d| d.mapping.is_some());
    r
}

/// Each mapped device's mapping has an entry for `node` (`pci` for `hostpciN`, `usb` for
/// `usbN`); what the caller may not see counts as missing.
pub fn check_mappings(
    r: &Remap,
    node: &str,
    read: impl Fn(&str) -> pvedr::Result<Vec<Mapping>>,
) -> pvedr::Result<Vec<String>> {
    let mut out = Vec::new();
    for d in &r.mapped {
        let kind = if d.key.starts_with("usb") {
            "usb"
        } else {
            "pci"
        };
        let id = d.mapping.as_deref().unwrap_or_default();
        let there = read(kind)?
            .iter()
            .any(|m| m.id == id && m.nodes.iter().any(|n| n == node));
        if !there {
            out.push(format!(
                "{} uses {kind} mapping {} which has no device on node {node} (or one this user may not see: Mapping.Audit/Mapping.Use)",
                d.key,
                pvedr::msg::visible(id)
            ));
        }
    }
    Ok(out)
}

fn disk_move(d: &Disk, from: &str, maps: &Maps) -> DiskMove {
    let to = maps.storage.as_ref().map_or(from, |m| m.target(from));
    DiskMove {
        key: d.key.clone(),
        from: from.to_string(),
        to: to.to_string(),
        bytes: d.size.as_deref().and_then(size_bytes),
        props: d.props.clone(),
    }
}

fn net_move(n: &Net, maps: &Maps) -> NetMove {
    let to = match (&n.bridge, &maps.bridge) {
        (Some(b), Some(m)) => Some(m.target(b).to_string()),
        (b, _) => b.clone(),
    };
    let mut props = n.props.clone();
    if let Some(t) = &to {
        for (_, v) in props.pairs.iter_mut().filter(|(k, _)| k == "bridge") {
            v.clone_from(t);
        }
    }
    NetMove {
        key: n.key.clone(),
        from: n.bridge.clone(),
        to,
        line: props.print_without(""),
    }
}

/// What the target node lacks, every item at once, and what it should be told.
#[derive(Debug, Default)]
pub struct Verdict {
    pub mismatches: Vec<String>,
    pub warnings: Vec<String>,
}

/// Every check on the target node's storages and bridges.
pub fn check(
    r: &Remap,
    node: &str,
    storages: &[Storage],
    bridges: &[Bridge],
    drop: bool,
) -> Verdict {
    let mut v = Verdict::default();
    let content = if r.lxc { "rootdir" } else { "images" };
    let mut need: BTreeMap<&str, (u64, Vec<&str>)> = BTreeMap::new();
    for d in &r.disks {
        let e = need.entry(&d.to).or_default();
        e.0 += d.bytes.unwrap_or(0);
        e.1.push(&d.key);
        if r.lxc && d.bytes.is_none() {
            v.mismatches
                .push(format!("{} names no size: pct restore needs one", d.key));
        }
    }
    for (sid, (bytes, keys)) in &need {
        let keys = keys.join(", ");
        match storages.iter().find(|s| s.storage == *sid) {
            None => v
                .mismatches
                .push(format!("storage {sid} ({keys}) does not exist")),
            Some(s) if !s.enabled => v.mismatches.push(format!(
                "storage {sid} ({keys}) is not enabled on node {node}"
            )),
            Some(s) if !s.active => v.mismatches.push(format!(
                "storage {sid} ({keys}) is not active on node {node}"
            )),
            Some(s) if !s.allows(content) => v.mismatches.push(format!(
                "storage {sid} ({keys}) does not allow content {content}"
            )),
            Some(s) => space(s, *bytes, &keys, &mut v),
        }
    }
    for n in &r.nets {
        let Some(b) = &n.to else { continue };
        if !bridges.iter().any(|x| &x.iface == b) {
            v.mismatches.push(format!(
                "bridge {} ({}) is neither a bridge nor an SDN vnet on node {node} (or not one this user may see: SDN.Audit/SDN.Use)",
                pvedr::msg::visible(b),
                n.key
            ));
        }
    }
    if !drop {
        for d in &r.passthrough {
            v.mismatches.push(format!(
                "{} passes host device {} through: give --drop-passthrough (or map it as a cluster resource)",
                d.key,
                d.host.as_deref().unwrap_or_default()
            ));
        }
    }
    v
}

/// Free space: Proxmox does not check it before writing on thin or file storages, it fails
/// halfway. A thin pool may take more than it holds (written blocks only): said, not refused.
fn space(s: &Storage, bytes: u64, keys: &str, v: &mut Verdict) {
    let avail = s.avail.unwrap_or(0);
    if bytes <= avail {
        return;
    }
    let msg = format!(
        "storage {} ({keys}) has {} free for {} of disks",
        s.storage,
        human(avail),
        human(bytes)
    );
    match s.provisioning() {
        Provisioning::Thin => v.warnings.push(format!(
            "{msg}: the thin pool is overcommitted, it fills as the disks are written"
        )),
        _ => v.mismatches.push(msg),
    }
}

/// `pct restore` arguments placing each volume (`--rootfs STORAGE:GIB`, `--mpN
/// STORAGE:GIB,mp=…` with every option kept), every other mount point again as it was,
/// and each NIC whose bridge changes (pve-container `API2/LXC.pm` `create_vm`: with
/// `rootfs` given, mount points not passed are dropped).
pub fn ct_args(r: &Remap) -> Vec<String> {
    let mut a = Vec::new();
    for d in &r.disks {
        let mut p = d.props.clone();
        p.default = Some(format!("{}:{}", d.to, whole_gib(d.bytes.unwrap_or(0))));
        p.pairs.retain(|(k, _)| k != "volume" && k != "size");
        a.push(format!("--{}", d.key));
        a.push(p.print_without(""));
    }
    for (k, v) in &r.kept_mps {
        a.push(format!("--{k}"));
        a.push(v.clone());
    }
    for n in r.nets.iter().filter(|n| n.from != n.to) {
        a.push(format!("--{}", n.key));
        a.push(n.line.clone());
    }
    a
}

impl Remap {
    /// The storage qmrestore restores every disk to: the one target when there is one,
    /// else the first target that has room for all (then each other disk is moved).
    pub fn vm_storage(&self, storages: &[Storage]) -> Option<String> {
        let total: u64 = self.disks.iter().filter_map(|d| d.bytes).sum();
        let mut targets: Vec<&str> = self.disks.iter().map(|d| d.to.as_str()).collect();
        targets.sort_unstable();
        targets.dedup();
        match targets.as_slice() {
            [] => None,
            [one] => Some(one.to_string()),
            several => several
                .iter()
                .find(|t| {
                    storages
                        .iter()
                        .any(|s| &s.storage == *t && s.avail.unwrap_or(0) >= total)
                })
                .map(|t| t.to_string()),
        }
    }

    /// The disks a VM restored onto `on` moves afterwards (`qm disk move … --delete 1`).
    pub fn moves<'a>(&'a self, on: &'a str) -> impl Iterator<Item = &'a DiskMove> {
        self.disks.iter().filter(move |d| d.to != on)
    }

    /// The NICs whose bridge changes.
    pub fn changed_nets(&self) -> impl Iterator<Item = &NetMove> {
        self.nets.iter().filter(|n| n.from != n.to)
    }

    /// The mapping, on stderr before the plan.
    fn say(&self, drop: bool) {
        for d in &self.disks {
            let size = d.bytes.map_or("size unknown".into(), human);
            pvedr::msg::say(format!("  {} ({size}): {} → {}", d.key, d.from, d.to));
        }
        for n in &self.nets {
            let (from, to) = (
                n.from.as_deref().unwrap_or("-"),
                n.to.as_deref().unwrap_or("-"),
            );
            pvedr::msg::say(format!(
                "  {}: {} → {}",
                n.key,
                pvedr::msg::visible(from),
                pvedr::msg::visible(to)
            ));
        }
        if drop {
            for d in &self.passthrough {
                pvedr::msg::say(format!("  {}: host device dropped", d.key));
            }
        }
    }

    /// The record's `disks`, `nets` and `dropped`.
    pub fn record(&self, dropped: bool) -> Vec<(&'static str, Value)> {
        let disks: Vec<Value> = self
            .disks
            .iter()
            .map(|d| json!({"key": d.key, "source_storage": d.from, "target_storage": d.to, "size": d.bytes}))
            .collect();
        let nets: Vec<Value> = self
            .nets
            .iter()
            .map(|n| json!({"key": n.key, "source_bridge": n.from, "target_bridge": n.to}))
            .collect();
        let mut out = vec![("disks", json!(disks)), ("nets", json!(nets))];
        if dropped && !self.passthrough.is_empty() {
            let keys: Vec<&str> = self.passthrough.iter().map(|d| d.key.as_str()).collect();
            out.push(("dropped", json!(keys)));
        }
        out
    }
}

/// Without maps, a restore to a new VMID is checked the same way before it runs: its disks
/// where the restore command puts them (`default`: `--storage`, a container's storage; else
/// each on its own), its NICs on their own bridges. Host devices are not checked (the same
/// node may well have them); an archive whose config cannot be read is not checked here
/// (the restore says why it fails).
pub fn check_unmapped(
    c: &Client,
    facts: &NodeFacts,
    volid: &str,
    config: Answer<GuestConfig>,
    lxc: bool,
    default: Option<&str>,
) -> pvedr::Result<()> {
    use pvedr::pve::maps::IdKind;
    let Ok(config) = config else {
        return Ok(());
    };
    let maps = Maps {
        storage: default
            .map(|s| IdMap::parse(IdKind::Storage, s))
            .transpose()?,
        ..Maps::default()
    };
    let node = facts.node();
    let (storages, bridges) = (facts.storages(c)?, facts.bridges(c)?);
    let v = check(&plan(&config, lxc, &maps), node, storages, bridges, true);
    for w in &v.warnings {
        pvedr::msg::warn(w);
    }
    if v.mismatches.is_empty() {
        return Ok(());
    }
    Err(pvedr::Error::usage(format!(
        "{volid} cannot be restored on node {node} as it was; map it with --target-storage/--target-bridge; nothing was changed:\n  {}",
        v.mismatches.join("\n  ")
    )))
}

/// A remapped restore's plan, checked on the node of `facts`: the backup's own config (from
/// `pvesm extractconfig`, or an offsite copy's head), the node's storages and bridges, read
/// before anything changes (`c` reads the facts not read yet). Every mismatch at once is a
/// usage error (exit 2, nothing changed).
pub fn prepare(
    c: &Client,
    facts: &NodeFacts,
    volid: &str,
    config: Answer<GuestConfig>,
    lxc: bool,
    maps: &Maps,
) -> pvedr::Result<(Remap, Vec<Storage>)> {
    let config = config.map_err(|why| {
        pvedr::Error::Other(format!(
            "cannot read the config inside {volid} ({why}): the maps need it; nothing was changed"
        ))
    })?;
    let node = facts.node();
    let storages = facts.storages(c)?;
    let bridges = facts.bridges(c)?;
    let r = plan(&config, lxc, maps);
    let mut v = check(&r, node, storages, bridges, maps.drop_passthrough);
    v.mismatches.extend(check_mappings(&r, node, |kind| {
        facts.mappings(c, kind).map(<[Mapping]>::to_vec)
    })?);
    for w in &v.warnings {
        pvedr::msg::warn(w);
    }
    if !v.mismatches.is_empty() {
        return Err(pvedr::Error::usage(format!(
            "{volid} cannot be restored on node {node} as mapped; nothing was changed:\n  {}",
            v.mismatches.join("\n  ")
        )));
    }
    if !lxc {
        for w in hardware(c, facts, &config) {
            pvedr::msg::warn(w);
        }
    }
    r.say(maps.drop_passthrough);
    Ok((r, storages.to_vec()))
}

/// A VM's CPU type or pinned machine version the node's QEMU does not offer: warned, since
/// the restore works and only the start fails (qemu-server checks both at start).
fn hardware(c: &Client, facts: &NodeFacts, config: &GuestConfig) -> Vec<String> {
    let node = facts.node();
    let value = |k: &str, alias: &str| {
        let v = Props::parse(config.rest.get(k)?);
        v.main(&[alias]).map(str::to_string)
    };
    let mut out = Vec::new();
    let checks = [
        ("cpu", value("cpu", "cputype")),
        // `q35`, `pc`: the newest version, always there; only a pinned one can be missing.
        (
            "machine",
            value("machine", "type").filter(|m| m.contains('-')),
        ),
    ];
    for (key, want) in checks {
        let Some(want) = want else { continue };
        let offered = match key {
            "cpu" => facts.cpu_models(c),
            _ => facts.machines(c),
        };
        match offered {
            Ok(list) if list.contains(&want) => {}
            Ok(_) => out.push(format!(
                "{key} {} is not one node {node} offers: the VM restores but will not start until it is changed (qm set --{key})",
                pvedr::msg::visible(&want)
            )),
            Err(e) => out.push(format!("cannot read the {key} types of node {node} ({e}): not checked")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvedr::pve::Kind;
    use pvedr::pve::maps::IdKind;

    #[test]
    fn sizes_and_whole_gib() {
        assert_eq!(size_bytes("32G"), Some(32 * GIB));
        assert_eq!(size_bytes("256K"), Some(256 * 1024));
        assert_eq!(size_bytes("1.5T"), Some(3 << 39));
        assert_eq!(size_bytes("x"), None);
        assert_eq!(
            (whole_gib(1), whole_gib(GIB), whole_gib(GIB + 1)),
            (1, 1, 2)
        );
    }

    #[test]
    fn a_ct_keeps_every_mount_point_option() {
        let c = GuestConfig::from_text(
            Kind::Lxc,
            "rootfs: local-lvm:vm-101-disk-0,size=8G\nmp0: nas:101/vm-101-disk-1.raw,mp=/data,backup=1,size=3G\n\
             mp1: /srv/x,mp=/x\nnet0: name=eth0,bridge=vmbr1,hwaddr=AA:BB,tag=5\n",
        );
        let maps = Maps {
            storage: Some(IdMap::parse(IdKind::Storage, "local-lvm:nvme,nas:bulk").expect("map")),
            bridge: Some(IdMap::parse(IdKind::Bridge, "vmbr9").expect("map")),
            drop_passthrough: false,
        };
        let a = ct_args(&plan(&c, true, &maps));
        assert_eq!(
            a,
            [
                "--rootfs",
                "nvme:8",
                "--mp0",
                "bulk:3,mp=/data,backup=1",
                "--mp1",
                "/srv/x,mp=/x",
                "--net0",
                "name=eth0,bridge=vmbr9,hwaddr=AA:BB,tag=5"
            ]
        );
    }
}
