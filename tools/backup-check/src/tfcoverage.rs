//! Coverage from Terraform (`--tfstate`): every guest a state declares must be on the
//! cluster (else CRITICAL) and is then judged by the usual coverage and freshness checks;
//! a guest on the cluster that no state declares is reported `unmanaged` (OK: never pages).
//! A state that cannot be read or understood is UNKNOWN, and then no guest is called
//! unmanaged (it may be declared in the state that was not read).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pvedr::error::{Error, Result};
use pvedr::records::{Check, Guest};
use pvedr::s3::{Bucket, S3Conn};
use pvedr::terraform::backend;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::status::{Status, check};
use crate::summary::Summaries;

/// The largest state read (a state of a thousand guests is a few MiB).
const MAX_STATE: u64 = 64 * 1024 * 1024;
/// The only state format read: Terraform 0.12 and later (OpenTofu too) write version 4.
const STATE_VERSION: u64 = 4;
/// Proxmox's VMID range (pve-common, PVE/JSONSchema.pm, `pve-vmid`).
const VMIDS: std::ops::RangeInclusive<u64> = 100..=999_999_999;

/// Resource type → the attribute holding the guest's VMID, as each provider's schema
/// names it (docs/backup-check.md cites them). Node attributes are read for messages only:
/// a VMID is unique in the cluster and HA may move a guest.
const GUEST_TYPES: &[(&str, &str)] = &[
    // bpg/proxmox, SDK resources: `vm_id`, `node_name`.
    ("proxmox_virtual_environment_vm", "vm_id"),
    ("proxmox_virtual_environment_container", "vm_id"),
    // bpg/proxmox, framework resources (and their short names): `id`, `node_name`.
    ("proxmox_virtual_environment_vm2", "id"),
    ("proxmox_vm", "id"),
    ("proxmox_virtual_environment_cloned_vm", "id"),
    ("proxmox_cloned_vm", "id"),
    // Telmate/proxmox: `vmid`, `target_node` (or `target_nodes`; `current_node` computed).
    ("proxmox_vm_qemu", "vmid"),
    ("proxmox_lxc", "vmid"),
];
const NODE_ATTRS: &[&str] = &["node_name", "current_node", "target_node"];

/// Where a state is read from, checked before anything is read.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    S3 {
        bucket: String,
        key: String,
    },
    /// A Terraform directory: the state its `backend "s3"` block names.
    Backend(PathBuf),
}

impl Source {
    fn parse(s: &str) -> Result<Source> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            pvedr::s3::check_bucket(bucket)?;
            if key.is_empty() || key.len() > 1024 || key.chars().any(char::is_control) {
                return Err(Error::usage(format!(
                    "--tfstate '{}': give s3://BUCKET/KEY",
                    s.escape_debug()
                )));
            }
            return Ok(Source::S3 {
                bucket: bucket.into(),
                key: key.into(),
            });
        }
        let p = PathBuf::from(s);
        if !p.is_dir() {
            return Ok(Source::File(p));
        }
        // A directory: its S3 backend's state, else its local state, else why neither.
        match backend::read_backend(&p) {
            Ok(_) => Ok(Source::Backend(p)),
            Err(_) if p.join("terraform.tfstate").is_file() => {
                Ok(Source::File(p.join("terraform.tfstate")))
            }
            Err(e) => Err(e),
        }
    }

    fn label(&self) -> String {
        match self {
            Source::File(p) | Source::Backend(p) => p.display().to_string(),
            Source::S3 { bucket, key } => format!("{bucket}/{key}"),
        }
    }

    fn read(&self, s3: &S3Conn) -> Result<Vec<u8>> {
        match self {
            Source::File(p) => pvedr::fs::read_small(p, MAX_STATE),
            Source::S3 { bucket, key } => read_s3(&s3.endpoint()?, bucket, key),
            Source::Backend(dir) => {
                let b = backend::read_backend(dir)?;
                let bucket = b.bucket.clone().ok_or_else(|| {
                    Error::usage(format!(
                        "{}: the backend block has no bucket",
                        dir.display()
                    ))
                })?;
                let key = b.key.clone().unwrap_or_else(|| "terraform.tfstate".into());
                let ep = s3.endpoint_with(b.endpoint.as_deref(), b.region.as_deref())?;
                read_s3(&ep, &bucket, &key)
            }
        }
    }
}

