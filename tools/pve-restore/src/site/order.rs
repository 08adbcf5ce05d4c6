//! The order a site is restored in: Proxmox's boot order (pve-manager
//! `PVE/API2/Nodes.pm` `get_start_stop_list`, `startall`): by `startup` order ascending,
//! guests without one after every guest with one, ties by VMID. Guests of one rank form a
//! wave: a wave starts once every guest of the waves before it is restored.

use std::ops::Range;

use pvedr::pve::startup;

/// What the order reads of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// [`startup::rank`]: the order, `u64::MAX` for none.
    pub rank: u64,
    pub vmid: u64,
}

/// The guest's startup order from its config's `startup` value; an unparsable one is none
/// (Proxmox refuses such a config, so it never boots in an order either).
pub fn order_of(startup_value: Option<&str>) -> Option<u64> {
    startup_value.and_then(startup::parse).and_then(|s| s.order)
}

/// Indices of `keys` in restore order (stable: equal keys keep their input order).
pub fn sorted(keys: &[Key]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_by_key(|&i| (keys[i].rank, keys[i].vmid));
    idx
}

/// The waves of `ranks` (already in restore order): ranges of equal rank.
pub fn waves(ranks: &[u64]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, r) in ranks.iter().enumerate() {
        match out.last_mut() {
            Some(w) if ranks[w.start] == *r => w.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// `waves` each cut before every position of `at` inside it.
pub fn cut(waves: Vec<Range<usize>>, at: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(waves.len() + at.len());
    for w in waves {
        let mut start = w.start;
        for &p in at.iter().filter(|&&p| p > w.start && p < w.end) {
            out.push(start..p);
            start = p;
        }
        out.push(start..w.end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(order: Option<u64>, vmid: u64) -> Key {
        Key {
            rank: order.unwrap_or(u64::MAX),
            vmid,
        }
    }

    #[test]
    fn boot_order_then_the_rest_by_vmid() {
        let keys = [
            key(None, 100),
            key(Some(2), 300),
            key(Some(1), 400),
            key(Some(2), 200),
            key(None, 50),
        ];
        let s = sorted(&keys);
        let vmids: Vec<u64> = s.iter().map(|&i| keys[i].vmid).collect();
        assert_eq!(vmids, [400, 200, 300, 50, 100]);
        let ranks: Vec<u64> = s.iter().map(|&i| keys[i].rank).collect();
        assert_eq!(waves(&ranks), [0..1, 1..3, 3..5]);
    }

    #[test]
    fn order_from_the_startup_value() {
        assert_eq!(order_of(Some("order=3,up=20")), Some(3));
        assert_eq!(order_of(Some("up=20")), None);
        assert_eq!(order_of(Some("order=three")), None);
        assert_eq!(order_of(None), None);
        assert!(waves(&[]).is_empty());
    }

    #[test]
    fn a_wave_cut_before_a_guest_that_must_wait() {
        assert_eq!(
            cut(vec![0..1, 1..4, 4..5], &[2, 4]),
            [0..1, 1..2, 2..4, 4..5]
        );
        assert_eq!(cut(vec![0..3, 3..4], &[]), [0..3, 3..4]);
    }
}
