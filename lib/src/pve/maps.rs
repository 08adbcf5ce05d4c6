//! Storage and bridge maps (`--target-storage MAP`, `--target-bridge MAP`), read as
//! `qm remote-migrate` reads its own (pve-common `src/PVE/JSONSchema.pm` `parse_idmap`,
//! formats `storage-pair-list` and `bridge-pair-list`, applied by `map_id`): entries
//! separated by `,`, `;` or blanks (`split_list`); `SOURCE:TARGET` maps one source; a bare
//! `TARGET` is the default for every other source (once); `1` maps each source to itself
//! and goes with nothing else. An invalid ID or a source given twice is a usage error.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::msg::printable;
use crate::validate;

/// What a map maps, which sets the ID rule and the flag named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `pve-storage-id`.
    Storage,
    /// `pve-bridge-id`: a bridge or an SDN vnet.
    Bridge,
}

impl IdKind {
    pub fn flag(self) -> &'static str {
        match self {
            IdKind::Storage => "--target-storage",
            IdKind::Bridge => "--target-bridge",
        }
    }

    fn check(self, id: &str) -> Result<()> {
        match self {
            IdKind::Storage => validate::storage_id(id).map(drop),
            IdKind::Bridge => validate::bridge_id(id).map(drop),
        }
    }
}

/// A parsed map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub kind: IdKind,
    /// `SOURCE:TARGET` pairs.
    pub entries: BTreeMap<String, String>,
    /// The bare `TARGET`.
    pub default: Option<String>,
    /// `1`: each source to itself.
    pub identity: bool,
}

/// How many entries a map may have: far more than a guest has disks or NICs.
const MAX_ENTRIES: usize = 256;

impl IdMap {
    pub fn parse(kind: IdKind, text: &str) -> Result<IdMap> {
        let bad =
            |why: String| Error::usage(format!("{} '{}': {why}", kind.flag(), printable(text)));
        let mut map = IdMap {
            kind,
            entries: BTreeMap::new(),
            default: None,
            identity: false,
        };
        let items: Vec<&str> = text
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|e| !e.is_empty())
            .collect();
        if items.is_empty() {
            return Err(bad("an empty map".into()));
        }
        if items.len() > MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        for e in items {
            map.add(e).map_err(&bad)?;
        }
        if map.identity && (map.default.is_some() || !map.entries.is_empty()) {
            return Err(bad(
                "the identity mapping '1' cannot be combined with other mappings".into(),
            ));
        }
        Ok(map)
    }

    fn add(&mut self, entry: &str) -> std::result::Result<(), String> {
        let invalid =
            |e: Error| format!("entry '{}' contains an invalid ID ({e})", printable(entry));
        if entry == "1" {
            self.identity = true;
            return Ok(());
        }
        match entry.split(':').collect::<Vec<_>>()[..] {
            [source, target] => {
                self.kind.check(source).map_err(invalid)?;
                self.kind.check(target).map_err(invalid)?;
                if self.entries.contains_key(source) {
                    return Err(format!("duplicate mapping for source '{source}'"));
                }
                self.entries.insert(source.into(), target.into());
            }
            [target] => {
                self.kind.check(target).map_err(invalid)?;
                if self.default.is_some() {
                    return Err("a default target can only be given once".into());
                }
                self.default = Some(target.into());
            }
            _ => return Err(invalid(Error::usage("more than one ':'"))),
        }
        Ok(())
    }

    /// Where `source` goes: its pair, else the default, else itself (`map_id`).
    pub fn target<'a>(&'a self, source: &'a str) -> &'a str {
        self.entries
            .get(source)
            .or(self.default.as_ref())
            .map_or(source, String::as_str)
    }

    /// Every ID the map can send something to (pairs' targets and the default), sorted.
    pub fn targets(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self.entries.values().map(String::as_str).collect();
        t.extend(self.default.as_deref());
        t.sort_unstable();
        t.dedup();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(s: &str) -> Result<IdMap> {
        IdMap::parse(IdKind::Storage, s)
    }

    #[test]
    fn pairs_default_and_identity() {
        let m = storage("local-lvm:nvme, nas:bulk;bulk").expect("a map");
        assert_eq!(
            (m.target("local-lvm"), m.target("nas"), m.target("other")),
            ("nvme", "bulk", "bulk")
        );
        assert_eq!(m.targets(), ["bulk", "nvme"]);
        let id = storage("1").expect("identity");
        assert!(id.identity && id.target("local-lvm") == "local-lvm");
        let only = storage("nvme").expect("a default");
        assert_eq!(only.target("nas"), "nvme");
        let b = IdMap::parse(IdKind::Bridge, "vmbr1:vmbr9,vmbr0:vnet_a").expect("bridges");
        assert_eq!(b.target("vmbr1"), "vmbr9");
        assert_eq!(b.target("vmbr2"), "vmbr2");
    }

    #[test]
    fn refusals_name_the_flag_and_the_fault() {
        let cases = [
            ("", "an empty map"),
            (" , ", "an empty map"),
            ("a:b:c", "more than one"),
            (
                "local-lvm:nvme,local-lvm:bulk",
                "duplicate mapping for source 'local-lvm'",
            ),
            ("nvme,bulk", "only be given once"),
            ("1,nvme", "cannot be combined"),
            ("1,nas:bulk", "cannot be combined"),
            ("nas:x", "invalid ID"),
            ("nas:$(reboot)", "invalid ID"),
            (":nvme", "invalid ID"),
        ];
        for (text, why) in cases {
            let e = storage(text).expect_err(text).to_string();
            assert!(
                e.contains("--target-storage") && e.contains(why),
                "{text}: {e}"
            );
            assert!(matches!(storage(text), Err(Error::Usage(_))));
        }
        let e = IdMap::parse(IdKind::Bridge, "vmbr0:vmbr1!").expect_err("bang");
        assert!(e.to_string().contains("--target-bridge"));
        let e = IdMap::parse(IdKind::Bridge, "vmbr0:a/b").expect_err("slash");
        assert!(e.to_string().contains("invalid ID"), "{e}");
    }
}
