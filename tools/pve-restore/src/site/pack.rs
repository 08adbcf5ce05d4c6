//! Whether the site fits: every guest's disks onto the storages they are mapped to, first
//! fit in restore order (the first guests to come back get the room first), each storage's
//! free space as the node reports it. Every guest that does not fit is named at once.
//!
//! A restore needs no room beyond its disks: qemu-server `src/PVE/QemuServer.pm`
//! `restore_vma_archive` runs `vma extract -r FIFO` into `/var/tmp/vzdumptmp<pid>` for the
//! config files only, and `$restore_allocate_devices` allocates each disk on its storage,
//! which vma writes straight into (a compressed file is decompressed in a pipe, a stream
//! comes on stdin); pve-container `src/PVE/LXC/Create.pm` `restore_tar_archive` extracts
//! into the volumes `create_disks` made. What does take more is pvedr's own way with a VM
//! mapped onto several storages: `qmrestore --storage` puts every disk on that one storage
//! (`$parse_backup_hints`: `--storage` overrides each disk's), then `qm disk move --delete
//! 1` takes each other disk to its own; so that storage must hold all of them at once.
//!
//! In lanes the guests of one startup order may restore at the same time: what each holds
//! staged then adds up on its storage, next to the others' disks (a CT's rootfs and mount
//! points too). A guest that would overfill a storage so, though it fits once those before
//! it are done, waits for them: its wave is cut before it (`Packed::waits`). The site is
//! restored more slowly, never refused for it (one lane would restore it).

use std::collections::BTreeMap;

/// A storage's room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub avail: u64,
    /// A thin pool takes more than it holds (written blocks only): overcommit is a
    /// warning, not a refusal, as for one guest (`remap::check`).
    pub thin: bool,
}

/// One guest's need: bytes per target storage.
#[derive(Debug, Clone, Default)]
pub struct Need {
    pub vmid: u64,
    /// Its place in restore order and its startup order's rank (`site::Planned`).
    pub pos: usize,
    pub rank: u64,
    pub bytes: BTreeMap<String, u64>,
    /// A VM restored onto one storage first, its other disks moved after (with maps:
    /// `Remap::vm_storage`, the first target by name with room for every disk).
    pub staged: bool,
}

impl Need {
    /// When staged onto several storages and none has room for every disk at once: why.
    fn unstageable(&self, left: &BTreeMap<&str, u64>) -> Option<String> {
        if !self.staged || self.bytes.len() < 2 {
            return None;
        }
        let total: u64 = self.bytes.values().sum();
        let room = |sid: &String| left.get(sid.as_str()).is_some_and(|l| *l >= total);
        if self.bytes.keys().any(room) {
            return None;
        }
        let sids: Vec<&str> = self.bytes.keys().map(String::as_str).collect();
        Some(format!(
            "{} on one of {} at once (qmrestore puts every disk on one storage before they are moved)",
            gib(total),
            sids.join(", ")
        ))
    }

    /// The storage qmrestore puts every disk on first, as `Remap::vm_storage` picks it (the
    /// first by name with room for all), and the bytes it holds there beyond its own.
    fn staging(&self, left: &BTreeMap<&str, u64>) -> Option<(&str, u64)> {
        if !self.staged || self.bytes.len() < 2 {
            return None;
        }
        let total: u64 = self.bytes.values().sum();
        self.bytes
            .iter()
            .find(|(sid, _)| left.get(sid.as_str()).is_some_and(|l| *l >= total))
            .map(|(sid, own)| (sid.as_str(), total - own))
    }
}

/// The outcome: the guests that do not fit (one sentence each), the warnings, and the
/// guests that must wait for those before them in their wave (position, why).
#[derive(Debug, Default)]
pub struct Packed {
    pub misfits: Vec<String>,
    pub warnings: Vec<String>,
    pub waits: Vec<(usize, String)>,
}

/// The guests of a wave that may be restoring at once: bytes held staged per storage.
#[derive(Default)]
struct Together<'a> {
    rank: Option<u64>,
    staged: BTreeMap<&'a str, u64>,
}

