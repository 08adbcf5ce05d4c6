//! What one run checks: the records read, sorted by kind, backups folded per guest.

use pvedr::records::{BackupFailure, Check, Guest, Job, Snapshot, Storage, TfstateVersion};
use serde_json::{Map, Value};

use crate::summary::Summaries;

#[derive(Debug, Default)]
pub struct Inputs {
    /// Backups, folded per guest as they were read (and `--deep` found them).
    pub backups: Summaries,
    pub guests: Vec<Guest>,
    pub storages: Vec<Storage>,
    pub jobs: Vec<Job>,
    pub failures: Vec<BackupFailure>,
    pub tfstate: Vec<TfstateVersion>,
    /// pve-snapshot's records: checked on their own, never as backups.
    pub snapshots: Vec<Snapshot>,
    /// How many archives `--deep` checked (None: it did not run).
    pub deep_checked: Option<usize>,
    /// `offsite_damaged` records (backup-sync ls): offsite copies that cannot be restored.
    pub offsite_damaged: Vec<Map<String, Value>>,
    /// `check` records read (`backup-sync verify`'s): reported as they are.
    pub foreign: Vec<Check>,
    /// Restore drills (`restore` records of `pve-restore --test`), per guest.
    pub drills: crate::drills::Drills,
}
