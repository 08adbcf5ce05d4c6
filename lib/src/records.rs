//! The record kinds of `records.md`, as serde types.
//!
//! Every struct keeps the fields it does not know in `extra`, so a tool that reads a record
//! and writes it back (backup-prune) passes other tools' fields through untouched. A record of
//! a kind this crate does not know stays a plain JSON object ([`Record::Other`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Extra = Map<String, Value>;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One vzdump archive or PBS snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    pub volid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmid: Option<u64>,
    /// `qemu`, `lxc`, `openvz` or `unknown`, as Proxmox says.
    pub subtype: String,
    /// Unix seconds: from the archive's name read in the node's local time (standard names),
    /// else the file's ctime; PBS: the snapshot time.
    pub ctime: i64,
    /// `ctime` as RFC 3339 UTC.
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// `vma.zst`, `tar.gz`, `pbs-vm`, …
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default)]
    pub protected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<String>,
    /// Guest name, when known (`--with-guests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Absolute path of the archive (offline `--dir` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Path of the vzdump `.log` beside the archive (`--dir` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Outcome read from that log: `ok`, `warning` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_status: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upid: Option<String>,
}

/// A VM or container of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Guest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub vmid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub guest_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub template: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A vzdump run that left a log but no archive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupFailure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    pub vmid: u64,
    pub subtype: String,
    pub ctime: i64,
    pub time: String,
    pub log: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A storage that holds backups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Storage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub storage: String,
    #[serde(rename = "type")]
    pub storage_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avail: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_fraction: Option<f64>,
    #[serde(default)]
    pub shared: bool,
    #[serde(default = "default_true")]
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn default_true() -> bool {
    true
}

/// A scheduled vzdump job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vmid: Vec<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The job runs only on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The retention, as Proxmox's object (`{"keep-daily": 7}`), values as numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_backups: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Job {
    /// Whether the job backs up this guest (pool membership is not known here: `None`).
    pub fn covers(&self, vmid: u64) -> Option<bool> {
        if self.all {
            return Some(!self.exclude.contains(&vmid));
        }
        if self.pool.is_some() {
            return None;
        }
        Some(self.vmid.contains(&vmid))
    }
}

/// One step of a plan or of a run (restore, fallback, rebuild, prune --apply).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `ok`, `changed`, `skipped`, `failed` (or `planned` in a dry run).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Step {
    /// A step that took from `started` until now (`None`: it did not run).
    pub fn new(
        step: &str,
        target: impl Into<String>,
        status: &str,
        message: impl Into<String>,
        started: Option<std::time::Instant>,
    ) -> Step {
        Step {
            step: step.into(),
            target: Some(target.into()),
            status: status.into(),
            message: Some(message.into()),
            duration_s: started.map(seconds_since),
            extra: Extra::new(),
        }
    }
}

/// Seconds since `t`, to the millisecond (the `duration_s` of records).
pub fn seconds_since(t: std::time::Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// A finding of backup-check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub component: String,
    pub check: String,
    /// `ok`, `warning`, `critical`, `unknown`.
    pub status: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One version (or delete marker) of a Terraform state object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TfstateVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A guest restored (or planned to be).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Restore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_vmid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub dry_run: bool,
    pub status: String,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_point: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The command that undoes the run (restores the safety point, removes the new guest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub way_back: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The end of a run: counts by status and the exit code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    pub counts: Map<String, Value>,
    pub exit_code: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Any record. Kinds this crate does not know are kept as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Backup(Backup),
    Guest(Guest),
    BackupFailure(BackupFailure),
    Storage(Storage),
    Job(Job),
    Restore(Restore),
    TfstateVersion(TfstateVersion),
    Step(Step),
    Check(Check),
    Summary(Summary),
    Other(Map<String, Value>),
}

macro_rules! kinds {
    ($($variant:ident => $name:literal),* $(,)?) => {
        impl Record {
            /// The value of the `kind` field.
            pub fn kind(&self) -> &str {
                match self {
                    $(Record::$variant(_) => $name,)*
                    Record::Other(m) => m.get("kind").and_then(Value::as_str).unwrap_or(""),
                }
            }

            /// The record as a JSON object, `kind` first.
            pub fn to_value(&self) -> Value {
                let inner = match self {
                    $(Record::$variant(r) => serde_json::to_value(r),)*
                    Record::Other(m) => return Value::Object(m.clone()),
                };
                let mut out = Map::new();
                out.insert("kind".into(), Value::String(self.kind().into()));
                // Serializing these plain structs cannot fail (string keys only).
                if let Ok(Value::Object(fields)) = inner {
                    out.extend(fields);
                }
                Value::Object(out)
            }

            /// Reads a record from a JSON object. The object must have a string `kind`.
            pub fn from_value(value: Value) -> Result<Record, String> {
                let Value::Object(mut map) = value else {
                    return Err("a record must be a JSON object".into());
                };
                let kind = match map.get("kind") {
                    Some(Value::String(k)) => k.clone(),
                    Some(_) => return Err("\"kind\" must be a string".into()),
                    None => return Err("record has no \"kind\" field".into()),
                };
                match kind.as_str() {
                    $($name => {
                        map.remove("kind");
                        Ok(Record::$variant(parse(map, $name)?))
                    })*
                    _ => Ok(Record::Other(map)),
                }
            }
        }
        $(
            impl From<$variant> for Record {
                fn from(r: $variant) -> Record {
                    Record::$variant(r)
                }
            }
        )*
    };
}

kinds! {
    Backup => "backup",
    Guest => "guest",
    BackupFailure => "backup_failure",
    Storage => "storage",
    Job => "job",
    Restore => "restore",
    TfstateVersion => "tfstate_version",
    Step => "step",
    Check => "check",
    Summary => "summary",
}

fn parse<T: DeserializeOwned>(map: Map<String, Value>, kind: &str) -> Result<T, String> {
    serde_json::from_value(Value::Object(map)).map_err(|e| format!("bad `{kind}` record: {e}"))
}

/// Unix seconds as RFC 3339 UTC (`2024-01-15T02:00:02Z`).
pub fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kind_comes_first_and_unknown_fields_pass_through() {
        let v = json!({"kind": "backup", "volid": "local:backup/x.vma", "subtype": "qemu",
                       "ctime": 1, "time": "1970-01-01T00:00:01Z", "format": "vma", "mark": "keep"});
        let r = Record::from_value(v).expect("valid");
        let Record::Backup(b) = &r else {
            panic!("not a backup")
        };
        assert_eq!(b.extra.get("mark"), Some(&json!("keep")));
        let out = serde_json::to_string(&r.to_value()).expect("json");
        assert!(out.starts_with(r#"{"kind":"backup","volid""#), "{out}");
        assert!(out.contains(r#""mark":"keep""#));
    }

    #[test]
    fn unknown_kind_is_kept() {
        let v = json!({"kind": "future", "a": 1});
        let r = Record::from_value(v.clone()).expect("valid");
        assert_eq!(r.kind(), "future");
        assert_eq!(r.to_value(), v);
    }

    #[test]
    fn errors() {
        assert!(Record::from_value(json!([1])).is_err());
        assert!(Record::from_value(json!({"a": 1})).is_err());
        let e = Record::from_value(json!({"kind": "backup"})).unwrap_err();
        assert!(e.contains("bad `backup` record"), "{e}");
    }

    #[test]
    fn job_coverage() {
        let j = Job {
            all: true,
            exclude: vec![101],
            ..Default::default()
        };
        assert_eq!(j.covers(100), Some(true));
        assert_eq!(j.covers(101), Some(false));
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(1705284002), "2024-01-15T02:00:02Z");
    }
}
