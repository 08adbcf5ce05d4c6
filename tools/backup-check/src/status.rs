//! A check's severity and the `check` record that carries it: what the checks share.

use pvedr::records::{Check, CheckStatus};
use serde_json::{Map, Value};

/// Status, ordered by how bad it is: the worst wins (CRITICAL > WARNING > UNKNOWN > OK >
/// ORPHAN: backups of a deleted guest never raise a run's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Orphan,
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Orphan => "orphan",
        }
    }

    /// The severity of a record's status; one this version does not know is UNKNOWN.
    pub fn of(s: &CheckStatus) -> Status {
        match s {
            CheckStatus::Ok => Status::Ok,
            CheckStatus::Warning => Status::Warning,
            CheckStatus::Critical => Status::Critical,
            CheckStatus::Orphan => Status::Orphan,
            CheckStatus::Unknown | CheckStatus::Other(_) => Status::Unknown,
        }
    }

    pub fn typed(self) -> CheckStatus {
        match self {
            Status::Ok => CheckStatus::Ok,
            Status::Unknown => CheckStatus::Unknown,
            Status::Warning => CheckStatus::Warning,
            Status::Critical => CheckStatus::Critical,
            Status::Orphan => CheckStatus::Orphan,
        }
    }

    /// A value against its limits, each exclusive: past `critical` CRITICAL, past `warning`
    /// WARNING, else OK.
    pub fn past(value: u64, warning: u64, critical: Option<u64>) -> Status {
        if critical.is_some_and(|c| value > c) {
            Status::Critical
        } else if value > warning {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// The Nagios plugin exit code.
    pub fn nagios_code(self) -> u8 {
        match self {
            Status::Ok | Status::Orphan => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }
}

/// A `check` record of this severity.
pub(crate) fn check(
    component: &str,
    name: &str,
    status: Status,
    message: String,
    value: Option<Value>,
    threshold: Option<Value>,
) -> Check {
    Check {
        component: component.into(),
        check: name.into(),
        status: status.typed(),
        message,
        value,
        threshold,
        extra: Map::new(),
    }
}
