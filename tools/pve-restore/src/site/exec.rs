//! Running the plan. A dry run, or one lane, goes in plan order on the run's own
//! connection. Else `--jobs` lanes, each a thread with its own connection (a Transport is
//! not `Send`: every lane opens its own), take guests wave after wave: a guest starts only
//! once every guest of a lower startup order has finished. Each record goes to the caller
//! as its guest ends; an interrupt lets every lane finish its guest and start no other, and
//! each lane with a step running answers the first Ctrl-C on its own line.
//! Every stderr line of a lane names it and its guest (`[lane 2 VM 300]`).
//! With `--stop-on-failure` a guest not restored lets the guests already running finish
//! and starts no other, in one lane as in several: in one lane the rest of its own wave
//! too (Proxmox's startall goes on: that stays the default).

use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pvedr::error::Result;
use pvedr::records::{Restore, RestoreStatus};

use super::{Plan, Planned};
use crate::cli::Cli;
use crate::each::{node_of, now_rfc3339, restore_among, stamped};
use crate::restore::Ctx;

/// How often a lane waiting for its wave looks at the interrupt flag.
const WAIT_TICK: Duration = Duration::from_millis(500);

/// How the plan ran.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    /// The site's wall clock, in seconds.
    pub wall_s: f64,
    /// Why the guests after a failed one were not started (`--stop-on-failure`), for the
    /// summary.
    pub stopped: Option<String>,
}

/// Runs `plan`, handing each record to `sink`.
pub fn run(
    ctx: &Ctx,
    plan: &Plan,
    default_node: &str,
    sink: &mut dyn FnMut(Restore) -> Result<()>,
) -> Result<Ran> {
    let t0 = Instant::now();
    let held = if ctx.cli.write.dry_run || plan.jobs <= 1 {
        in_order(ctx, plan, default_node, sink)?
    } else {
        in_lanes(ctx, plan, default_node, sink)?
    };
    let stopped = match held {
        Some((from, by)) => hold_back(ctx, &plan.guests[from..], by, default_node, sink)?,
        None => None,
    };
    Ok(Ran {
        wall_s: t0.elapsed().as_secs_f64(),
        stopped,
    })
}

/// Where the run stopped for `--stop-on-failure`: the first guest not started, and the
/// guest that failed.
type Held<'a> = Option<(usize, &'a Planned)>;

/// Whether `rec` holds back the guests not started yet: a real run's guest not restored
/// (an interrupt stops the run its own way).
fn holds(cli: &Cli, rec: &Restore) -> bool {
    cli.stop_on_failure
        && !cli.write.dry_run
        && rec.outcome() == Some(false)
        && rec.status != RestoreStatus::Interrupted
}

fn in_order<'p>(
    ctx: &Ctx,
    plan: &'p Plan,
    default_node: &str,
    sink: &mut dyn FnMut(Restore) -> Result<()>,
) -> Result<Held<'p>> {
    let dry = ctx.cli.write.dry_run;
    let mut failed: Option<&Planned> = None;
    for (i, g) in plan.guests.iter().enumerate() {
        // One lane runs its wave in series: the rest of it is held back too.
        if let Some(f) = failed {
            return Ok(Some((i, f)));
        }
        let mut rec = restore_among(ctx, g.b.clone(), default_node)?;
        g.stamp(&mut rec, if dry { g.lane } else { 1 });
        let stop = rec.status == RestoreStatus::Interrupted;
        if failed.is_none() && holds(ctx.cli, &rec) {
            failed = Some(g);
        }
        sink(rec)?;
        if stop {
            break;
        }
    }
    Ok(None)
}

/// The records of the guests `--stop-on-failure` did not start (refused, naming the guest
/// that failed); the summary's sentence.
fn hold_back(
    ctx: &Ctx,
    rest: &[Planned],
    by: &Planned,
    default_node: &str,
    sink: &mut dyn FnMut(Restore) -> Result<()>,
) -> Result<Option<String>> {
    if rest.is_empty() {
        return Ok(None);
    }
    let order = by
        .order
        .map_or("no startup order".into(), |o| format!("order {o}"));
    let why = format!("guest {} ({order}) was not restored", by.vmid);
    for g in rest {
        let rec = Restore {
            vmid: g.b.vmid,
            volid: Some(g.b.volid.clone()),
            node: Some(node_of(ctx, &g.b, default_node)),
            ..Default::default()
        };
        let msg = format!(
            "not started: {why}, and --stop-on-failure starts no guest after it; nothing was changed"
        );
        let started = now_rfc3339();
        let rec = crate::restore::refused(rec, Default::default(), msg, Instant::now());
        let mut rec = stamped(rec, started, ctx.cli, g.b.size);
        g.stamp(&mut rec, g.lane);
        rec.lane = None;
        sink(rec)?;
    }
    Ok(Some(format!(
        "{why}: --stop-on-failure did not start the {} guest(s) after it",
        rest.len()
    )))
}

