//! The plan's reads, all before any change: the history, each archive's own config (its
//! `startup` and disks), the target nodes' storages, and the probes when no history
//! predicts a guest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use pvedr::error::{Error, Result};
use pvedr::pve::maps::{IdKind, IdMap};
use pvedr::pve::{GuestConfig, Kind, Provisioning};
use pvedr::records::{Backup, PredictedFrom};
use pvedr::transport::{RemoteCommand, Transport};

use super::{Plan, Planned, lanes, order, pack, predict};
use crate::history::{self, Line};
use crate::offsite::Offsite;
use crate::remap::{self, Maps};
use crate::restore::Ctx;

/// Bytes of a probe: a ranged GET of the S3 copy, and zeros written through the node's
/// connection into `sha256sum` (what the stream goes through; nothing is stored).
const PROBE_BYTES: u64 = 8 << 20;

/// The site's plan for `backups`, or a usage error when it does not fit.
pub fn build(
    ctx: &Ctx,
    backups: Vec<Backup>,
    default_node: &str,
    jobs: usize,
    history: Option<&Path>,
) -> Result<Plan> {
    let rates = rates(history, &skipped_steps(ctx))?;
    // The run's reads (`RunCache`): prefetched, shared with each guest's own plan.
    let present = ctx.cache.guests(ctx.t)?;
    let mut r = Reader {
        ctx,
        probes: Probes::default(),
        rooms: BTreeMap::new(),
        usable: HashSet::new(),
        nodes: HashSet::new(),
    };
    let now = pvedr::time::now();
    let (mut guests, mut needs) = (Vec::new(), Vec::new());
    for b in backups {
        let (g, need) = r.guest(b, default_node, &rates, &present, now)?;
        guests.push(g);
        needs.push(need);
    }
    let keys: Vec<order::Key> = guests
        .iter()
        .map(|g| order::Key {
            rank: g.rank,
            vmid: g.vmid,
        })
        .collect();
    let sorted = order::sorted(&keys);
    let needs: Vec<pack::Need> = (sorted.iter().enumerate())
        .filter_map(|(pos, &i)| {
            let rank = guests[i].rank;
            needs[i].clone().map(|n| pack::Need { pos, rank, ..n })
        })
        .collect();
    let packed = pack::pack(&needs, &r.rooms);
    for w in &packed.warnings {
        pvedr::msg::warn(w);
    }
    if !packed.misfits.is_empty() {
        return Err(Error::usage(format!(
            "the site does not fit on its storages (first fit in restore order); nothing was changed:\n  {}",
            packed.misfits.join("\n  ")
        )));
    }
    let guests: Vec<Planned> = sorted.iter().map(|&i| guests[i].clone()).collect();
    Ok(plan(guests, jobs, packed.waits))
}

/// Waves, lanes and the site's figures of `guests` in restore order; in lanes a wave is
/// cut before each guest of `waits` (`pack`'s module comment).
fn plan(mut guests: Vec<Planned>, jobs: usize, waits: Vec<(usize, String)>) -> Plan {
    // No more lanes (each a connection) than guests.
    let jobs = jobs.clamp(1, guests.len().max(1));
    let ranks: Vec<u64> = guests.iter().map(|g| g.rank).collect();
    let (cuts, waits): (Vec<usize>, Vec<String>) = match jobs {
        1 => Default::default(),
        _ => waits.into_iter().unzip(),
    };
    let waves = order::cut(order::waves(&ranks), &cuts);
    let secs: Vec<f64> = guests
        .iter()
        .map(|g| g.predicted.map_or(0.0, |p| p.0))
        .collect();
    let (lanes, rto) = lanes::schedule(&secs, &waves, jobs);
    for (g, l) in guests.iter_mut().zip(lanes) {
        g.lane = l;
    }
    let rpo_s = guests.iter().filter_map(|g| g.rpo_s).reduce(f64::max);
    Plan {
        guests,
        waves,
        jobs,
        predicted_rto_s: rto,
        rpo_s,
        waits,
    }
}