fn read_s3(ep: &pvedr::s3::Endpoint, bucket: &str, key: &str) -> Result<Vec<u8>> {
    Bucket::connect(ep, bucket)?.get(key, None, MAX_STATE)
}

/// The `--tfstate` sources, checked (a usage error is found before anything is read).
#[derive(Debug, Default)]
pub struct Sources(Vec<Source>);

impl Sources {
    pub fn parse(given: &[String]) -> Result<Sources> {
        given
            .iter()
            .map(|s| Source::parse(s))
            .collect::<Result<_>>()
            .map(Sources)
    }

    /// Reads each state and compares it with the cluster's guests. An unreadable state is
    /// a finding (UNKNOWN), not the end of the run; an interruption ends it.
    pub fn checks(&self, s3: &S3Conn, guests: &[Guest], backups: &Summaries) -> Result<Vec<Check>> {
        if self.0.is_empty() {
            return Ok(Vec::new());
        }
        let mut states = Vec::new();
        for src in &self.0 {
            let read = match src.read(s3) {
                Ok(bytes) => declared(&bytes),
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(e) => Err(format!(
                    "cannot read the state: {}",
                    pvedr::msg::printable(&e.to_string())
                )),
            };
            states.push(State {
                label: src.label(),
                read,
            });
        }
        Ok(coverage(&states, guests, backups))
    }
}

/// One guest a state declares.
#[derive(Debug, Clone)]
struct Declared {
    vmid: Option<u64>,
    address: String,
    node: Option<String>,
}

struct State {
    label: String,
    read: std::result::Result<Vec<Declared>, String>,
}

/// The parts of a version-4 state this check reads; everything else is skipped unread.
#[derive(Deserialize)]
struct RawState {
    version: Option<Value>,
    #[serde(default)]
    resources: Vec<RawResource>,
}

#[derive(Deserialize)]
struct RawResource {
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    instances: Vec<RawInstance>,
}

#[derive(Deserialize)]
struct RawInstance {
    #[serde(default)]
    index_key: Option<Value>,
    #[serde(default)]
    attributes: Option<Attrs>,
}

/// The attributes read; every other one (secrets among them) is skipped, never held.
#[derive(Deserialize)]
struct Attrs {
    vm_id: Option<Value>,
    id: Option<Value>,
    vmid: Option<Value>,
    node_name: Option<Value>,
    current_node: Option<Value>,
    target_node: Option<Value>,
    target_nodes: Option<Value>,
}

impl Attrs {
    fn get(&self, name: &str) -> Option<&Value> {
        match name {
            "vm_id" => self.vm_id.as_ref(),
            "id" => self.id.as_ref(),
            "vmid" => self.vmid.as_ref(),
            "node_name" => self.node_name.as_ref(),
            "current_node" => self.current_node.as_ref(),
            "target_node" => self.target_node.as_ref(),
            "target_nodes" => self.target_nodes.as_ref(),
            _ => None,
        }
    }
}

