//! `pvesh` calls and their JSON (integers as numbers or strings, Perl booleans), turned into
//! records.
//!
//! Field names and types follow what Proxmox prints (see `shared/reference/proxmox.md`):
//! integers may come as numbers or strings, `protected` is `1` or absent.

pub mod paths;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::records::{self, Backup, Job, Storage, Verification};
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

/// Why a task log could not be read, when it could not: pve-manager `PVE/API2/Tasks.pm`
/// `read_task_log` answers a log it cannot open (pve-common `PVE/Tools.pm` `dump_logfile`)
/// with one line `unable to open file - REASON`, no error. Read as a log it holds no error,
/// so a caller that decides on it must treat it as unknown.
pub fn unreadable_log(lines: &[Map<String, Value>]) -> Option<String> {
    match lines {
        [only] => str_of(only, "t").filter(|t| t.starts_with(UNREADABLE_LOG)),
        _ => None,
    }
}

/// The line `dump_logfile` gives for a log it cannot open.
pub const UNREADABLE_LOG: &str = "unable to open file - ";

pub fn str_of(m: &Map<String, Value>, k: &str) -> Option<String> {
    match m.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer that Perl may have printed as a number, a string, or in scientific notation
/// (`4e+12`); `None` for fractions and for what does not fit, never a wrapped or rounded
/// value.
pub fn int_of(m: &Map<String, Value>, k: &str) -> Option<i64> {
    let f = match m.get(k)? {
        Value::Number(n) => match n.as_i64() {
            Some(i) => return Some(i),
            None => n.as_f64()?,
        },
        // Read exactly: through f64, `9007199254740993.0` would round to ...992.
        Value::String(s) => return decimal_integer(s.trim()),
        _ => return None,
    };
    // 2^63 is exactly representable; anything at or beyond it does not fit.
    let fits = f.is_finite() && f.fract() == 0.0 && f.abs() < 9_223_372_036_854_775_808.0;
    fits.then_some(f as i64)
}

/// `[+-]digits[.digits][(e|E)[+-]digits]` (either digit run may be empty, not both) as the
/// exact integer it denotes, if it is one and fits an `i64`.
fn decimal_integer(s: &str) -> Option<i64> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return None;
            }
            // Beyond any i64 exponent: zero stays zero, anything else cannot fit.
            e.parse().unwrap_or(if e.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            })
        }
    };
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    // value = digits * 10^shift
    let shift = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let kept = if shift < 0 {
        let drop = usize::try_from(shift.unsigned_abs()).ok()?;
        let cut = digits.len().checked_sub(drop)?;
        if !digits[cut..].bytes().all(|b| b == b'0') || cut == 0 {
            return None;
        }
        &digits[..cut]
    } else {
        digits
    };
    // i64 has 19 digits: a longer run (leading zeros are gone) cannot fit.
    if kept.len() > 19 || shift > 19 {
        return None;
    }
    let mut v: i128 = kept.parse().ok()?;
    for _ in 0..shift.max(0) {
        v = v.checked_mul(10)?;
    }
    i64::try_from(if negative { -v } else { v }).ok()
}

pub fn uint_of(m: &Map<String, Value>, k: &str) -> Option<u64> {
    int_of(m, k).and_then(|v| u64::try_from(v).ok())
}

