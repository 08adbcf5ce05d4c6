//! Terraform state versions (`tfstate-versions list` records): versioning, the current
//! state, one lineage.

use std::collections::{BTreeMap, BTreeSet};

use pvedr::records::{Check, TfstateVersion};
use serde_json::{Value, json};

use crate::status::{Status, check};

pub fn tfstate_checks(versions: &[TfstateVersion]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&TfstateVersion>> = BTreeMap::new();
    for v in versions {
        groups
            .entry((v.bucket.clone(), v.key.clone()))
            .or_default()
            .push(v);
    }
    for ((bucket, key), vs) in groups {
        let env = vs
            .iter()
            .find_map(|v| v.env.clone())
            .unwrap_or_else(|| bucket.clone());
        let component = format!("tfstate/{env}");
        if vs.iter().any(|v| v.version_id == "null") {
            out.push(check(
                &component,
                "versioning",
                Status::Warning,
                format!(
                    "bucket {bucket} has no versioning: an overwritten state cannot be recovered"
                ),
                None,
                None,
            ));
        } else {
            out.push(check(
                &component,
                "versioning",
                Status::Ok,
                format!("{} version(s) of {key}", vs.len()),
                Some(json!(vs.len())),
                None,
            ));
        }
        let latest = vs.iter().find(|v| v.is_latest);
        match latest {
            Some(l) if l.delete_marker => out.push(check(
                &component,
                "state",
                Status::Critical,
                format!(
                    "{key} is deleted (newest entry is a delete marker {})",
                    l.version_id
                ),
                None,
                None,
            )),
            Some(l) => {
                let parsed = l.serial.is_some() && l.lineage.is_some();
                let valid = l.extra.get("valid").and_then(Value::as_bool);
                let (status, msg) = match (parsed, valid) {
                    (_, Some(false)) => (
                        Status::Critical,
                        format!("current version {} is not a valid state file", l.version_id),
                    ),
                    (true, _) => (
                        Status::Ok,
                        format!(
                            "serial {} lineage {}",
                            l.serial.unwrap_or(0),
                            l.lineage.as_deref().unwrap_or("")
                        ),
                    ),
                    (false, _) => (
                        Status::Unknown,
                        "not inspected: use tfstate-versions list --inspect".into(),
                    ),
                };
                out.push(check(
                    &component,
                    "state",
                    status,
                    msg,
                    l.serial.map(|s| json!(s)),
                    None,
                ));
            }
            None => out.push(check(
                &component,
                "state",
                Status::Unknown,
                "no current version in the input".into(),
                None,
                None,
            )),
        }
        let lineages: BTreeSet<&str> = vs.iter().filter_map(|v| v.lineage.as_deref()).collect();
        if lineages.len() > 1 {
            out.push(check(
                &component,
                "lineage",
                Status::Warning,
                format!(
                    "{} lineages across versions: {}",
                    lineages.len(),
                    lineages.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                None,
                None,
            ));
        } else if lineages.len() == 1 {
            out.push(check(
                &component,
                "lineage",
                Status::Ok,
                "one lineage across versions".into(),
                None,
                None,
            ));
        }
    }
    out
}