/// The guests a state declares: every instance (`count`, `for_each`) of a managed guest
/// resource; data sources read guests, they do not declare them.
fn declared(bytes: &[u8]) -> std::result::Result<Vec<Declared>, String> {
    // serde would take `[4, …]` for the struct too: a state is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => "not a Terraform state: not a JSON object".into(),
                Err(e) => format!("not JSON: {e}"),
            },
        );
    }
    let raw: RawState = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("not a Terraform state: {e}"),
        _ => format!("not JSON: {e}"),
    })?;
    match raw.version.as_ref().and_then(Value::as_u64) {
        Some(STATE_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "state format version {v}: only version {STATE_VERSION} (Terraform 0.12 and later) is read"
            ));
        }
        None => return Err("no \"version\": not a Terraform state".into()),
    }
    let mut out = Vec::new();
    for r in raw
        .resources
        .iter()
        .filter(|r| r.mode.as_deref() != Some("data"))
    {
        let Some((_, id_attr)) = GUEST_TYPES.iter().find(|(t, _)| *t == r.kind) else {
            continue;
        };
        for i in &r.instances {
            out.push(instance(r, i, id_attr));
        }
    }
    Ok(out)
}

fn instance(r: &RawResource, i: &RawInstance, id_attr: &str) -> Declared {
    let module = r
        .module
        .as_deref()
        .map(|m| format!("{m}."))
        .unwrap_or_default();
    let key = match &i.index_key {
        Some(Value::Number(n)) => format!("[{n}]"),
        Some(Value::String(s)) => format!("[{}]", Value::from(s.as_str())),
        _ => String::new(),
    };
    let address = pvedr::msg::one_line(&format!("{module}{}.{}{key}", r.kind, r.name));
    let attrs = i.attributes.as_ref();
    let vmid = attrs.and_then(|a| a.get(id_attr)).and_then(vmid_of);
    let node = attrs.and_then(|a| {
        NODE_ATTRS
            .iter()
            .find_map(|k| a.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()))
            .or_else(|| a.get("target_nodes")?.as_array()?.first()?.as_str())
            .map(pvedr::msg::one_line)
    });
    Declared {
        vmid,
        address,
        node,
    }
}

/// A VMID as a provider stores it: a number, or a number in a string.
fn vmid_of(v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }?;
    VMIDS.contains(&n).then_some(n)
}

/// One finding per state, one per declared guest, one per unmanaged guest.
fn coverage(states: &[State], guests: &[Guest], backups: &Summaries) -> Vec<Check> {
    let mut out: Vec<Check> = states.iter().map(|s| state_finding(s, guests)).collect();
    if guests.is_empty() {
        return out;
    }
    let mut by_vmid: BTreeMap<u64, Vec<(&str, &Declared)>> = BTreeMap::new();
    for s in states {
        for d in s.read.iter().flatten() {
            if let Some(v) = d.vmid {
                by_vmid.entry(v).or_default().push((&s.label, d));
            }
        }
    }
    for (vmid, decl) in &by_vmid {
        out.push(declared_finding(*vmid, decl, guests, backups));
    }
    if states.iter().all(|s| s.read.is_ok()) {
        let unmanaged: std::collections::BTreeSet<u64> = guests
            .iter()
            .filter(|g| !g.template && !by_vmid.contains_key(&g.vmid))
            .map(|g| g.vmid)
            .collect();
        for vmid in unmanaged {
            let msg = format!(
                "unmanaged: no Terraform state declares it ({} read)",
                states.len()
            );
            out.push(check(
                &format!("guest/{vmid}"),
                "terraform",
                Status::Ok,
                msg,
                Some(json!("unmanaged")),
                None,
            ));
        }
    }
    out
}

/// The state itself: read and understood (OK), or why not (UNKNOWN).
fn state_finding(s: &State, guests: &[Guest]) -> Check {
    let component = format!("tfstate/{}", s.label);
    let (status, msg, value) = match &s.read {
        Err(why) => (
            Status::Unknown,
            format!("{why}: its guests are not checked, and no guest is called unmanaged"),
            None,
        ),
        Ok(d) if guests.is_empty() && !d.is_empty() => (
            Status::Unknown,
            format!(
                "{} declared guest(s), but no guest records on the input: run pve-ls-backups with --with-guests, or --host/--local",
                d.len()
            ),
            Some(json!(d.len())),
        ),
        Ok(d) => match d
            .iter()
            .filter(|d| d.vmid.is_none())
            .map(|d| d.address.as_str())
            .collect::<Vec<_>>()
        {
            none if none.is_empty() => (
                Status::Ok,
                format!("{} guest(s) declared", d.len()),
                Some(json!(d.len())),
            ),
            none => (
                Status::Unknown,
                format!(
                    "{} guest(s) declared; without a VM ID in the state (not created yet?): {}",
                    d.len(),
                    none.join(", ")
                ),
                Some(json!(d.len())),
            ),
        },
    };
    check(&component, "terraform", status, msg, value, None)
}

