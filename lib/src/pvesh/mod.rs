//! `pvesh` calls and their JSON (integers as numbers or strings, Perl booleans), turned into
//! records.
//!
//! Field names and types follow what Proxmox prints (see `shared/reference/proxmox.md`):
//! integers may come as numbers or strings, `protected` is `1` or absent.

pub mod paths;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::records::{self, Backup, Guest, Job, Storage, Verification};
use crate::transport::{CommandOutput, RemoteCommand};

/// `pvesh get <path> [args] --output-format json`.
pub fn get(path: &str, args: &[&str]) -> RemoteCommand {
    let mut argv = vec!["pvesh".to_string(), "get".into(), path.into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.extend(["--output-format".into(), "json".into()]);
    RemoteCommand::read(argv)
}

/// Parses a `pvesh … --output-format json` result that must be a JSON array.
pub fn parse_list(
    host: &str,
    cmd: &RemoteCommand,
    out: CommandOutput,
) -> Result<Vec<Map<String, Value>>> {
    let stdout = crate::transport::check(host, cmd, out)?;
    let v: Value = serde_json::from_slice(&stdout).map_err(|e| Error::Protocol {
        host: host.into(),
        command: cmd.line(),
        message: format!("not JSON: {e}"),
    })?;
    match v {
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|i| match i {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect()),
        _ => Err(Error::Protocol {
            host: host.into(),
            command: cmd.line(),
            message: "expected a JSON array".into(),
        }),
    }
}

/// Parses a result that must be a JSON object.
pub fn parse_object(
    host: &str,
    cmd: &RemoteCommand,
    out: CommandOutput,
) -> Result<Map<String, Value>> {
    let stdout = crate::transport::check(host, cmd, out)?;
    match serde_json::from_slice(&stdout) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::Protocol {
            host: host.into(),
            command: cmd.line(),
            message: "expected a JSON object".into(),
        }),
    }
}

/// The zone a node reads archive names and calendars in: the `timezone` of its
/// `/nodes/NODE/time` (pve-manager `API2/Nodes.pm` `time`, from `timedatectl`).
pub fn zone_of(host: &str, cmd: &RemoteCommand, out: CommandOutput) -> Result<crate::time::Zone> {
    let m = parse_object(host, cmd, out)?;
    let name = str_of(&m, "timezone").ok_or_else(|| Error::Protocol {
        host: host.into(),
        command: cmd.line(),
        message: "no timezone in the answer".into(),
    })?;
    crate::time::Zone::named(&name).map_err(|_| {
        Error::Other(format!(
            "{host} is in time zone '{}', which pvedr does not know: give --timezone",
            crate::msg::visible(&name)
        ))
    })
}

/// Asks a node for its zone (`localhost`: the node pvesh runs on).
pub fn node_zone(t: &dyn crate::transport::Transport, node: &str) -> Result<crate::time::Zone> {
    let cmd = get(&paths::node_time(node), &[]);
    let out = t.exec(&cmd)?;
    zone_of(t.host(), &cmd, out)
}

pub fn str_of(m: &Map<String, Value>, k: &str) -> Option<String> {
    match m.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer that Perl may have printed as a number or a string.
pub fn int_of(m: &Map<String, Value>, k: &str) -> Option<i64> {
    match m.get(k)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn uint_of(m: &Map<String, Value>, k: &str) -> Option<u64> {
    int_of(m, k).and_then(|v| u64::try_from(v).ok())
}

/// A Perl boolean: `1`, `"1"`, `true`.
pub fn bool_of(m: &Map<String, Value>, k: &str) -> Option<bool> {
    match m.get(k)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_i64().unwrap_or(0) != 0),
        Value::String(s) => Some(!(s.is_empty() || s == "0")),
        _ => None,
    }
}

/// One entry of `/nodes/{node}/storage` as a `storage` record.
pub fn storage(node: &str, m: &Map<String, Value>) -> Option<Storage> {
    let total = uint_of(m, "total");
    let used = uint_of(m, "used");
    let used_fraction =
        m.get("used_fraction")
            .and_then(Value::as_f64)
            .or_else(|| match (total, used) {
                (Some(t), Some(u)) if t > 0 => Some(u as f64 / t as f64),
                _ => None,
            });
    let active = bool_of(m, "active").unwrap_or(true);
    Some(Storage {
        node: Some(node.into()),
        storage: str_of(m, "storage")?,
        storage_type: str_of(m, "type").unwrap_or_default(),
        // An inactive storage reports zeros: unknown, not empty.
        total: total.filter(|_| active),
        used: used.filter(|_| active),
        avail: uint_of(m, "avail").filter(|_| active),
        used_fraction: used_fraction.filter(|_| active),
        shared: bool_of(m, "shared").unwrap_or(false),
        active,
        path: None,
        extra: Map::new(),
    })
}

