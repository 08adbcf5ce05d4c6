//! Per-guest policy from Proxmox tags: `pvedr-nobackup`, `pvedr-nodrill`, `pvedr-rpo-<d>`,
//! read by backup-check (what it expects of a guest) and pve-restore (which guests a drill
//! sample leaves out).
//!
//! A Proxmox tag is `[a-z0-9_][a-z0-9_\-+.]*`, case-insensitive (pve-common
//! `src/PVE/JSONSchema.pm`, `$PVE_TAG_RE` and `pve_verify_tag`): it cannot hold `=` or
//! `:`, so a value rides in the tag's name. Tags are matched without regard to case.

use crate::records::Guest;
use crate::time::parse_duration;

pub const NO_BACKUP: &str = "pvedr-nobackup";
pub const NO_DRILL: &str = "pvedr-nodrill";
pub const RPO: &str = "pvedr-rpo-";
/// The longest RPO a tag may set (ten years): beyond it, a typo, not a policy.
const MAX_RPO: u64 = 3650 * 86400;

/// What the guest's tags ask.
#[derive(Debug, Default, Clone)]
pub struct GuestPolicy {
    /// No backup and no drill expected (`pvedr-nobackup`).
    pub no_backup: bool,
    /// No restore drill expected (`pvedr-nodrill`).
    pub no_drill: bool,
    /// The guest's own RPO and the tag that set it (`pvedr-rpo-7d`).
    pub rpo: Option<(u64, String)>,
    /// `pvedr-rpo-…` tags whose duration cannot be read (shown visible).
    pub bad: Vec<String>,
}

impl GuestPolicy {
    pub fn of(guest: Option<&Guest>) -> GuestPolicy {
        let mut p = GuestPolicy::default();
        for tag in guest.map(|g| g.tags.as_slice()).unwrap_or_default() {
            let t = tag.to_ascii_lowercase();
            if t == NO_BACKUP {
                p.no_backup = true;
            } else if t == NO_DRILL {
                p.no_drill = true;
            } else if let Some(d) = t.strip_prefix(RPO) {
                match parse_duration(d) {
                    Ok(secs) if secs > 0 && secs <= MAX_RPO => p.rpo = Some((secs, t.clone())),
                    _ => p.bad.push(crate::msg::visible(tag)),
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

    /// Whether this guest is to be drilled (and its drills checked).
    pub fn drills(&self) -> bool {
        !self.no_backup && !self.no_drill
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(tags: &[&str]) -> GuestPolicy {
        let g = Guest {
            vmid: 100,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        GuestPolicy::of(Some(&g))
    }

    #[test]
    fn tags_set_the_policy_whatever_their_case() {
        let p = tagged(&["prod", "PVEDR-RPO-7d", "pvedr-nodrill"]);
        assert_eq!(p.rpo.as_ref().map(|r| r.0), Some(7 * 86400));
        assert!(p.no_drill && !p.no_backup && !p.drills());
        assert!(tagged(&["pvedr-nobackup"]).no_backup);
        assert_eq!(
            tagged(&[
                "pvedr-rpo-soon",
                "pvedr-rpo-0d",
                "pvedr-rpo-15000000000000w"
            ])
            .bad
            .len(),
            3
        );
    }
}