/// A declared guest: on the cluster (OK; coverage and freshness judge its backups) or not
/// (CRITICAL: not restored, or deleted outside Terraform).
fn declared_finding(
    vmid: u64,
    decl: &[(&str, &Declared)],
    guests: &[Guest],
    backups: &Summaries,
) -> Check {
    let at = |(label, d): &(&str, &Declared)| {
        let node = d
            .node
            .as_deref()
            .map(|n| format!(", node {n}"))
            .unwrap_or_default();
        format!("{} in {label}{node}", d.address)
    };
    let by: Vec<String> = decl.iter().map(at).collect();
    let by = by.join("; ");
    let ours = backups.by_guest.get(&vmid);
    let (status, msg, value) = match guests.iter().find(|g| g.vmid == vmid) {
        None => {
            let backed = match ours.and_then(|o| Some((o.all, o.newest_any.as_ref()?))) {
                Some((n, b)) => format!("{n} backup(s), the newest {}", b.volid),
                None => "no backup of it either".into(),
            };
            (
                Status::Critical,
                format!(
                    "declared by {by} but not on the cluster (not restored, or deleted outside Terraform); {backed}"
                ),
                "missing",
            )
        }
        Some(g) => {
            let node = g
                .node
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let none = if ours.is_none() && !g.template {
                "; no backup (see coverage)"
            } else {
                ""
            };
            (
                Status::Ok,
                format!("declared by {by}; on the cluster{node}{none}"),
                "declared",
            )
        }
    };
    check(
        &format!("guest/{vmid}"),
        "terraform",
        status,
        msg,
        Some(json!(value)),
        None,
    )
}

/// For tests of the parser alone.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_data_sources_and_versions() {
        let s = br#"{"version":4,"serial":1,"lineage":"L","resources":[
          {"mode":"managed","type":"proxmox_vm_qemu","name":"w","instances":[
            {"index_key":0,"attributes":{"vmid":101,"target_node":"pve1"}},
            {"index_key":1,"attributes":{"vmid":"102","target_nodes":["pve2"]}}]},
          {"mode":"data","type":"proxmox_virtual_environment_vm","name":"d","instances":[{"attributes":{"vm_id":103}}]},
          {"module":"module.m","mode":"managed","type":"proxmox_virtual_environment_container","name":"c","instances":[
            {"index_key":"a b","attributes":{"vm_id":104,"node_name":"pve1"}}]}]}"#;
        let d = declared(s).expect("state");
        let got: Vec<(Option<u64>, &str, Option<&str>)> = d
            .iter()
            .map(|d| (d.vmid, d.address.as_str(), d.node.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(101), "proxmox_vm_qemu.w[0]", Some("pve1")),
                (Some(102), "proxmox_vm_qemu.w[1]", Some("pve2")),
                (
                    Some(104),
                    "module.m.proxmox_virtual_environment_container.c[\"a b\"]",
                    Some("pve1")
                ),
            ]
        );
        assert!(
            declared(br#"{"version":3,"resources":[]}"#)
                .unwrap_err()
                .contains("version 3")
        );
        assert!(
            declared(b"[1]")
                .unwrap_err()
                .starts_with("not a Terraform state")
        );
        assert!(declared(b"{x").unwrap_err().starts_with("not JSON"));
        assert!(declared(b"{}").unwrap_err().contains("no \"version\""));
    }
}
