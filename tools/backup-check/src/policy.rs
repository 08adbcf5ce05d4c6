//! Per-guest policy from Proxmox tags: `pvedr-nobackup`, `pvedr-nodrill`, `pvedr-rpo-<d>`.
//!
//! A Proxmox tag is `[a-z0-9_][a-z0-9_\-+.]*`, case-insensitive (pve-common
//! `src/PVE/JSONSchema.pm`, `$PVE_TAG_RE` and `pve_verify_tag`): it cannot hold `=` or
//! `:`, so a value rides in the tag's name. Tags are matched without regard to case.

use pvedr::records::{Check, Guest};
use pvedr::time::{format_duration, parse_duration};

use crate::status::{Status, check};

const NO_BACKUP: &str = "pvedr-nobackup";
const NO_DRILL: &str = "pvedr-nodrill";
const RPO: &str = "pvedr-rpo-";
/// The longest RPO a tag may set (ten years): beyond it, a typo, not a policy.
const MAX_RPO: u64 = 3650 * 86400;

/// What the guest's tags ask of the checks.
#[derive(Debug, Default, Clone)]
pub struct Policy {
    /// No backup and no drill expected (`pvedr-nobackup`).
    pub no_backup: bool,
    /// No restore drill expected (`pvedr-nodrill`).
    pub no_drill: bool,
    /// The guest's own RPO and the tag that set it (`pvedr-rpo-7d`).
    pub rpo: Option<(u64, String)>,
    /// `pvedr-rpo-…` tags whose duration cannot be read.
    bad: Vec<String>,
}

impl Policy {
    pub fn of(guest: Option<&Guest>) -> Policy {
        let mut p = Policy::default();
        for tag in guest.map(|g| g.tags.as_slice()).unwrap_or_default() {
            let t = tag.to_ascii_lowercase();
            if t == NO_BACKUP {
                p.no_backup = true;
            } else if t == NO_DRILL {
                p.no_drill = true;
            } else if let Some(d) = t.strip_prefix(RPO) {
                match parse_duration(d) {
                    Ok(secs) if secs > 0 && secs <= MAX_RPO => p.rpo = Some((secs, t.clone())),
                    _ => p.bad.push(pvedr::msg::visible(tag)),
                }
            }
        }
        p
    }

    /// Freshness limits (warning, critical) and where they come from, when the tags set them:
    /// the RPO warns, twice the RPO is critical.
    pub fn freshness(&self) -> Option<(u64, u64, String)> {
        let (secs, tag) = self.rpo.as_ref()?;
        Some((*secs, secs.saturating_mul(2), format!("tag {tag}")))
    }

    /// Whether drills of this guest are checked.
    pub fn drills(&self) -> bool {
        !self.no_backup && !self.no_drill
    }

    /// The findings the policy itself makes: a tag that cannot be read is UNKNOWN (the
    /// guest is judged by the flags' limits meanwhile); `pvedr-nobackup` says why the
    /// backup checks stand aside.
    pub fn findings(&self, component: &str) -> Vec<Check> {
        let mut out: Vec<Check> = self
            .bad
            .iter()
            .map(|t| {
                let msg = format!(
                    "tag {t}: not a duration after {RPO} (e.g. {RPO}7d): judged by --max-age"
                );
                check(component, "policy", Status::Unknown, msg, None, None)
            })
            .collect();
        if self.no_backup {
            let msg = format!("no backup or restore drill expected (tag {NO_BACKUP})");
            out.push(check(component, "policy", Status::Ok, msg, None, None));
        }
        if let Some((secs, tag)) = &self.rpo {
            let msg = format!("RPO {} (tag {tag})", format_duration(*secs));
            out.push(check(component, "policy", Status::Ok, msg, None, None));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(tags: &[&str]) -> Policy {
        let g = Guest {
            vmid: 100,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        Policy::of(Some(&g))
    }

    #[test]
    fn tags_set_the_policy_whatever_their_case() {
        let p = tagged(&["prod", "PVEDR-RPO-7d", "pvedr-nodrill"]);
        assert_eq!(p.rpo.as_ref().map(|r| r.0), Some(7 * 86400));
        assert!(p.no_drill && !p.no_backup && !p.drills());
        assert!(tagged(&["pvedr-nobackup"]).no_backup);
    }

    #[test]
    fn an_unreadable_rpo_is_unknown_not_ignored() {
        let p = tagged(&[
            "pvedr-rpo-soon",
            "pvedr-rpo-0d",
            "pvedr-rpo-15000000000000w",
        ]);
        assert!(p.rpo.is_none());
        let f = p.findings("guest/100");
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|c| c.status == Status::Unknown.typed()));
    }
}
