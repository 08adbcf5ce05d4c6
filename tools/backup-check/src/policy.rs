//! The findings of a guest's tag policy (`pvedr::policy`): a tag that cannot be read is
//! UNKNOWN, and what a tag changed is said.

use pvedr::policy::{NO_BACKUP, RPO};
use pvedr::records::Check;
use pvedr::time::format_duration;

pub use pvedr::policy::GuestPolicy as Policy;

use crate::status::{Status, check};

/// The findings the policy itself makes: a tag that cannot be read is UNKNOWN (the guest is
/// judged by the flags' limits meanwhile); `pvedr-nobackup` says why the backup checks
/// stand aside.
pub fn findings(p: &Policy, component: &str) -> Vec<Check> {
    let mut out: Vec<Check> = p
        .bad
        .iter()
        .map(|t| {
            let msg =
                format!("tag {t}: not a duration after {RPO} (e.g. {RPO}7d): judged by --max-age");
            check(component, "policy", Status::Unknown, msg, None, None)
        })
        .collect();
    if p.no_backup {
        let msg = format!("no backup or restore drill expected (tag {NO_BACKUP})");
        out.push(check(component, "policy", Status::Ok, msg, None, None));
    }
    if let Some((secs, tag)) = &p.rpo {
        let msg = format!("RPO {} (tag {tag})", format_duration(*secs));
        out.push(check(component, "policy", Status::Ok, msg, None, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvedr::records::Guest;

    #[test]
    fn an_unreadable_rpo_is_unknown_not_ignored() {
        let g = Guest {
            vmid: 100,
            tags: vec!["pvedr-rpo-soon".into(), "pvedr-rpo-0d".into()],
            ..Default::default()
        };
        let f = findings(&Policy::of(Some(&g)), "guest/100");
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|c| c.status == Status::Unknown.typed()));
    }
}
