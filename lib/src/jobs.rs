//! Which backup job covers a guest: one rule for every tool (backup-check's coverage and
//! freshness, backup-prune's `--from-job` retention).

use crate::records::{Guest, Job};

/// What a job's selection needs to know of a guest; `None` where the caller does not know.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestRef<'a> {
    pub vmid: u64,
    /// The node the guest is on now.
    pub node: Option<&'a str>,
    /// The resource pool it belongs to.
    pub pool: Option<&'a str>,
}

impl<'a> GuestRef<'a> {
    /// Only the VMID known (a backup record: its node is where the storage was listed).
    pub fn vmid(vmid: u64) -> GuestRef<'a> {
        GuestRef {
            vmid,
            ..GuestRef::default()
        }
    }

    pub fn of(g: &'a Guest) -> GuestRef<'a> {
        GuestRef {
            vmid: g.vmid,
            node: g.node.as_deref(),
            pool: g.pool.as_deref(),
        }
    }
}

/// Whether the job backs up the guest, as pve-manager `VZDump.pm` get_included_guests
/// decides: the pool first (its members; `exclude` is not applied to a pool), else the
/// `vmid` list, else `all` minus `exclude`; a job with `node` keeps only that node's guests.
/// `None` when that depends on what the caller does not know (pool membership, node).
pub fn includes(job: &Job, g: &GuestRef) -> Option<bool> {
    let chosen = if let Some(pool) = job.pool.as_deref() {
        g.pool.map(|p| p == pool)
    } else if !job.vmid.is_empty() {
        Some(job.vmid.contains(&g.vmid))
    } else {
        Some(job.all && !job.exclude.contains(&g.vmid))
    };
    match (chosen, job.node.as_deref(), g.node) {
        (Some(false), _, _) => Some(false),
        (c, None, _) => c,
        (c, Some(want), Some(on)) => c.filter(|_| want == on).or(Some(false)),
        (_, Some(_), None) => None,
    }
}

/// The enabled job backing up the guest: one writing to `storage` first, then any enabled one.
pub fn covering<'a>(jobs: &'a [Job], g: &GuestRef, storage: Option<&str>) -> Option<&'a Job> {
    let refs: Vec<&Job> = jobs.iter().collect();
    pick(&refs, g, storage, false)
}

/// The job whose retention applies to the guest's backups on `storage`: as [`covering`], and
/// failing an enabled one, a disabled job (its retention is still what Proxmox would apply).
pub fn retention_job<'a>(jobs: &[&'a Job], g: &GuestRef, storage: Option<&str>) -> Option<&'a Job> {
    pick(jobs, g, storage, true)
}

fn pick<'a>(
    jobs: &[&'a Job],
    g: &GuestRef,
    storage: Option<&str>,
    disabled_too: bool,
) -> Option<&'a Job> {
    let covering: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| includes(j, g) == Some(true))
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
        let g = GuestRef::vmid(100);
        assert_eq!(
            covering(&jobs, &g, Some("local")).map(|j| j.id.as_str()),
            Some("b")
        );
        assert_eq!(
            covering(&jobs, &g, Some("other")).map(|j| j.id.as_str()),
            Some("a")
        );
        let only_disabled = vec![job("c", "pbs", false)];
        let refs: Vec<&Job> = only_disabled.iter().collect();
        assert!(covering(&only_disabled, &g, None).is_none());
        assert_eq!(
            retention_job(&refs, &g, None).map(|j| j.id.as_str()),
            Some("c")
        );
    }

    #[test]
    fn selection_order_is_vzdumps() {
        let on = |vmid, node, pool| GuestRef { vmid, node, pool };
        let mut j = job("a", "local", true);
        j.exclude = vec![101];
        assert_eq!(includes(&j, &GuestRef::vmid(100)), Some(true));
        assert_eq!(includes(&j, &GuestRef::vmid(101)), Some(false));
        // A vmid list wins over `all`.
        j.vmid = vec![102];
        assert_eq!(includes(&j, &GuestRef::vmid(100)), Some(false));
        // A pool wins over both, and its members are not excluded.
        j.pool = Some("prod".into());
        assert_eq!(includes(&j, &on(101, None, Some("prod"))), Some(true));
        assert_eq!(includes(&j, &on(102, None, Some("dev"))), Some(false));
        assert_eq!(includes(&j, &GuestRef::vmid(102)), None);
        // `node` keeps only that node's guests.
        let mut n = job("n", "local", true);
        n.node = Some("pve2".into());
        assert_eq!(includes(&n, &on(100, Some("pve1"), None)), Some(false));
        assert_eq!(includes(&n, &on(100, Some("pve2"), None)), Some(true));
        assert_eq!(includes(&n, &GuestRef::vmid(100)), None);
    }
}