/// One entry of `/nodes/{node}/storage/{storage}/content` as a `backup` record.
pub fn backup(node: &str, storage: &str, m: &Map<String, Value>) -> Option<Backup> {
    let volid = str_of(m, "volid")?;
    let ctime = int_of(m, "ctime").unwrap_or(0);
    let verification = match m.get("verification") {
        Some(Value::Object(v)) => Some(Verification {
            state: str_of(v, "state").unwrap_or_default(),
            upid: str_of(v, "upid"),
        }),
        _ => None,
    };
    Some(Backup {
        node: Some(node.into()),
        storage: Some(storage.into()),
        vmid: uint_of(m, "vmid"),
        subtype: str_of(m, "subtype").unwrap_or_else(|| "unknown".into()),
        ctime,
        time: records::rfc3339(ctime),
        size: uint_of(m, "size"),
        format: str_of(m, "format").unwrap_or_default(),
        notes: str_of(m, "notes"),
        protected: bool_of(m, "protected").unwrap_or(false),
        verification,
        encrypted: str_of(m, "encrypted"),
        volid,
        ..Default::default()
    })
}

/// One `/cluster/resources --type vm` entry as a `guest` record.
pub fn guest(m: &Map<String, Value>) -> Option<Guest> {
    let guest_type = str_of(m, "type")?;
    if guest_type != "qemu" && guest_type != "lxc" {
        return None;
    }
    Some(Guest {
        node: str_of(m, "node"),
        vmid: uint_of(m, "vmid")?,
        name: str_of(m, "name"),
        guest_type,
        status: str_of(m, "status"),
        template: bool_of(m, "template").unwrap_or(false),
        tags: str_of(m, "tags")
            .map(|t| {
                t.split([';', ',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        lock: str_of(m, "lock"),
        pool: str_of(m, "pool"),
        extra: Map::new(),
    })
}

fn id_list(m: &Map<String, Value>, k: &str) -> Vec<u64> {
    str_of(m, k)
        .map(|s| {
            s.split([',', ';', ' '])
                .filter_map(|x| x.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// One `/cluster/backup` entry as a `job` record (`prune-backups` values as numbers).
pub fn job(m: &Map<String, Value>) -> Option<Job> {
    let prune_backups = match m.get("prune-backups") {
        Some(Value::Object(p)) => Some(
            p.iter()
                .map(|(k, v)| {
                    let n = match v {
                        Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or(v.clone()),
                        other => other.clone(),
                    };
                    (k.clone(), n)
                })
                .collect(),
        ),
        // Some versions print the property string.
        Some(Value::String(s)) => Some(
            s.split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| {
                    let k = k.trim().to_string();
                    let v = v.trim();
                    (
                        k,
                        v.parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::from(v)),
                    )
                })
                .collect(),
        ),
        _ => None,
    };
    Some(Job {
        id: str_of(m, "id")?,
        schedule: str_of(m, "schedule"),
        storage: str_of(m, "storage"),
        vmid: id_list(m, "vmid"),
        all: bool_of(m, "all").unwrap_or(false),
        exclude: id_list(m, "exclude"),
        pool: str_of(m, "pool"),
        node: str_of(m, "node"),
        enabled: bool_of(m, "enabled").unwrap_or(true),
        prune_backups,
        mode: str_of(m, "mode"),
        next_run: int_of(m, "next-run"),
        comment: str_of(m, "comment"),
        last_task: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("object"),
        }
    }

    #[test]
    fn content_entries() {
        let m = obj(
            json!({"content":"backup","ctime":1705284067,"format":"tar.zst","protected":1,"size":312475648,"subtype":"lxc","vmid":101,"volid":"local:backup/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst"}),
        );
        let b = backup("pve1", "local", &m).expect("backup");
        assert!(b.protected);
        assert_eq!(b.vmid, Some(101));
        assert_eq!(b.time, "2024-01-15T02:01:07Z");
        let pbs = obj(
            json!({"content":"backup","ctime":1705280405,"encrypted":"1","format":"pbs-vm","notes":"web01","size":34359738368u64,"subtype":"qemu","verification":{"state":"ok","upid":"UPID:x"},"vmid":100,"volid":"pbs:backup/vm/100/2024-01-15T01:00:05Z"}),
        );
        let b = backup("pve1", "pbs", &pbs).expect("backup");
        assert_eq!(
            b.verification.as_ref().map(|v| v.state.as_str()),
            Some("ok")
        );
        assert_eq!(b.encrypted.as_deref(), Some("1"));
        assert!(!b.protected);
    }

    #[test]
    fn jobs_with_string_retention() {
        let m = obj(
            json!({"all":1,"enabled":0,"id":"backup-8c5b1a3e-4f2d","prune-backups":{"keep-daily":"7","keep-weekly":4},"schedule":"21:00","exclude":"101,102"}),
        );
        let j = job(&m).expect("job");
        assert!(!j.enabled);
        assert_eq!(j.exclude, vec![101, 102]);
        assert_eq!(j.prune_backups.expect("prune")["keep-daily"], json!(7));
    }

    #[test]
    fn guests() {
        let m = obj(
            json!({"id":"qemu/100","name":"web01","node":"pve1","status":"running","tags":"prod;web","template":0,"type":"qemu","vmid":100}),
        );
        let g = guest(&m).expect("guest");
        assert_eq!(g.tags, vec!["prod", "web"]);
        assert!(!g.template);
        assert!(guest(&obj(json!({"type":"node","node":"pve1"}))).is_none());
    }
}
