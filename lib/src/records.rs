//! The record kinds of `records.md`, as serde types.
//!
//! Every struct keeps the fields it does not know in `extra`, so a tool that reads a record
//! and writes it back (backup-prune) passes other tools' fields through untouched. A record of
//! a kind this crate does not know stays a plain JSON object ([`Record::Other`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::status::{CheckStatus, RestoreStatus, StepStatus};

pub type Extra = Map<String, Value>;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One vzdump archive or PBS snapshot.
///
/// Read leniently (see [`Backup::from_map`]): an entry of `pvesh get …/content` with a `kind`
/// is a record. Written as declared here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
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
    /// The zone of the node it was listed from (IANA name, its `/nodes/N/time` `timezone`,
    /// or `--timezone`): the days, weeks, … its retention periods are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A PBS snapshot without a manifest: a backup being written (or one that died). Not a
    /// backup yet: never fresh, never the newest, never counted, never removed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unfinished: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Whether a backup has a standard name (Proxmox prunes only those): PBS snapshots
/// always; files when the name carries the time.
pub fn is_std_backup(b: &Backup) -> bool {
    is_std_volume(&b.format, &b.volid)
}

/// [`is_std_backup`] of a backup's `format` and `volid` (a reader that holds no [`Backup`]).
pub fn is_std_volume(format: &str, volid: &str) -> bool {
    if format.starts_with("pbs-") {
        return true;
    }
    let file = volid.rsplit('/').next().unwrap_or(volid);
    crate::archive::is_std_file(file)
}

/// Whether Proxmox's listing entry is a PBS snapshot without a manifest: proxmox-backup's
/// `list_snapshots_blocking` gives such a snapshot no `size` (only a manifest lists the
/// files' sizes), and pve-storage `PBSPlugin.pm` `list_volumes` prints `size // 1`. A
/// snapshot with a manifest holds at least its index blob, so 1 byte is never a real size.
pub fn pbs_unfinished(format: &str, size: Option<u64>) -> bool {
    format.starts_with("pbs-") && size == Some(1)
}

impl TryFrom<Map<String, Value>> for Backup {
    type Error = String;

    fn try_from(m: Map<String, Value>) -> Result<Self, String> {
        Backup::from_map(m)
    }
}

impl Backup {
    /// A `backup` record from what Proxmox prints for one backup volume (pve-storage
    /// `src/PVE/API2/Storage/Content.pm` `index`: `volid`, `ctime`, `format`, `size`,
    /// `subtype`, `vmid`, `notes`, `protected`, `verification`, `encrypted`, `content`), or
    /// from a record pvedr wrote. Only `volid` and `ctime` are required:
    ///
    /// * numbers may come as numbers or strings (Perl prints a scalar as it last used it);
    /// * `protected` is `1` (pve-storage `Plugin.pm` `$get_subdir_files`:
    ///   `$info->{protected} = 1`), `0`, `true`/`false` or `"1"`/`"0"`; absent or `null` is
    ///   not protected;
    /// * `time` is `ctime` as RFC 3339 UTC when absent;
    /// * `storage` is the volid's `STORAGE:` when absent;
    /// * `subtype`, `format` and `vmid`, when absent, come from the volid as Proxmox reads it:
    ///   a PBS snapshot `backup/<vm|ct>/<id>/<UTC time>` (pve-storage `PBSPlugin.pm`
    ///   `parse_volname`: format `pbs-<type>`, vmid if the id is numeric, subtype `qemu`/`lxc`
    ///   as in its `list_volumes`), else the archive name (`Storage.pm` `archive_info`, and
    ///   `$get_subdir_files`' `-NNN-` vmid; subtype `unknown` for a name that is not
    ///   `vzdump-<type>-…`). A `format` that cannot be derived must be given;
    /// * `null` is absent for every optional field; fields of no known name are kept in
    ///   `extra`, in their order.
    pub fn from_map(m: Map<String, Value>) -> Result<Backup, String> {
        Backup::from_fields(m)
    }

