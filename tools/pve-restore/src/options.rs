//! The flags that shape every guest's restore, checked before anything runs on a node.

use std::time::Duration;

use pvedr::error::Result;
use pvedr::validate;

use crate::cli::Cli;
use crate::probe::{self, Probe};

/// What the flags asked for, checked before anything runs on a node.
#[derive(Clone)]
pub struct Options {
    pub target: Option<u64>,
    pub node: Option<String>,
    pub storage: Option<String>,
    pub safety_storage: Option<String>,
    pub probes: Vec<Probe>,
    pub start: bool,
    pub probe_timeout: Duration,
    pub wait_lock: Duration,
    /// `--target-storage`, `--target-bridge`, `--drop-passthrough`.
    pub maps: crate::remap::Maps,
}

fn storage_flag(s: &Option<String>) -> Result<Option<String>> {
    s.as_deref()
        .map(|s| validate::storage_id(s).map(String::from))
        .transpose()
}

pub(crate) fn options(cli: &Cli) -> Result<Options> {
    let mut probes = Vec::new();
    for p in &cli.probe {
        probes.extend(probe::parse(p)?);
    }
    if cli.test && !probes.contains(&Probe::Agent) {
        probes.insert(0, Probe::Agent);
    }
    Ok(Options {
        target: cli.target_id.as_deref().map(validate::vmid).transpose()?,
        node: cli
            .node
            .as_deref()
            .map(|n| validate::node(n).map(String::from))
            .transpose()?,
        storage: storage_flag(&cli.storage)?,
        safety_storage: storage_flag(&cli.safety_storage)?,
        start: cli.start || !probes.is_empty(),
        probes,
        probe_timeout: cli.probe_timeout.max(Duration::from_secs(1)),
        wait_lock: cli.wait_lock.unwrap_or_default(),
        maps: maps(cli)?,
    })
}

fn maps(cli: &Cli) -> Result<crate::remap::Maps> {
    use pvedr::pve::maps::{IdKind, IdMap};
    let parse = |kind, m: &Option<String>| m.as_deref().map(|m| IdMap::parse(kind, m)).transpose();
    // --storage under the other map flags is the storage map's one target.
    let others = cli.target_bridge.is_some() || cli.drop_passthrough;
    let storage = cli
        .target_storage
        .clone()
        .or(cli.storage.clone().filter(|_| others));
    Ok(crate::remap::Maps {
        storage: parse(IdKind::Storage, &storage)?,
        bridge: parse(IdKind::Bridge, &cli.target_bridge)?,
        drop_passthrough: cli.drop_passthrough,
    })
}
