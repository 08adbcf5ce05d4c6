//! The `status` values of records (`records.md`), as types: a decision matches a variant,
//! never a string.
//!
//! Each enum is written as exactly the string the contract documents. Read tolerantly: a
//! string of no known variant (a record from a newer pvedr) becomes `Other` and is written
//! back as it came, so an older reader neither fails nor changes it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident (default $default:ident) { $($(#[$vdoc:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A status this version does not know, kept as it was read.
            Other(String),
        }

        impl Default for $name {
            fn default() -> $name {
                $name::$default
            }
        }

        impl $name {
            /// Every documented variant with its string, in the contract's order.
            pub const ALL: &'static [($name, &'static str)] = &[$(($name::$variant, $text)),*];

            /// The string the records carry.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }

            /// The variant of a string; an unknown one is `Other`.
            pub fn parse(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name::parse(&String::deserialize(d)?))
            }
        }
    };
}

status_enum! {
    /// A `step` record's status (and a plan's step).
    StepStatus (default Planned) {
        /// In a dry run or not reached yet.
        Planned => "planned",
        /// A read that worked, or a state already as wanted.
        Ok => "ok",
        Changed => "changed",
        Skipped => "skipped",
        Failed => "failed",
    }
}

status_enum! {
    /// A `restore` record's status (pve-restore).
    RestoreStatus (default Planned) {
        Planned => "planned",
        Restored => "restored",
        Verified => "verified",
        Failed => "failed",
        /// Failed, and the guest was put back from its safety point.
        RolledBack => "rolled-back",
        /// Refused before anything changed.
        Refused => "refused",
        Interrupted => "interrupted",
    }
}

status_enum! {
    /// A `check` record's status (backup-check), Nagios' four states.
    CheckStatus (default Unknown) {
        Ok => "ok",
        Warning => "warning",
        Critical => "critical",
        Unknown => "unknown",
        /// Backups of a guest that no longer exists: reported and counted, never alarming
        /// (it raises no exit code and no shipped alert).
        Orphan => "orphan",
    }
}

status_enum! {
    /// A `snapshot` record's status (pve-snapshot create and prune).
    SnapshotStatus (default Planned) {
        Created => "created",
        Removed => "removed",
        Planned => "planned",
        Refused => "refused",
        Failed => "failed",
        Skipped => "skipped",
    }
}

/// How a Proxmox task ended, from its `exitstatus` (a task list's `status`), as Proxmox
/// reads it: pve-common `src/PVE/UPID.pm` `status_is_error` (`OK` or `WARNINGS: <n>` is no
/// error) and `normalize_status_type`. Any other text is the task's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskExit {
    Ok,
    Warnings,
    /// Still running (a task list's entry without an end).
    Running,
    Error,
}

impl TaskExit {
    pub fn parse(s: &str) -> TaskExit {
        let warnings = s
            .strip_prefix("WARNINGS: ")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match s {
            "OK" => TaskExit::Ok,
            "RUNNING" => TaskExit::Running,
            _ if warnings => TaskExit::Warnings,
            _ => TaskExit::Error,
        }
    }

    /// The task failed (Proxmox's `status_is_error`).
    pub fn is_error(self) -> bool {
        self == TaskExit::Error
    }
}

/// A `summary` record's `counts`: how many records of each status, keyed by its string.
pub fn counts<'a, I, S>(statuses: I) -> serde_json::Map<String, serde_json::Value>
where
    I: IntoIterator<Item = &'a S>,
    S: fmt::Display + 'a,
{
    let mut m = serde_json::Map::new();
    for s in statuses {
        let k = s.to_string();
        let n = m.get(&k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        m.insert(k, serde_json::Value::from(n + 1));
    }
    m
}

/// A `summary` record's `counts` with a key for each status of `each`, in that order, 0 for
/// one not found: the keys a dashboard or a Nagios line expects whatever the run found.
pub fn counts_each<S: PartialEq>(
    found: &[S],
    each: &[S],
    key: impl Fn(&S) -> String,
) -> serde_json::Map<String, serde_json::Value> {
    each.iter()
        .map(|s| {
            let n = found.iter().filter(|f| *f == s).count();
            (key(s), serde_json::Value::from(n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_has_every_status_in_order() {
        let m = counts_each(
            &["warning", "ok", "warning"],
            &["ok", "critical", "warning"],
            |s| s.to_string(),
        );
        assert_eq!(m.keys().collect::<Vec<_>>(), ["ok", "critical", "warning"]);
        let n: Vec<u64> = m.values().filter_map(serde_json::Value::as_u64).collect();
        assert_eq!(n, [1, 0, 2]);
    }

    /// The strings of `records.md` and `docs/records.md`, in their order.
    fn documented<T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(
        all: &[(T, &str)],
        want: &[&str],
    ) {
        let got: Vec<&str> = all.iter().map(|(_, s)| *s).collect();
        assert_eq!(got, want);
        for (v, s) in all {
            let json = serde_json::to_string(v).expect("json");
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(&serde_json::from_str::<T>(&json).expect("read back"), v);
        }
    }

    #[test]
    fn step_statuses_are_the_documented_strings() {
        documented(
            StepStatus::ALL,
            &["planned", "ok", "changed", "skipped", "failed"],
        );
    }

    #[test]
    fn restore_statuses_are_the_documented_strings() {
        documented(
            RestoreStatus::ALL,
            &[
                "planned",
                "restored",
                "verified",
                "failed",
                "rolled-back",
                "refused",
                "interrupted",
            ],
        );
    }

    #[test]
    fn check_statuses_are_the_documented_strings() {
        documented(
            CheckStatus::ALL,
            &["ok", "warning", "critical", "unknown", "orphan"],
        );
    }

    #[test]
    fn snapshot_statuses_are_the_documented_strings() {
        documented(
            SnapshotStatus::ALL,
            &[
                "created", "removed", "planned", "refused", "failed", "skipped",
            ],
        );
    }

    #[test]
    fn an_unknown_status_is_kept_as_it_came() {
        let s: StepStatus = serde_json::from_str("\"retried\"").expect("tolerant");
        assert_eq!(s, StepStatus::Other("retried".into()));
        assert_eq!(serde_json::to_string(&s).expect("json"), "\"retried\"");
        let c: CheckStatus = serde_json::from_str("\"degraded\"").expect("tolerant");
        assert_eq!(c.as_str(), "degraded");
    }

    #[test]
    fn a_task_ends_as_proxmox_reads_its_exit_status() {
        for (text, want) in [
            ("OK", TaskExit::Ok),
            ("WARNINGS: 2", TaskExit::Warnings),
            ("RUNNING", TaskExit::Running),
            ("WARNINGS", TaskExit::Error),
            ("WARNINGS: many", TaskExit::Error),
            ("job errors", TaskExit::Error),
            ("", TaskExit::Error),
        ] {
            assert_eq!(TaskExit::parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn counts_by_status() {
        let c = counts(&[StepStatus::Ok, StepStatus::Failed, StepStatus::Ok]);
        assert_eq!(
            serde_json::Value::Object(c),
            serde_json::json!({"ok": 2, "failed": 1})
        );
    }
}