/// The steps of a past restore this run will not take: a drill's isolate and clean-up (not
/// a drill), the start and probes (none asked).
fn skipped_steps(ctx: &Ctx) -> Vec<&'static str> {
    let mut skip = Vec::new();
    if !ctx.cli.test {
        skip.extend(["isolate", "cleanup"]);
    }
    if ctx.o.probes.is_empty() {
        skip.push("probe");
    }
    if !ctx.o.start {
        skip.push("start");
    }
    skip
}

/// The restores a history file holds; none without one.
fn rates(path: Option<&Path>, skip: &[&str]) -> Result<predict::Rates> {
    let mut rates = predict::Rates::default();
    let Some(path) = path else {
        return Ok(rates);
    };
    let Some(file) = history::open(path)? else {
        return Ok(rates);
    };
    for line in history::lines(file) {
        let line = line.map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let Line::Whole(b) = line else { continue };
        // lib's typed record, as the drill's `--sample` reads the same file.
        if let Some(p) = serde_json::from_slice(&b)
            .ok()
            .and_then(history::restore_in)
            .and_then(|r| predict::past(&r, skip))
        {
            rates.add(p);
        }
    }
    Ok(rates)
}

/// Probed rates, measured once per site (S3) and once per node.
#[derive(Default)]
struct Probes {
    s3: Option<Option<f64>>,
    nodes: HashMap<String, Option<f64>>,
}

struct Reader<'a> {
    ctx: &'a Ctx<'a>,
    probes: Probes,
    rooms: BTreeMap<String, pack::Room>,
    /// `node/storage/content` of each storage usable on its node for that content.
    usable: HashSet<String>,
    nodes: HashSet<String>,
}