    /// [`Backup::from_map`] over any source of fields (a map, or the slots
    /// `backup_line` fills while parsing).
    pub(crate) fn from_fields<F: Fields>(mut m: F) -> Result<Backup, String> {
        let volid = match m.take("volid") {
            Some(Value::String(s)) => s,
            Some(other) => return Err(format!("`volid` must be a string, got {other}")),
            None => return Err("missing field `volid`".into()),
        };
        let ctime = take_int(&mut m, "ctime")?.ok_or("missing field `ctime`")?;
        // Read from the volid only when a field is missing (it costs a fifth of a listing's
        // parse when done for every line).
        let derived = std::cell::OnceCell::new();
        let derived = || derived.get_or_init(|| crate::archive::from_volid(&volid));
        let storage = match take_string(&mut m, "storage")? {
            Some(s) => Some(s),
            None => derived().storage.clone(),
        };
        let time = match m.take("time") {
            None | Some(Value::Null) => rfc3339(ctime),
            Some(Value::String(s)) => s,
            Some(other) => return Err(format!("`time` must be a string, got {other}")),
        };
        let vmid = match take_int(&mut m, "vmid")? {
            Some(v) => Some(u64::try_from(v).map_err(|_| format!("`vmid` {v} is negative"))?),
            None => derived().vmid,
        };
        let subtype = match take_string(&mut m, "subtype")? {
            Some(s) => s,
            None => derived().subtype.clone(),
        };
        let format = match take_string(&mut m, "format")?.or_else(|| derived().format.clone()) {
            Some(f) => f,
            None => {
                return Err(format!(
                    "missing field `format` (the volid '{volid}' does not name a vzdump archive)"
                ));
            }
        };
        let size = match take_int(&mut m, "size")? {
            Some(v) => Some(u64::try_from(v).map_err(|_| format!("`size` {v} is negative"))?),
            None => None,
        };
        // Proxmox's listing says "no manifest" with a size of 1; pvedr's records say it.
        let unfinished = take_flag(&mut m, "unfinished")? || pbs_unfinished(&format, size);
        let size = size.filter(|_| !unfinished);
        let protected = match m.take("protected") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(Value::Number(n)) if n.as_u64() == Some(1) => true,
            Some(Value::Number(n)) if n.as_u64() == Some(0) => false,
            Some(Value::String(s)) if s == "1" => true,
            Some(Value::String(s)) if s == "0" => false,
            Some(other) => {
                return Err(format!(
                    "`protected` must be true/false, 1/0 or \"1\"/\"0\", got {other}"
                ));
            }
        };
        let verification = match m.take("verification") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<Verification>(v)
                    .map_err(|e| format!("`verification`: {e}"))?,
            ),
        };
        Ok(Backup {
            node: take_string(&mut m, "node")?,
            storage,
            vmid,
            subtype,
            ctime,
            time,
            size,
            format,
            notes: take_string(&mut m, "notes")?,
            protected,
            verification,
            encrypted: take_string(&mut m, "encrypted")?,
            name: take_string(&mut m, "name")?,
            path: take_string(&mut m, "path")?,
            log: take_string(&mut m, "log")?,
            log_status: take_string(&mut m, "log_status")?,
            timezone: take_string(&mut m, "timezone")?,
            unfinished,
            volid,
            // The parsed map keeps the capacity of every field taken out of it (about a
            // kilobyte a record): what is left is moved into a map of its own size.
            extra: m.rest(),
        })
    }
}

/// Where a record's fields come from: `take` a known one, then the `rest` (kept in `extra`).
pub(crate) trait Fields {
    fn take(&mut self, k: &str) -> Option<Value>;
    fn rest(self) -> Map<String, Value>;
}

impl Fields for Map<String, Value> {
    fn take(&mut self, k: &str) -> Option<Value> {
        // shift, not swap: the fields left keep their order.
        self.shift_remove(k)
    }

    fn rest(self) -> Map<String, Value> {
        // The parsed map keeps the capacity of every field taken out of it (about a
        // kilobyte a record): what is left is moved into a map of its own size.
        if self.is_empty() {
            Map::new()
        } else {
            self.into_iter().collect()
        }
    }
}