impl<'a> Together<'a> {
    /// Takes `n` in (its `left` not yet taken); why it must wait when, next to what the
    /// others hold staged, it would overfill a storage: then it starts a new group.
    fn join(&mut self, n: &'a Need, left: &BTreeMap<&str, u64>) -> Option<String> {
        let extra = n.staging(left);
        let mut need: BTreeMap<&str, u64> = n.bytes.iter().map(|(s, b)| (s.as_str(), *b)).collect();
        if let Some((sid, x)) = extra {
            *need.entry(sid).or_default() += x;
        }
        let short = need.iter().find_map(|(sid, b)| {
            let held = self.staged.get(sid).copied().unwrap_or(0);
            let room = left.get(sid).copied().unwrap_or(0).saturating_sub(held);
            (held > 0 && *b > room).then(|| (*sid, b + held))
        });
        let why = match (self.rank == Some(n.rank), short) {
            (true, Some((sid, total))) => {
                self.staged.clear();
                Some(format!(
                    "guest {} waits for the guests before it of its startup order: restored at the same time they would need {} on {sid}, {} left (qmrestore puts every disk of a VM on one storage before moving them)",
                    n.vmid,
                    gib(total),
                    gib(left.get(sid).copied().unwrap_or(0))
                ))
            }
            (true, None) => None,
            (false, _) => {
                self.staged.clear();
                None
            }
        };
        self.rank = Some(n.rank);
        if let Some((sid, x)) = extra {
            *self.staged.entry(sid).or_default() += x;
        }
        why
    }
}

const GIB: f64 = (1u64 << 30) as f64;

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / GIB)
}