/// Where the lanes are in the plan.
struct Queue {
    wave: usize,
    next: usize,
    running: usize,
    stop: bool,
    /// The first guest not restored, under `--stop-on-failure`: no other guest starts.
    failed: Option<usize>,
}

struct Shared<'a> {
    plan: &'a Plan,
    q: Mutex<Queue>,
    cv: Condvar,
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A lane that panicked holds no guest worth waiting for: go on with the state.
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next guest for a lane, once its wave may start; `None`: nothing more to run.
    fn take(&self) -> Option<usize> {
        let mut q = self.lock();
        loop {
            if q.stop || q.failed.is_some() || pvedr::interrupt::requested() {
                return None;
            }
            let w = self.plan.waves.get(q.wave)?;
            if q.next < w.end {
                q.next += 1;
                q.running += 1;
                return Some(q.next - 1);
            }
            if q.running > 0 {
                q = self
                    .cv
                    .wait_timeout(q, WAIT_TICK)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            q.wave += 1;
            q.next = self.plan.waves.get(q.wave)?.start;
        }
    }

    fn done(&self, halt: bool, failed: Option<usize>) {
        let mut q = self.lock();
        q.running -= 1;
        q.stop |= halt;
        q.failed = q.failed.or(failed);
        self.cv.notify_all();
    }

    fn halt(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }
}

fn in_lanes<'p>(
    ctx: &Ctx,
    plan: &'p Plan,
    default_node: &str,
    sink: &mut dyn FnMut(Restore) -> Result<()>,
) -> Result<Held<'p>> {
    let shared = Shared {
        plan,
        q: Mutex::new(Queue {
            wave: 0,
            next: 0,
            running: 0,
            stop: false,
            failed: None,
        }),
        cv: Condvar::new(),
    };
    pvedr::interrupt::install();
    let (cli, o, cluster) = (ctx.cli, ctx.o, &ctx.cluster);
    let (tx, rx) = mpsc::channel::<Result<Restore>>();
    std::thread::scope(|s| {
        for lane in 1..=plan.jobs as u32 {
            let (tx, shared) = (tx.clone(), &shared);
            s.spawn(move || {
                let conn = match cli.connect.connect() {
                    Ok(c) => c,
                    Err(e) => {
                        shared.halt();
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                // A lane's own reads: the cache is not shared between threads.
                let cache = crate::cache::RunCache::default();
                let lctx = Ctx {
                    cli,
                    o,
                    t: conn.transport.as_ref(),
                    port: conn.port,
                    cluster: cluster.clone(),
                    scratch_taken: Default::default(),
                    cache: &cache,
                };
                while let Some(i) = shared.take() {
                    let g = &shared.plan.guests[i];
                    pvedr::msg::set_scope(Some(g.scope(lane)));
                    let r = restore_among(&lctx, g.b.clone(), default_node).map(|mut rec| {
                        g.stamp(&mut rec, lane);
                        rec
                    });
                    // Its guest is done: a Ctrl-C from now on has nothing of it to finish.
                    pvedr::interrupt::set_answer(None);
                    let halt = r
                        .as_ref()
                        .map_or(true, |rec| rec.status == RestoreStatus::Interrupted);
                    let failed = r.as_ref().is_ok_and(|rec| holds(cli, rec)).then_some(i);
                    let _ = tx.send(r);
                    shared.done(halt, failed);
                }
            });
        }
        drop(tx);
        let mut first_err = None;
        for r in rx {
            let written = r.and_then(&mut *sink);
            if let Err(e) = written {
                shared.halt();
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })?;
    let q = shared.lock();
    Ok(match (q.failed, q.stop || pvedr::interrupt::requested()) {
        (Some(f), false) => Some((q.next, &plan.guests[f])),
        _ => None,
    })
}