/// A string field; a number is taken as its text (Perl does not keep the two apart).
fn take_string<F: Fields>(m: &mut F, k: &str) -> Result<Option<String>, String> {
    match m.take(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{k}` must be a string, got {other}")),
    }
}

/// A flag pvedr writes as `true` (absent: false).
fn take_flag<F: Fields>(m: &mut F, k: &str) -> Result<bool, String> {
    match m.take(k) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(other) => Err(format!("`{k}` must be true or false, got {other}")),
    }
}

/// An integer field, as a JSON integer or a string of digits.
fn take_int<F: Fields>(m: &mut F, k: &str) -> Result<Option<i64>, String> {
    let v = match m.take(k) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let n = match &v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    };
    n.map(Some)
        .ok_or_else(|| format!("`{k}` must be an integer, got {v}"))
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
    /// Written as an array; read as one, or as Proxmox gives them (`"prod;web"`, `""`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "tags_of"
    )]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Proxmox's tag list split as pve-common `PVE::Tools::split_list` splits one (`;`, `,` or
/// white space between tags).
pub fn split_tags(s: &str) -> Vec<String> {
    s.split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// `tags`: an array of strings (pvedr's records), a `;`-separated string (Proxmox's
/// `/cluster/resources`), or `null`.
fn tags_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Tags>::deserialize(d)? {
        None => Vec::new(),
        Some(Tags::List(l)) => l,
        Some(Tags::Text(t)) => split_tags(&t),
    })
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

/// One step of a plan or of a run (restore, fallback, rebuild, prune --apply).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `ok`, `changed`, `skipped`, `failed` (or `planned` in a dry run).
    pub status: StepStatus,
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
        status: StepStatus,
        message: impl Into<String>,
        started: Option<std::time::Instant>,
    ) -> Step {
        Step {
            step: step.into(),
            target: Some(target.into()),
            status,
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
    pub status: CheckStatus,
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
    pub status: RestoreStatus,
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
    /// When this guest's restore began, RFC 3339 UTC: with `duration_s`, when a drill ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// A restore drill (`--test`: a scratch guest, destroyed after); false for a real one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<bool>,
    /// Bytes of the archive restored, when known (with `duration_s`, the throughput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// In a site plan (several records): the predicted seconds of this guest's restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_s: Option<f64>,
    /// What [`Restore::predicted_s`] was measured from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_from: Option<PredictedFrom>,
    /// In a site plan: the guest's startup order (`startup: order=N`); absent for one
    /// without (restored after every guest with one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
    /// In a site plan: the lane (1..=`--jobs`) that restores this guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<u32>,
    /// In a site plan: the age of the copy restored, in seconds (this guest's RPO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_s: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Restore {
    /// A drill's record: `drill: true` (pve-restore `--test`), or `test: true` as other
    /// writers may mark one.
    pub fn is_drill(&self) -> bool {
        self.drill == Some(true) || self.extra.get("test").and_then(Value::as_bool) == Some(true)
    }

    /// Whether a run is evidence, and which way: a dry run proves nothing; restored or
    /// verified is a success, anything else (failed, refused, rolled back, interrupted, a
    /// status this version does not know) a failure.
    pub fn outcome(&self) -> Option<bool> {
        match self.status {
            _ if self.dry_run => None,
            RestoreStatus::Planned => None,
            RestoreStatus::Restored | RestoreStatus::Verified => Some(true),
            _ => Some(false),
        }
    }

    /// `started` in epoch seconds, when it is RFC 3339.
    pub fn started_at(&self) -> Option<i64> {
        let s = self.started.as_deref()?;
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp())
    }

    /// The guest and start of a successful drill, as `--sample` and backup-check read it.
    pub fn drill_success(&self) -> Option<(u64, i64)> {
        if !self.is_drill() || self.outcome() != Some(true) {
            return None;
        }
        Some((self.vmid?, self.started_at()?))
    }
}

/// Where a site plan's predicted duration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PredictedFrom {
    /// The last restore of the same guest in the history given: its duration, scaled to
    /// this archive's size.
    History,
    /// The history's restores of other guests: their bytes per second.
    HistorySite,
    /// A short ranged GET of the S3 copy and a write through the node's connection.
    Probe,
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
    /// A site plan (pve-restore, several records): the predicted RTO, in seconds (the
    /// makespan of its lanes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_rto_s: Option<f64>,
    /// A site restored: the measured RTO, wall clock from the first restore's start to the
    /// last one's end, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_s: Option<f64>,
    /// A site plan: the age of its oldest copy, in seconds (the site's RPO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_s: Option<f64>,
    /// A site restored: (measured - predicted) / predicted RTO, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_error_pct: Option<f64>,
    /// `--rto-target`, in seconds, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_target_s: Option<f64>,
    /// A site restored with `--stop-on-failure` that did not start its later waves: which
    /// guest was not restored, and how many were held back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The last record of a listing (`pve-ls-backups`): whether what came before it is the
/// whole listing. A stream cut short (a killed process, `head`) has none, an unreachable
/// node gives one with `complete: false`, so a consumer never reads "nothing" as "all
/// fine".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// True when every node and storage asked for was read.
    pub complete: bool,
    /// Records written before this one by the same run.
    pub records: u64,
    /// What could not be read (a node, a storage), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Why backups may be missing although everything answered (privileges a token
    /// lacks): a guest without backups is then unknown, not unprotected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blind: Vec<String>,
    /// The error that ended the run before anything was listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A guest snapshot (`pve-snapshot`): what `/nodes/N/{qemu,lxc}/V/snapshot` says of it,
/// plus the label pve-snapshot gave it and, from `create`/`prune`, what was done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub vmid: u64,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub guest_type: String,
    pub name: String,
    /// The label of a snapshot pve-snapshot made (`daily` of `daily-20240115-020000`);
    /// absent for any other snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Proxmox's `snaptime` (Unix seconds); absent when Proxmox says 0 (unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snaptime: Option<i64>,
    /// `snaptime` as RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Whether the snapshot holds the VM's RAM (VMs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmstate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
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
    Snapshot(Snapshot),
    Listing(Listing),
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

            /// The record as one line of JSON, `kind` first, as `to_value` gives it, without
            /// building the object first (the hot path of every tool that passes records on).
            pub fn to_json_line(&self) -> serde_json::Result<Vec<u8>> {
                #[derive(Serialize)]
                struct Tagged<'a, T: Serialize> {
                    kind: &'a str,
                    #[serde(flatten)]
                    record: &'a T,
                }
                let mut line = match self {
                    $(Record::$variant(r) => serde_json::to_vec(&Tagged { kind: $name, record: r })?,)*
                    Record::Other(m) => serde_json::to_vec(m)?,
                };
                line.push(b'\n');
                Ok(line)
            }

            /// Reads a record from a JSON object. The object must have a string `kind`.
            pub fn from_value(value: Value) -> Result<Record, String> {
                Record::from_value_of(value, None)
            }

            /// [`Record::from_value`], reading only the kinds in `typed` (when given) into
            /// their types: any other kind stays [`Record::Other`], untouched, so a tool that
            /// needs only some kinds passes the rest through whatever they hold.
            pub fn from_value_of(value: Value, typed: Option<&[&str]>) -> Result<Record, String> {
                let Value::Object(mut map) = value else {
                    return Err("a record must be a JSON object".into());
                };
                let kind = match map.get("kind") {
                    Some(Value::String(k)) => k.clone(),
                    Some(_) => return Err("\"kind\" must be a string".into()),
                    None => return Err("record has no \"kind\" field".into()),
                };
                if typed.is_some_and(|t| !t.contains(&kind.as_str())) {
                    return Ok(Record::Other(map));
                }
                if kind == "backup" {
                    // The hot path (100,000s of lines): straight from the parsed map, not
                    // through serde's rebuild of it.
                    map.shift_remove("kind");
                    return Backup::from_map(map)
                        .map(Record::Backup)
                        .map_err(|e| format!("bad `backup` record: {e}"));
                }
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
    Snapshot => "snapshot",
    Listing => "listing",
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
        let v = json!({"kind": "backup", "storage": "local", "volid": "local:backup/x.vma", "subtype": "qemu",
                       "ctime": 1, "time": "1970-01-01T00:00:01Z", "format": "vma", "mark": "keep"});
        let r = Record::from_value(v).expect("valid");
        let Record::Backup(b) = &r else {
            panic!("not a backup")
        };
        assert_eq!(b.extra.get("mark"), Some(&json!("keep")));
        let out = serde_json::to_string(&r.to_value()).expect("json");
        assert!(
            out.starts_with(r#"{"kind":"backup","storage":"local","volid""#),
            "{out}"
        );
        assert!(out.contains(r#""mark":"keep""#));
    }

    #[test]
    fn a_json_line_is_the_value_printed() {
        for line in [
            r#"{"kind":"backup","volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst","ctime":1705284002,"content":"backup","mark":"keep","x":{"y":[1,2.5,"z"]}}"#,
            r#"{"kind":"backup","volid":"pbs:backup/vm/100/2024-01-15T02:00:02Z","ctime":1705284002,"verification":{"state":"ok","upid":"U"},"protected":1}"#,
            r#"{"kind":"check","component":"guest/100","check":"freshness","status":"ok","message":"m","extra_field":null}"#,
            r#"{"kind":"step","step":"s","target":"t","status":"ok","message":"","duration_s":0.5}"#,
            r#"{"kind":"somebody_else","b":1,"a":[true]}"#,
        ] {
            let r = Record::from_value(serde_json::from_str(line).expect("json")).expect(line);
            let mut want = serde_json::to_vec(&r.to_value()).expect("value");
            want.push(b'\n');
            assert_eq!(
                String::from_utf8(r.to_json_line().expect("line")).expect("utf-8"),
                String::from_utf8(want).expect("utf-8")
            );
        }
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

    fn backup(v: Value) -> Result<Backup, String> {
        match Record::from_value(v)? {
            Record::Backup(b) => Ok(b),
            other => Err(format!("not a backup: {other:?}")),
        }
    }

    #[test]
    fn backup_as_pvesh_prints_it() {
        // pve-storage Plugin.pm $get_subdir_files + Content.pm index, `| jq '.kind="backup"'`.
        let b = backup(
            json!({"content": "backup", "ctime": 1705284067, "format": "tar.zst",
            "protected": 1, "size": 312475648, "subtype": "lxc", "vmid": 101,
            "volid": "local:backup/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst", "kind": "backup"}),
        )
        .expect("valid");
        assert!(b.protected);
        assert_eq!(b.time, "2024-01-15T02:01:07Z");
        assert_eq!(b.storage.as_deref(), Some("local"));
        assert_eq!(b.node, None);
        assert_eq!((b.vmid, b.size), (Some(101), Some(312475648)));
        assert_eq!(b.extra.get("content"), Some(&json!("backup")));
        // The record pvedr writes for it: derived fields added, Proxmox's kept.
        let out = Record::Backup(b).to_value();
        assert_eq!(out["protected"], json!(true));
        assert_eq!(out["time"], json!("2024-01-15T02:01:07Z"));
        assert_eq!(out["content"], json!("backup"));
    }

    #[test]
    fn backup_needs_only_volid_and_ctime() {
        let b = backup(json!({"kind": "backup", "ctime": "1705284002",
            "volid": "nas:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst"}))
        .expect("valid");
        assert_eq!(b.storage.as_deref(), Some("nas"));
        assert_eq!((b.subtype.as_str(), b.format.as_str()), ("qemu", "vma.zst"));
        assert_eq!(
            (b.vmid, b.ctime, b.protected),
            (Some(100), 1705284002, false)
        );
        let b = backup(json!({"kind": "backup", "ctime": 1705280405,
            "volid": "pbs:backup/ct/101/2024-01-15T01:00:05Z"}))
        .expect("valid");
        assert_eq!((b.subtype.as_str(), b.format.as_str()), ("lxc", "pbs-ct"));
        assert_eq!(b.vmid, Some(101));
        // Non-standard name: vmid from the `-NNN-` pattern.
        let b = backup(json!({"kind": "backup", "ctime": 1,
            "volid": "local:backup/vzdump-qemu-100-manual-copy.vma.zst"}))
        .expect("valid");
        assert_eq!(b.vmid, Some(100));
        // Not a vzdump name: Proxmox says `unknown`; the format is the extension's.
        let b = backup(json!({"kind": "backup", "ctime": 1, "volid": "local:backup/other.vma"}))
            .expect("valid");
        assert_eq!((b.subtype.as_str(), b.vmid), ("unknown", None));
        assert_eq!(b.format, "vma");
        // No backup extension (a provider's volid): the format must be given.
        let e = backup(json!({"kind": "backup", "ctime": 1, "volid": "local:backup/other.img"}))
            .unwrap_err();
        assert!(e.contains("missing field `format`"), "{e}");
        // Given fields win over the volid.
        let b = backup(
            json!({"kind": "backup", "ctime": 1, "vmid": "200", "subtype": "lxc",
            "storage": "x", "volid": "local:backup/vzdump-qemu-100-manual-copy.vma.zst"}),
        )
        .expect("valid");
        assert_eq!((b.vmid, b.subtype.as_str()), (Some(200), "lxc"));
        assert_eq!(b.storage.as_deref(), Some("x"));
    }

    #[test]
    fn backup_protected_and_nulls() {
        let base = json!({"kind": "backup", "ctime": 1, "volid": "local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma"});
        for (v, want) in [
            (json!(1), true),
            (json!(0), false),
            (json!(true), true),
            (json!(false), false),
            (json!("1"), true),
            (json!("0"), false),
            (Value::Null, false),
        ] {
            let mut r = base.clone();
            r["protected"] = v.clone();
            assert_eq!(backup(r).expect("valid").protected, want, "{v}");
        }
        for v in [json!(2), json!("yes"), json!([1])] {
            let mut r = base.clone();
            r["protected"] = v.clone();
            let e = backup(r).unwrap_err();
            assert!(e.contains("`protected` must be"), "{v}: {e}");
        }
        let mut r = base.clone();
        for k in ["time", "vmid", "size", "notes", "node", "verification"] {
            r[k] = Value::Null;
        }
        let b = backup(r).expect("nulls are absent");
        assert_eq!(b.time, "1970-01-01T00:00:01Z");
        assert_eq!((b.vmid, b.size, b.notes), (Some(100), None, None));
        for (k, v) in [
            ("ctime", json!("x")),
            ("size", json!(-1)),
            ("vmid", json!(1.5)),
        ] {
            let mut r = base.clone();
            r[k] = v;
            assert!(backup(r).is_err(), "{k}");
        }
        let e = backup(json!({"kind": "backup", "volid": "local:backup/x.vma", "format": "vma"}))
            .unwrap_err();
        assert!(e.contains("missing field `ctime`"), "{e}");
    }

    #[test]
    fn backup_records_written_by_pvedr_read_back_the_same() {
        let b = Backup {
            node: Some("pve1".into()),
            storage: Some("pbs".into()),
            volid: "pbs:backup/vm/100/2024-01-15T01:00:05Z".into(),
            vmid: Some(100),
            subtype: "qemu".into(),
            ctime: 1705280405,
            time: "2024-01-15T01:00:05Z".into(),
            size: Some(4_194_304),
            format: "pbs-vm".into(),
            notes: Some("web01".into()),
            protected: true,
            verification: Some(Verification {
                state: "ok".into(),
                upid: Some("UPID:x".into()),
            }),
            encrypted: Some("1".into()),
            name: Some("web01".into()),
            extra: [("mark".to_string(), json!("keep"))].into_iter().collect(),
            ..Default::default()
        };
        let v = Record::Backup(b.clone()).to_value();
        let text = serde_json::to_string(&v).expect("json");
        assert_eq!(backup(v).expect("valid"), b, "{text}");
    }

    #[test]
    fn a_pbs_snapshot_of_size_1_is_unfinished() {
        // pve-storage PBSPlugin.pm list_volumes: `size // 1` for a snapshot without manifest.
        let entry = json!({"kind": "backup", "volid": "pbs:backup/vm/100/2024-01-15T01:00:05Z",
                           "ctime": 1705280405, "format": "pbs-vm", "size": 1});
        let b = backup(entry).expect("valid");
        assert!(b.unfinished);
        assert_eq!(b.size, None);
        let again = backup(Record::Backup(b.clone()).to_value()).expect("valid");
        assert_eq!(again, b);
        // A file archive of one byte is just small.
        let small = json!({"kind": "backup", "volid": "local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma",
                           "ctime": 1705284002, "size": 1});
        let b = backup(small).expect("valid");
        assert!(!b.unfinished && b.size == Some(1));
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(1705284002), "2024-01-15T02:00:02Z");
    }
}
