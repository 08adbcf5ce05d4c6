//! Which backup job covers a guest: one rule for every tool (backup-check's coverage and
//! freshness, backup-prune's `--from-job` retention).

use crate::records::Job;

/// The enabled job backing up `vmid`: one writing to `storage` first, then any enabled one.
pub fn covering<'a>(jobs: &'a [Job], vmid: u64, storage: Option<&str>) -> Option<&'a Job> {
    let refs: Vec<&Job> = jobs.iter().collect();
    pick(&refs, vmid, storage, false)
}

/// The job whose retention applies to `vmid`'s backups on `storage`: as [`covering`], and
/// failing an enabled one, a disabled job (its retention is still what Proxmox would apply).
pub fn retention_job<'a>(jobs: &[&'a Job], vmid: u64, storage: Option<&str>) -> Option<&'a Job> {
    pick(jobs, vmid, storage, true)
}

fn pick<'a>(
    jobs: &[&'a Job],
    vmid: u64,
    storage: Option<&str>,
    disabled_too: bool,
) -> Option<&'a Job> {
    let covering: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| j.covers(vmid) == Some(true))
        .collect();
    let same_storage = |j: &&&Job| j.storage.is_some() && j.storage.as_deref() == storage;
    covering
        .iter()
        .find(|j| j.enabled && same_storage(j))
        .or_else(|| covering.iter().find(|j| j.enabled))
        .or_else(|| covering.first().filter(|_| disabled_too))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, storage: &str, enabled: bool) -> Job {
        Job {
            id: id.into(),
            storage: Some(storage.into()),
            all: true,
            enabled,
            ..Default::default()
        }
    }

    #[test]
    fn the_job_writing_to_the_storage_wins() {
        let jobs = vec![
            job("a", "nas", true),
            job("b", "local", true),
            job("c", "pbs", false),
        ];
        assert_eq!(
            covering(&jobs, 100, Some("local")).map(|j| j.id.as_str()),
            Some("b")
        );
        assert_eq!(
            covering(&jobs, 100, Some("other")).map(|j| j.id.as_str()),
            Some("a")
        );
        let only_disabled = vec![job("c", "pbs", false)];
        let refs: Vec<&Job> = only_disabled.iter().collect();
        assert!(covering(&only_disabled, 100, None).is_none());
        assert_eq!(
            retention_job(&refs, 100, None).map(|j| j.id.as_str()),
            Some("c")
        );
    }
}
