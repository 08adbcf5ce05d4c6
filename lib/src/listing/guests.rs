//! Which guests a command acts on, beside [`super::FilterArgs`]' `--vmid` and `--type`:
//! `--all`, `--pool`, `--tag`, `--exclude`, as vzdump selects (`--all`, `--pool`,
//! `--exclude`) plus Proxmox's tags. Read from `/cluster/resources --type vm`.

use clap::Args;

use super::Filter;
use crate::error::{Error, Result};
use crate::pve;
use crate::records::Guest;
use crate::transport::Transport;
use crate::validate;

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Guest selection")]
pub struct GuestArgs {
    /// Every guest of the cluster (less --exclude).
    #[arg(long)]
    pub all: bool,

    /// The guests of this resource pool (repeatable).
    #[arg(long, value_name = "POOL")]
    pub pool: Vec<String>,

    /// The guests with this tag (repeatable: any of them).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,

    /// Leave this guest out (repeatable, or comma-separated).
    #[arg(long, value_name = "VMID", value_delimiter = ',')]
    pub exclude: Vec<String>,
}

/// Parsed and validated guest selection.
#[derive(Debug, Clone, Default)]
pub struct GuestSelection {
    pub vmids: Vec<u64>,
    pub guest_type: Option<String>,
    pub all: bool,
    pub pools: Vec<String>,
    pub tags: Vec<String>,
    pub exclude: Vec<u64>,
}

/// A pool or tag name: Proxmox's own characters only (they are compared, never run).
fn name(kind: &str, s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::usage(format!(
            "invalid {kind} '{}'",
            s.escape_debug()
        )))
    }
}

impl GuestArgs {
    /// With `filter`'s `--vmid` and `--type`.
    pub fn parse(&self, filter: &Filter) -> Result<GuestSelection> {
        Ok(GuestSelection {
            vmids: filter.vmids.clone(),
            guest_type: filter.guest_type.clone(),
            all: self.all,
            pools: self
                .pool
                .iter()
                .map(|p| name("pool", p))
                .collect::<Result<_>>()?,
            tags: self
                .tag
                .iter()
                .map(|t| name("tag", t))
                .collect::<Result<_>>()?,
            exclude: self
                .exclude
                .iter()
                .map(|v| validate::vmid(v))
                .collect::<Result<_>>()?,
        })
    }
}

impl GuestSelection {
    /// Whether anything names guests (`--vmid`, `--all`, `--pool`, `--tag`): a command that
    /// changes guests needs one, and never falls back to every guest.
    pub fn names_guests(&self) -> bool {
        self.all || !self.vmids.is_empty() || !self.pools.is_empty() || !self.tags.is_empty()
    }

    /// Whether `g` is selected. With nothing naming guests, every guest is.
    pub fn matches(&self, g: &Guest) -> bool {
        let named = !self.names_guests()
            || self.all
            || self.vmids.contains(&g.vmid)
            || g.pool.as_ref().is_some_and(|p| self.pools.contains(p))
            || g.tags.iter().any(|t| self.tags.contains(t));
        named
            && !self.exclude.contains(&g.vmid)
            && self.guest_type.as_deref().is_none_or(|t| t == g.guest_type)
    }

    /// The selected guests of `/cluster/resources --type vm`, by VMID, and the `--vmid`s
    /// that are not in the cluster.
    pub fn resolve(&self, t: &dyn Transport) -> Result<(Vec<Guest>, Vec<u64>)> {
        let found = pve::Client::new(t).vm_resources()?;
        let mut all: Vec<Guest> = found.into_iter().map(Guest::from).collect();
        all.sort_by_key(|g| g.vmid);
        let missing = self
            .vmids
            .iter()
            .copied()
            .filter(|v| !all.iter().any(|g| g.vmid == *v))
            .collect();
        Ok((
            all.into_iter().filter(|g| self.matches(g)).collect(),
            missing,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(vmid: u64, t: &str, pool: Option<&str>, tags: &[&str]) -> Guest {
        Guest {
            vmid,
            guest_type: t.into(),
            pool: pool.map(String::from),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn selection_by_pool_tag_type_and_exclusion() {
        let a = GuestArgs {
            pool: vec!["prod".into()],
            tag: vec!["web".into()],
            exclude: vec!["102".into()],
            ..Default::default()
        };
        let s = a.parse(&Filter::default()).expect("valid");
        assert!(s.matches(&guest(100, "qemu", Some("prod"), &[])));
        assert!(s.matches(&guest(101, "lxc", None, &["web"])));
        assert!(!s.matches(&guest(102, "qemu", Some("prod"), &[])));
        assert!(!s.matches(&guest(103, "qemu", None, &["db"])));
        let typed = GuestSelection {
            all: true,
            guest_type: Some("lxc".into()),
            ..Default::default()
        };
        assert!(!typed.matches(&guest(100, "qemu", None, &[])));
        assert!(typed.matches(&guest(101, "lxc", None, &[])));
        assert!(!GuestSelection::default().names_guests());
        let bad = GuestArgs {
            tag: vec!["a;b".into()],
            ..Default::default()
        };
        assert!(bad.parse(&Filter::default()).is_err());
    }
}
