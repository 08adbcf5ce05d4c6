//! What one run reads of the cluster once and every guest's plan shares: each node's facts
//! (storages, bridges and vnets, resource mappings, QEMU capabilities: `pvedr::pve::NodeFacts`),
//! the cluster's guests, and the config inside each archive. Without it, planning 100
//! guests asked the node the same questions 100 times, each a pvesh start-up (~0.5 s on
//! Proxmox).
//!
//! Node facts and the guests hold while nothing changes: [`RunCache::changed`] drops them
//! before a restore's first change, so the next guest reads them again (a dry run keeps
//! them for the whole run). An archive's config does not change and is kept.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pvedr::error::Result;
use pvedr::pve::{Answer, GuestConfig, Kind, NodeFacts};
use pvedr::transport::{RemoteCommand, Transport};

use crate::guest;
use pvedr::pve::Resource;

/// Archives whose configs one batch reads (in parallel on the node, 8 at a time): a round
/// trip's output and its time bound stay small.
const CONFIG_BATCH: usize = 16;
/// A config larger than this is not kept (read again when asked): Proxmox's are a few KiB.
const MAX_KEPT_CONFIG: usize = 1 << 20;
/// All configs kept, at most.
const MAX_KEPT_CONFIGS: usize = 64 << 20;

/// The run's reads, shared by every guest's plan (see the module).
#[derive(Default)]
pub struct RunCache {
    nodes: RefCell<HashMap<String, Rc<NodeFacts>>>,
    guests: RefCell<Option<HashMap<u64, Resource>>>,
    /// By (node it was read on, volid): the text `pvesm extractconfig` printed.
    configs: RefCell<HashMap<(String, String), String>>,
    kept_bytes: std::cell::Cell<usize>,
}

impl RunCache {
    /// `node`'s facts: each part read on first use (through the node's own connection) and
    /// kept until [`RunCache::changed`].
    pub fn facts(&self, node: &str) -> Rc<NodeFacts> {
        let mut nodes = self.nodes.borrow_mut();
        Rc::clone(
            nodes
                .entry(node.to_string())
                .or_insert_with(|| Rc::new(NodeFacts::new(node))),
        )
    }

    /// Every guest of the cluster by VMID (`/cluster/resources`), read once until
    /// [`RunCache::changed`].
    pub fn guests(&self, t: &dyn Transport) -> Result<HashMap<u64, Resource>> {
        if let Some(g) = self.guests.borrow().as_ref() {
            return Ok(g.clone());
        }
        let g = guest::resources(t)?;
        *self.guests.borrow_mut() = Some(g.clone());
        Ok(g)
    }

    /// The config inside `volid` as `t` (on `node`) reads it: kept, else read now. A read
    /// that failed was not kept, so its error is the node's own, now.
    pub fn archive_config(
        &self,
        t: &dyn Transport,
        node: &str,
        volid: &str,
        lxc: bool,
    ) -> Result<Answer<GuestConfig>> {
        let parse = |text: &str| GuestConfig::from_text(Kind::of_lxc(lxc), text);
        let key = (node.to_string(), volid.to_string());
        let kept = self.configs.borrow().get(&key).map(|text| parse(text));
        if let Some(config) = kept {
            return Ok(Ok(config));
        }
        let text = guest::config_text(&t.exec(&guest::extractconfig_cmd(volid))?);
        if let Ok(text) = &text {
            self.keep(key, text);
        }
        Ok(text.map(|text| parse(&text)))
    }

    /// Reads the configs inside `volids` on `node` (through `t`) in parallel batches and
    /// keeps those the node gave; only a batch that could not run is an error.
    pub fn read_configs(&self, t: &dyn Transport, node: &str, volids: &[&str]) -> Result<()> {
        let todo: Vec<&str> = volids
            .iter()
            .copied()
            .filter(|v| {
                let key = (node.to_string(), v.to_string());
                !self.configs.borrow().contains_key(&key)
            })
            .collect();
        for chunk in todo.chunks(CONFIG_BATCH) {
            let cmds: Vec<RemoteCommand> =
                chunk.iter().map(|v| guest::extractconfig_cmd(v)).collect();
            for (v, out) in chunk.iter().zip(t.exec_batch(&cmds)?) {
                if let Ok(text) = guest::config_text(&out) {
                    self.keep((node.to_string(), v.to_string()), &text);
                }
            }
        }
        Ok(())
    }

    /// Something on the cluster changed (a restore starts): node facts and the guests are
    /// read again by the next plan.
    pub fn changed(&self) {
        self.nodes.borrow_mut().clear();
        *self.guests.borrow_mut() = None;
    }

    fn keep(&self, key: (String, String), text: &str) {
        let total = self.kept_bytes.get() + text.len();
        if text.len() > MAX_KEPT_CONFIG || total > MAX_KEPT_CONFIGS {
            return;
        }
        if self
            .configs
            .borrow_mut()
            .insert(key, text.to_string())
            .is_none()
        {
            self.kept_bytes.set(total);
        }
    }
}
