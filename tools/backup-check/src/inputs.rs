//! What one run checks: the records read, sorted by kind, and what `--deep` found.

use std::collections::HashMap;

use pvedr::records::{Backup, BackupFailure, Check, Guest, Job, Snapshot, Storage, TfstateVersion};
use serde_json::{Map, Value};

#[derive(Debug, Default)]
pub struct Inputs {
    pub backups: Vec<Backup>,
    pub guests: Vec<Guest>,
    pub storages: Vec<Storage>,
    pub jobs: Vec<Job>,
    pub failures: Vec<BackupFailure>,
    pub tfstate: Vec<TfstateVersion>,
    /// pve-snapshot's records: checked on their own, never as backups.
    pub snapshots: Vec<Snapshot>,
    /// volid → what is wrong, for archives `--deep` found damaged.
    pub damaged: HashMap<String, String>,
    /// volid → why `--deep` could not test it (the node lacks the tool): not damage.
    pub untested: HashMap<String, String>,
    /// How many archives `--deep` checked (None: it did not run).
    pub deep_checked: Option<usize>,
    /// `offsite_damaged` records (backup-sync ls): offsite copies that cannot be restored.
    pub offsite_damaged: Vec<Map<String, Value>>,
    /// `check` records read (`backup-sync verify`'s): reported as they are.
    pub foreign: Vec<Check>,
    /// Restore drills (`restore` records of `pve-restore --test`), per guest.
    pub drills: crate::drills::Drills,
}
