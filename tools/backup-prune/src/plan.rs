//! From records to marks: grouping as Proxmox does, the policy per group, the marks written
//! back into each `backup` record (`mark`, `reason`).

use std::collections::HashMap;

use chrono::NaiveDateTime;

use pvedr::records::{Backup, Job, Record};
use pvedr::time::Zone;
use serde_json::Value;

use pvedr::retention::KeepOptions;
use pvedr::retention::{Entry, Mark, mark_group};

/// Where the retention comes from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    Fixed(KeepOptions),
    /// The `prune_backups` of the job covering each guest.
    FromJob,
}

/// Proxmox prunes each storage on its own, per guest type and VMID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub node: Option<String>,
    pub storage: Option<String>,
    pub subtype: String,
    pub vmid: Option<u64>,
}

impl GroupKey {
    pub fn of(b: &Backup) -> GroupKey {
        GroupKey {
            node: b.node.clone(),
            storage: b.storage.clone(),
            subtype: b.subtype.clone(),
            vmid: b.vmid,
        }
    }

    /// `qemu/100`, as the warnings name the guest.
    fn guest(&self) -> String {
        let vmid = self.vmid.map(|v| v.to_string()).unwrap_or_default();
        format!("{}/{vmid}", self.subtype)
    }
}

/// Every backup of the group kept, and the reason the marks give for it.
fn keep_all(reason: &'static str) -> (KeepOptions, Option<&'static str>) {
    let all = KeepOptions {
        all: true,
        ..Default::default()
    };
    (all, Some(reason))
}

/// The job whose retention applies to a guest on a storage (pvedr's one rule).
fn job_for<'a>(jobs: &[&'a Job], key: &GroupKey) -> Option<&'a Job> {
    // A backup record's node is where its storage was listed, not the guest's node.
    let guest = pvedr::jobs::GuestRef::vmid(key.vmid?);
    pvedr::jobs::retention_job(jobs, &guest, key.storage.as_deref())
}

/// Which zone a group's periods are in.
#[derive(Debug, Clone, Copy)]
pub enum Zones {
    /// `--timezone`: every group.
    Given(Zone),
    /// The zone the records carry (`timezone`, their node's), else this one.
    Records { otherwise: Zone },
}

impl Zones {
    fn of(self, first: &Backup) -> Result<Zone, String> {
        match (self, first.timezone.as_deref()) {
            (Zones::Given(z), _) => Ok(z),
            (Zones::Records { .. }, Some(name)) => Zone::named(name).map_err(|_| {
                format!(
                    "{}: unknown time zone '{}' in the record; give --timezone",
                    first.volid,
                    pvedr::msg::visible(name)
                )
            }),
            (Zones::Records { otherwise }, None) => Ok(otherwise),
        }
    }
}

/// Marks every `backup` record in place. Returns warnings for stderr.
pub fn mark_records(
    records: &mut [Record],
    source: &PolicySource,
    zones: Zones,
) -> Result<Vec<String>, String> {
    let mut groups: HashMap<GroupKey, Vec<usize>> = HashMap::new();
    let mut order: Vec<GroupKey> = Vec::new();
    for (i, r) in records.iter_mut().enumerate() {
        if let Record::Backup(b) = r {
            if b.unfinished {
                // Kept out of the group, as PBS's own prune keeps the snapshot being written
                // (pbs-datastore `prune.rs` `remove_incomplete_snapshots`): no slot taken.
                set_mark(b, Mark::Keep, Some("unfinished"));
                continue;
            }
            let k = GroupKey::of(b);
            groups
                .entry(k.clone())
                .or_insert_with(|| {
                    order.push(k);
                    Vec::new()
                })
                .push(i);
        }
    }
    // Owned: the records are marked in place below.
    let owned_jobs: Vec<Job> = records
        .iter()
        .filter_map(|r| match r {
            Record::Job(j) => Some(j.clone()),
            _ => None,
        })
        .collect();
    let jobs: Vec<&Job> = owned_jobs.iter().collect();
    let mut warnings = Vec::new();
    for key in order {
        let idx = &groups[&key];
        // A group is one storage of one node: its first record says the node's zone.
        let zone = match &records[idx[0]] {
            Record::Backup(b) => zones.of(b)?,
            _ => continue,
        };
        let local = |t: i64| -> NaiveDateTime { zone.to_local(t).unwrap_or_default() };
        let (opts, reason_override) = match source {
            PolicySource::Fixed(o) => (*o, None),
            PolicySource::FromJob => match job_for(&jobs, &key) {
                None => {
                    warnings.push(format!(
                        "{}: no backup job covers this guest; its backups are all kept",
                        key.guest()
                    ));
                    keep_all("no-job")
                }
                Some(j) => match &j.prune_backups {
                    None => {
                        warnings.push(format!(
                            "job {} has no retention of its own (the storage's applies, not known here); backups of {} are all kept",
                            j.id,
                            key.guest()
                        ));
                        keep_all("no-policy")
                    }
                    Some(p) => (
                        KeepOptions::from_json(p)
                            .map_err(|e| format!("job {}: prune-backups: {e}", j.id))?,
                        None,
                    ),
                },
            },
        };
        let entries: Vec<Entry> = idx
            .iter()
            .map(|&i| match &records[i] {
                Record::Backup(b) => Entry {
                    ctime: b.ctime,
                    std_name: pvedr::records::is_std_backup(b),
                    protected: b.protected,
                },
                _ => Entry {
                    ctime: 0,
                    std_name: false,
                    protected: true,
                },
            })
            .collect();
        let marks = mark_group(&entries, &opts, &local);
        for (&i, (mark, reason)) in idx.iter().zip(marks) {
            if let Record::Backup(b) = &mut records[i] {
                let reason = match (mark, reason_override) {
                    (Mark::Keep, Some(r)) => Some(r),
                    _ => reason.map(|r| r.as_str()),
                };
                set_mark(b, mark, reason);
            }
        }
    }
    Ok(warnings)
}

fn set_mark(b: &mut Backup, mark: Mark, reason: Option<&str>) {
    b.extra.insert("mark".into(), Value::from(mark.as_str()));
    b.extra.insert(
        "reason".into(),
        reason.map(Value::from).unwrap_or(Value::Null),
    );
}
