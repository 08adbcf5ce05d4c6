//! Property strings (`local-lvm:vm-100-disk-0,size=32G,backup=0`), split as pve-common
//! `src/PVE/JSONSchema.pm` `parse_property_string` splits them: parts at `,`, blank parts
//! skipped, `KEY=VALUE` (a non-empty value) or one bare part for the format's default key.
//! pvedr has no schema: the bare part is kept as [`Props::default`], and the alias a
//! format gives it (`volume=`, `file=`) is the caller's to know.

/// A property string's parts, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    /// The bare part (the default key's value), if any.
    pub default: Option<String>,
    pub pairs: Vec<(String, String)>,
}

impl Props {
    /// Never fails: a config Proxmox wrote is read as it is; what Proxmox would refuse
    /// (`k=`, a second bare part) is kept out of `pairs` and `default`.
    pub fn parse(s: &str) -> Props {
        let mut p = Props::default();
        for part in s.split(',').filter(|x| !x.trim().is_empty()) {
            match part.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                    p.pairs.push((k.to_string(), v.to_string()))
                }
                Some(_) => {}
                None if p.default.is_none() => p.default = Some(part.to_string()),
                None => {}
            }
        }
        p
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean option (`backup=0`, `link_down=1`), as `parse_boolean` reads it.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(boolean)
    }

    /// The default part, or the first of `aliases` that spells it out (`volume=`, `file=`).
    pub fn main(&self, aliases: &[&str]) -> Option<&str> {
        self.default
            .as_deref()
            .or_else(|| aliases.iter().find_map(|a| self.get(a)))
    }

    /// The string again, without the pairs whose key is `drop`.
    pub fn print_without(&self, drop: &str) -> String {
        let mut parts: Vec<String> = self.default.iter().cloned().collect();
        parts.extend(
            self.pairs
                .iter()
                .filter(|(k, _)| k != drop)
                .map(|(k, v)| format!("{k}={v}")),
        );
        parts.join(",")
    }
}

/// pve-common `JSONSchema.pm` `parse_boolean`: `1|on|yes|true`, `0|off|no|false`, any case.
pub fn boolean(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_as_proxmox_splits_them() {
        let p = Props::parse("local-lvm:vm-100-disk-0,size=32G,,backup=0");
        assert_eq!(p.default.as_deref(), Some("local-lvm:vm-100-disk-0"));
        assert_eq!(p.get("size"), Some("32G"));
        assert_eq!(p.flag("backup"), Some(false));
        let p = Props::parse("volume=nas:101/vm-101-disk-3.raw,mp=/d");
        assert_eq!(p.main(&["volume"]), Some("nas:101/vm-101-disk-3.raw"));
        // `k=` has no value: Proxmox refuses it ("missing key"); a second bare part too.
        let p = Props::parse("a,b,k=");
        assert_eq!((p.default.as_deref(), p.pairs.len()), (Some("a"), 0));
        let p = Props::parse("virtio=AA:BB,link_down=0,bridge=vmbr0");
        assert_eq!(p.print_without("link_down"), "virtio=AA:BB,bridge=vmbr0");
    }
}