/// A boolean as Proxmox writes one: JSON `true`, `1`, or a string pve-common
/// `JSONSchema::parse_boolean` accepts (`1|on|yes|true`, `0|off|no|false`, any case).
pub fn bool_of(m: &Map<String, Value>, k: &str) -> Option<bool> {
    match m.get(k)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "on" | "yes" | "true" => Some(true),
            "0" | "off" | "no" | "false" => Some(false),
            _ => None,
        },
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
    let mut extra = Map::new();
    if let Some(a) = uint_of(m, "approximate-size") {
        extra.insert("approximate_size".into(), Value::from(a));
    }
    let format = str_of(m, "format").unwrap_or_default();
    let size = uint_of(m, "size");
    let unfinished = records::pbs_unfinished(&format, size);
    Some(Backup {
        node: Some(node.into()),
        storage: Some(storage.into()),
        vmid: uint_of(m, "vmid"),
        subtype: str_of(m, "subtype").unwrap_or_else(|| "unknown".into()),
        ctime,
        time: records::rfc3339(ctime),
        size: size.filter(|_| !unfinished),
        format,
        unfinished,
        notes: str_of(m, "notes"),
        protected: bool_of(m, "protected").unwrap_or(false),
        verification,
        encrypted: str_of(m, "encrypted"),
        volid,
        extra,
        ..Default::default()
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

/// When a task started: the fifth field of its UPID, hex seconds
/// (`UPID:node:pid:pstart:starttime:type:id:user:`, pve-common `Tools.pm` upid_decode).
pub fn upid_start(upid: &str) -> Option<i64> {
    let f: Vec<&str> = upid.split(':').collect();
    if f.len() < 8 || f[0] != "UPID" || f[4].len() > 16 {
        return None;
    }
    i64::from_str_radix(f[4], 16).ok()
}

/// A job from the old `vzdump.cron` (`starttime`, `dow`) as a calendar event, the way
/// pve-manager `API2/Backup.pm` `convert_to_schedule` turns it into one.
fn legacy_schedule(m: &Map<String, Value>) -> Option<String> {
    let start = str_of(m, "starttime")?;
    let dow: Vec<String> = str_of(m, "dow")
        .map(|d| {
            d.split([',', ';', ' ', '\0'])
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let all_days = "mon,tue,wed,thu,fri,sat,sun";
    match dow.join(",") {
        d if d.is_empty() || d == all_days => Some(start),
        d => Some(format!("{d} {start}")),
    }
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
        schedule: str_of(m, "schedule").or_else(|| legacy_schedule(m)),
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
    fn jobs_as_pve_9_and_older_nodes_answer() {
        // pve-manager 9.1: objects, booleans, an integer next-run, no starttime/dow.
        let v9 = obj(
            json!({"id":"backup-a","type":"vzdump","enabled":true,"all":true,
            "schedule":"02:00","next-run":1705370400,"prune-backups":{"keep-daily":7,"keep-last":0},
            "fleecing":{"enabled":true,"storage":"local-lvm"},"performance":{"max-workers":16}}),
        );
        let j = job(&v9).expect("job");
        assert!(j.enabled && j.all);
        assert_eq!(j.next_run, Some(1_705_370_400));
        assert_eq!(j.prune_backups.expect("prune")["keep-last"], json!(0));
        // Older: a legacy vzdump.cron job with starttime and dow (API2/Backup.pm
        // convert_to_schedule), Perl booleans as strings, next-run as a string.
        let old = obj(
            json!({"id":"backup-b","enabled":"no","all":"yes","starttime":"01:30",
            "dow":"mon,wed","next-run":"1705370400","prune-backups":"keep-weekly=4, keep-daily=7"}),
        );
        let j = job(&old).expect("job");
        assert!(!j.enabled && j.all);
        assert_eq!(j.schedule.as_deref(), Some("mon,wed 01:30"));
        assert_eq!(j.next_run, Some(1_705_370_400));
        assert_eq!(j.prune_backups.expect("prune")["keep-weekly"], json!(4));
        let every_day = obj(json!({"id":"c","starttime":"03:00",
            "dow":"mon,tue,wed,thu,fri,sat,sun"}));
        assert_eq!(
            job(&every_day).and_then(|j| j.schedule).as_deref(),
            Some("03:00")
        );
        // A boolean Proxmox would not accept is unknown, not true.
        assert_eq!(bool_of(&obj(json!({"x":"maybe"})), "x"), None);
        assert_eq!(bool_of(&obj(json!({"x":"OFF"})), "x"), Some(false));
    }

    #[test]
    fn sizes_as_nodes_print_them() {
        // Older nodes printed big storage sizes in scientific notation.
        let st = obj(
            json!({"storage":"nas","type":"nfs","total":4.0e12,"used":"3.4e+12",
            "avail":"600000000000","active":1,"shared":1}),
        );
        let s = storage("pve1", &st).expect("storage");
        assert_eq!(s.total, Some(4_000_000_000_000));
        assert_eq!(s.used, Some(3_400_000_000_000));
        // pve-storage 9: `size` may be absent, with `approximate-size` instead.
        let approx = obj(json!({"volid":"lvm:backup/x","ctime":1,"format":"raw",
            "approximate-size":1073741824u64,"subtype":"qemu","vmid":100}));
        let b = backup("pve1", "lvm", &approx).expect("backup");
        assert_eq!(b.size, None, "an approximation is not the size");
        assert_eq!(b.extra.get("approximate_size"), Some(&json!(1073741824u64)));
        // Nonsense is unknown, never a wrapped number.
        assert_eq!(int_of(&obj(json!({"x":"1e400"})), "x"), None);
        assert_eq!(int_of(&obj(json!({"x":1.5})), "x"), None);
    }

    #[test]
    fn backup_provider_volids_keep_the_fields() {
        // A provider (storage plugin API 11) names volumes as it likes: trust the fields.
        let m = obj(
            json!({"volid":"borg:backup/guest-100/snap-7","ctime":1705284067,
            "format":"borg-archive","subtype":"qemu","vmid":100,"size":10}),
        );
        let b = backup("pve1", "borg", &m).expect("backup");
        assert_eq!(
            (b.vmid, b.subtype.as_str(), b.ctime),
            (Some(100), "qemu", 1_705_284_067)
        );
        assert_eq!(b.format, "borg-archive");
    }

    #[test]
    fn upid_start_times() {
        let u = "UPID:pbs1:00000A1C:0001F2C3:65A4D1F0:verify:store1:root@pam:";
        assert_eq!(upid_start(u), Some(0x65A4_D1F0));
        assert_eq!(upid_start("UPID:x"), None);
        assert_eq!(upid_start("UPID:n:1:2:FFFFFFFFFFFFFFFFFF:t:i:u:"), None);
    }
}
