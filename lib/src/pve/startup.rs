//! A guest's `startup` property (`[[order=]N][,up=N][,down=N]`), as pve-common
//! `src/PVE/JSONSchema.pm` `pve_parse_startup_order` reads it, and the order Proxmox starts
//! guests in (pve-manager `PVE/API2/Nodes.pm` `get_start_stop_list` and `startall`).

/// The parsed `startup` property.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Startup {
    pub order: Option<u64>,
    pub up: Option<u64>,
    pub down: Option<u64>,
}

/// `None` when Proxmox would not parse it either (an unknown part, a number that is not
/// one); empty parts are skipped, and an empty value is no startup at all.
pub fn parse(value: &str) -> Option<Startup> {
    let mut s = Startup::default();
    for p in value.split(',') {
        // Only blank parts are skipped: ` order=1` is refused, as `^(order=)?(\d+)$` does.
        if p.bytes().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let (key, num) = p.split_once('=').unwrap_or(("order", p));
        let n = digits(num)?;
        match key {
            "order" => s.order = Some(n),
            "up" => s.up = Some(n),
            "down" => s.down = Some(n),
            _ => return None,
        }
    }
    Some(s)
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The order of a guest at boot: its `order`, or after every guest that has one
/// (`get_start_stop_list` files those under `LONG_MAX`); `startall` then goes by this rank
/// ascending, ties by VMID ascending.
pub fn rank(startup: Option<&Startup>) -> u64 {
    startup.and_then(|s| s.order).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_proxmox_does() {
        let s = parse("order=3,up=30,down=60").expect("valid");
        assert_eq!((s.order, s.up, s.down), (Some(3), Some(30), Some(60)));
        assert_eq!(parse("2").expect("bare order").order, Some(2));
        assert_eq!(parse("up=5,,").expect("empty parts").order, None);
        assert_eq!(parse(""), Some(Startup::default()));
        assert_eq!(parse("order=x"), None);
        assert_eq!(parse("order=-1"), None);
        assert_eq!(parse("first=1"), None);
        assert_eq!(parse("order=99999999999999999999999"), None);
    }

    #[test]
    fn guests_without_order_come_last() {
        let ranked = parse("order=1").expect("valid");
        assert!(rank(Some(&ranked)) < rank(None));
        assert_eq!(rank(Some(&Startup::default())), u64::MAX);
        assert_eq!(parse(" order=1"), None);
    }
}