/// `needs` in restore order onto `rooms`; a guest that does not fit takes no room.
pub fn pack(needs: &[Need], rooms: &BTreeMap<String, Room>) -> Packed {
    let mut left: BTreeMap<&str, u64> = rooms.iter().map(|(k, r)| (k.as_str(), r.avail)).collect();
    let mut p = Packed::default();
    let mut together = Together::default();
    for n in needs {
        let mut short = Vec::new();
        for (sid, &b) in &n.bytes {
            match (rooms.get(sid), left.get(sid.as_str())) {
                (Some(r), Some(&l)) if b > l && r.thin => p.warnings.push(format!(
                    "guest {}: thin pool {sid} is overcommitted ({} for {} left): it fills as the disks are written",
                    n.vmid,
                    gib(b),
                    gib(l)
                )),
                (Some(_), Some(&l)) if b > l => {
                    short.push(format!("{} on {sid} with {} left", gib(b), gib(l)))
                }
                (Some(_), Some(_)) => {}
                _ => short.push(format!("{} on {sid}, which the node does not have", gib(b))),
            }
        }
        if short.is_empty() {
            short.extend(n.unstageable(&left));
        }
        if short.is_empty() {
            if let Some(why) = together.join(n, &left) {
                p.waits.push((n.pos, why));
            }
            for (sid, b) in &n.bytes {
                if let Some(l) = left.get_mut(sid.as_str()) {
                    *l = l.saturating_sub(*b);
                }
            }
        } else {
            p.misfits
                .push(format!("guest {} needs {}", n.vmid, short.join(", ")));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    /// A guest alone in its wave (its own rank).
    fn need(vmid: u64, bytes: &[(&str, u64)]) -> Need {
        Need {
            vmid,
            pos: vmid as usize,
            rank: vmid,
            bytes: bytes.iter().map(|(s, b)| (s.to_string(), *b)).collect(),
            staged: false,
        }
    }

    #[test]
    fn guests_of_one_wave_wait_when_what_they_hold_staged_at_once_overfills_a_storage() {
        let wave = |n: Need, staged| Need {
            rank: 0,
            staged,
            ..n
        };
        let vm = |vmid| wave(need(vmid, &[("a", 4 * G), ("b", 4 * G)]), true);
        let r = rooms(&[("a", 12 * G, false), ("b", 12 * G, false)]);
        // Either alone stages 8 GiB on a; both at once 16 on 12: the second waits.
        let p = pack(&[vm(1), vm(2)], &r);
        assert!(p.misfits.is_empty(), "{:?}", p.misfits);
        assert_eq!(p.waits.len(), 1, "{:?}", p.waits);
        assert_eq!(p.waits[0].0, 2);
        assert!(
            p.waits[0]
                .1
                .starts_with("guest 2 waits for the guests before it")
        );
        assert!(
            p.waits[0].1.contains("12.0 GiB on a, 8.0 GiB left"),
            "{:?}",
            p.waits
        );
        // A CT's rootfs next to a VM staged on the same storage: it waits too.
        let ct = wave(need(3, &[("a", 6 * G)]), false);
        let p = pack(&[vm(1), ct], &r);
        assert_eq!(p.waits.iter().map(|w| w.0).collect::<Vec<_>>(), [3]);
        // In two waves, or with room for both at once: nobody waits.
        assert!(
            pack(&[need(1, &[("a", 4 * G), ("b", 4 * G)]), vm(2)], &r)
                .waits
                .is_empty()
        );
        let big = rooms(&[("a", 16 * G, false), ("b", 12 * G, false)]);
        assert!(pack(&[vm(1), vm(2)], &big).waits.is_empty());
    }

    #[test]
    fn a_vm_staged_onto_one_storage_needs_room_for_every_disk_there_then_only_its_own() {
        let staged = |vmid, bytes: &[(&str, u64)]| Need {
            staged: true,
            ..need(vmid, bytes)
        };
        // 4 + 4 GiB first on a (9 left), then one moves to b: a keeps 4, 5 left for 2.
        let r = rooms(&[("a", 9 * G, false), ("b", 6 * G, false)]);
        let p = pack(
            &[
                staged(1, &[("a", 4 * G), ("b", 4 * G)]),
                need(2, &[("a", 5 * G)]),
            ],
            &r,
        );
        assert!(p.misfits.is_empty(), "{:?}", p.misfits);
        // Each disk fits its own storage, but neither holds both.
        let r = rooms(&[("a", 6 * G, false), ("b", 6 * G, true)]);
        let p = pack(&[staged(1, &[("a", 4 * G), ("b", 4 * G)])], &r);
        assert_eq!(
            p.misfits,
            [
                "guest 1 needs 8.0 GiB on one of a, b at once (qmrestore puts every disk on one storage before they are moved)"
            ]
        );
        // Not staged (each disk restored onto its own storage): it fits.
        assert!(
            pack(&[need(1, &[("a", 4 * G), ("b", 4 * G)])], &r)
                .misfits
                .is_empty()
        );
    }

    fn rooms(r: &[(&str, u64, bool)]) -> BTreeMap<String, Room> {
        r.iter()
            .map(|(s, a, thin)| {
                (
                    s.to_string(),
                    Room {
                        avail: *a,
                        thin: *thin,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn first_fit_in_order_names_every_guest_left_out() {
        let r = rooms(&[("bulk", 100 * G, false), ("nvme", 10 * G, true)]);
        let needs = [
            need(100, &[("bulk", 60 * G)]),
            need(101, &[("bulk", 50 * G)]),
            need(102, &[("bulk", 40 * G), ("nvme", 20 * G)]),
            need(103, &[("gone", G)]),
        ];
        let p = pack(&needs, &r);
        assert_eq!(p.misfits.len(), 2, "{:?}", p.misfits);
        assert!(p.misfits[0].starts_with("guest 101 needs 50.0 GiB on bulk with 40.0 GiB left"));
        assert!(p.misfits[1].contains("guest 103") && p.misfits[1].contains("does not have"));
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].contains("guest 102") && p.warnings[0].contains("nvme"));
    }

    #[test]
    fn a_site_that_fits_exactly_fits() {
        let r = rooms(&[("bulk", 10 * G, false)]);
        let p = pack(
            &[need(1, &[("bulk", 4 * G)]), need(2, &[("bulk", 6 * G)])],
            &r,
        );
        assert!(p.misfits.is_empty() && p.warnings.is_empty());
    }
}
