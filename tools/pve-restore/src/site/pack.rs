//! Whether the site fits: every guest's disks onto the storages they are mapped to, first
//! fit in restore order (the first guests to come back get the room first), each storage's
//! free space as the node reports it. Every guest that does not fit is named at once.

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
    pub bytes: BTreeMap<String, u64>,
}

/// The outcome: the guests that do not fit (one sentence each) and the warnings.
#[derive(Debug, Default)]
pub struct Packed {
    pub misfits: Vec<String>,
    pub warnings: Vec<String>,
}

const GIB: f64 = (1u64 << 30) as f64;

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / GIB)
}

/// `needs` in restore order onto `rooms`; a guest that does not fit takes no room.
pub fn pack(needs: &[Need], rooms: &BTreeMap<String, Room>) -> Packed {
    let mut left: BTreeMap<&str, u64> = rooms.iter().map(|(k, r)| (k.as_str(), r.avail)).collect();
    let mut p = Packed::default();
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

    fn need(vmid: u64, bytes: &[(&str, u64)]) -> Need {
        Need {
            vmid,
            bytes: bytes.iter().map(|(s, b)| (s.to_string(), *b)).collect(),
        }
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