impl Reader<'_> {
    /// One record: its place in the plan and its disks' need (none for an overwrite, whose
    /// disks replace the guest's own, or an archive whose config cannot be read).
    fn guest(
        &mut self,
        b: Backup,
        default_node: &str,
        rates: &predict::Rates,
        present: &HashMap<u64, pvedr::pve::Resource>,
        now: i64,
    ) -> Result<(Planned, Option<pack::Need>)> {
        let lxc = b.subtype == "lxc";
        let offsite = crate::offsite::of(&b).and_then(|o| o.ok());
        let node = match (&self.ctx.o.node, &b.node, &offsite) {
            (Some(n), _, _) => n.clone(),
            (None, Some(n), None) => n.clone(),
            _ => default_node.to_string(),
        };
        let vmid = b.vmid.unwrap_or(0);
        let config = self.config(&b, offsite.as_ref(), &node, lxc);
        let startup = config.as_ref().and_then(|c| c.rest.get("startup"));
        let ord = order::order_of(startup.map(String::as_str));
        let need = match (&config, present.contains_key(&vmid)) {
            (Some(c), false) => self.need(c, lxc, &node, vmid)?,
            _ => None,
        };
        let predicted = match rates.predict(vmid, b.size, offsite.is_some()) {
            Some(p) => Some(p),
            None => self.probe(offsite.as_ref(), &node, b.size),
        };
        let g = Planned {
            vmid,
            order: ord,
            rank: ord.unwrap_or(u64::MAX),
            rpo_s: (b.ctime > 0).then(|| (now - b.ctime).max(0) as f64),
            predicted,
            lane: 0,
            b,
        };
        Ok((g, need))
    }

    /// The archive's own config; `None` (said) when it cannot be read: the guest is then
    /// restored after those with an order, its disks checked by its own restore only.
    fn config(
        &self,
        b: &Backup,
        offsite: Option<&Offsite>,
        node: &str,
        lxc: bool,
    ) -> Option<GuestConfig> {
        let got = match offsite {
            Some(o) if o.encrypted => Err("an encrypted copy's head is read at its restore".into()),
            Some(o) => o.config(&self.ctx.cli.s3, Kind::of_lxc(lxc)),
            None => self.node_config(b, node, lxc),
        };
        match got {
            Ok(c) => Some(c),
            Err(why) => {
                pvedr::msg::warn(format!(
                    "cannot read the config inside {} ({why}): planned after the guests with a startup order, its disks not counted in the site's space",
                    b.volid
                ));
                None
            }
        }
    }

    fn node_config(
        &self,
        b: &Backup,
        node: &str,
        lxc: bool,
    ) -> std::result::Result<GuestConfig, String> {
        let hop = self
            .ctx
            .cluster
            .route(self.ctx.t, node)
            .map_err(|e| e.to_string())?;
        let t: &dyn Transport = hop.as_deref().unwrap_or(self.ctx.t);
        self.ctx
            .cache
            .archive_config(t, node, &b.volid, lxc)
            .map_err(|e| e.to_string())?
    }

    /// Bytes per target storage, keyed `node/storage`; the node's storages read once.
    /// `None` when a disk goes where it cannot (a storage missing, disabled or without the
    /// content): that guest's own checks refuse it, naming the storage, and it takes no
    /// room from the others.
    fn need(
        &mut self,
        c: &GuestConfig,
        lxc: bool,
        node: &str,
        vmid: u64,
    ) -> Result<Option<pack::Need>> {
        self.read_rooms(node)?;
        let maps = match self.ctx.o.maps.any() {
            true => self.ctx.o.maps.clone(),
            false => Maps {
                storage: self
                    .ctx
                    .o
                    .storage
                    .as_deref()
                    .map(|s| IdMap::parse(IdKind::Storage, s))
                    .transpose()?,
                ..Maps::default()
            },
        };
        let mut n = pack::Need {
            vmid,
            // With maps a VM goes onto one storage first (`pack`'s module comment).
            staged: !lxc && self.ctx.o.maps.any(),
            ..Default::default()
        };
        let content = if lxc { "rootdir" } else { "images" };
        for d in remap::plan(c, lxc, &maps).disks {
            if !self.usable.contains(&format!("{node}/{}/{content}", d.to)) {
                return Ok(None);
            }
            *n.bytes.entry(format!("{node}/{}", d.to)).or_default() += d.bytes.unwrap_or(0);
        }
        Ok(Some(n))
    }

    fn read_rooms(&mut self, node: &str) -> Result<()> {
        if !self.nodes.insert(node.to_string()) {
            return Ok(());
        }
        let facts = self.ctx.cache.facts(node);
        for s in facts.storages(&pvedr::pve::Client::new(self.ctx.t))? {
            let room = pack::Room {
                avail: s.avail.unwrap_or(0),
                thin: s.provisioning() == Provisioning::Thin,
            };
            for content in ["images", "rootdir"] {
                if s.usable() && s.allows(content) {
                    self.usable
                        .insert(format!("{node}/{}/{content}", s.storage));
                }
            }
            self.rooms.insert(format!("{node}/{}", s.storage), room);
        }
        Ok(())
    }

    /// An offsite record without history: the S3 copy's and the node's rates.
    fn probe(
        &mut self,
        o: Option<&Offsite>,
        node: &str,
        size: Option<u64>,
    ) -> Option<(f64, PredictedFrom)> {
        let o = o?;
        let s3 = *self.probes.s3.get_or_insert_with(|| {
            o.probe_rate(&self.ctx.cli.s3, PROBE_BYTES)
                .map_err(|e| pvedr::msg::warn(format!("S3 probe: {e}")))
                .ok()
        });
        let ctx = self.ctx;
        let n = *self
            .probes
            .nodes
            .entry(node.to_string())
            .or_insert_with(|| node_rate(ctx, node));
        predict::from_probe(size.unwrap_or(o.size), s3, n)
    }
}

/// Bytes per second through the connection to `node`, into `sha256sum` there.
fn node_rate(ctx: &Ctx, node: &str) -> Option<f64> {
    let hop = ctx.cluster.route(ctx.t, node).ok()?;
    let t: &dyn Transport = hop.as_deref().unwrap_or(ctx.t);
    if !t.has_shell() {
        return None;
    }
    let t0 = Instant::now();
    let mut zeros = std::io::repeat(0).take(PROBE_BYTES);
    match t.exec_with_stdin(&RemoteCommand::read(["sha256sum"]), &mut zeros) {
        Ok(out) if out.success() => Some(PROBE_BYTES as f64 / t0.elapsed().as_secs_f64().max(1e-6)),
        Ok(out) => {
            pvedr::msg::warn(format!(
                "node probe on {node}: {}",
                crate::guest::status_line(&out)
            ));
            None
        }
        Err(e) => {
            pvedr::msg::warn(format!("node probe on {node}: {e}"));
            None
        }
    }
}
