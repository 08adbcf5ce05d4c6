//! Running the plan. A dry run, or one lane, goes in plan order on the run's own
//! connection. Else `--jobs` lanes, each a thread with its own connection (a Transport is
//! not `Send`: every lane opens its own), take guests wave after wave: a guest starts only
//! once every guest of a lower startup order has finished. Each record goes to the caller
//! as its guest ends; an interrupt lets every lane finish its guest and start no other.

use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pvedr::error::Result;
use pvedr::records::{Restore, RestoreStatus};

use super::Plan;
use crate::each::restore_guest;
use crate::restore::Ctx;

/// How often a lane waiting for its wave looks at the interrupt flag.
const WAIT_TICK: Duration = Duration::from_millis(500);

/// Runs `plan`, handing each record to `sink`; the site's wall clock, in seconds.
pub fn run(
    ctx: &Ctx,
    plan: &Plan,
    default_node: &str,
    sink: &mut dyn FnMut(Restore) -> Result<()>,
) -> Result<f64> {
    let t0 = Instant::now();
    if ctx.cli.write.dry_run || plan.jobs <= 1 {
        in_order(ctx, plan, default_node, sink)?;
    } else {
        in_lanes(ctx, plan, default_node, sink)?;
    }
    Ok(t0.elapsed().as_secs_f64())
}

fn in_order(
    ctx: &Ctx,
    plan: &Plan,
    default_node: &str,
    sink: &mut dyn FnMut(Restore) -> Result<()>,
) -> Result<()> {
    let dry = ctx.cli.write.dry_run;
    for g in &plan.guests {
        let mut rec = restore_guest(ctx, g.b.clone(), default_node)?;
        g.stamp(&mut rec, if dry { g.lane } else { 1 });
        let stop = rec.status == RestoreStatus::Interrupted;
        sink(rec)?;
        if stop {
            break;
        }
    }
    Ok(())
}

/// Where the lanes are in the plan.
struct Queue {
    wave: usize,
    next: usize,
    running: usize,
    stop: bool,
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
            if q.stop || pvedr::interrupt::requested() {
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

    fn done(&self, halt: bool) {
        let mut q = self.lock();
        q.running -= 1;
        q.stop |= halt;
        self.cv.notify_all();
    }

    fn halt(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }
}

fn in_lanes(
    ctx: &Ctx,
    plan: &Plan,
    default_node: &str,
    sink: &mut dyn FnMut(Restore) -> Result<()>,
) -> Result<()> {
    let shared = Shared {
        plan,
        q: Mutex::new(Queue {
            wave: 0,
            next: 0,
            running: 0,
            stop: false,
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
                    let r = restore_guest(&lctx, g.b.clone(), default_node).map(|mut rec| {
                        g.stamp(&mut rec, lane);
                        rec
                    });
                    let halt = r
                        .as_ref()
                        .map_or(true, |rec| rec.status == RestoreStatus::Interrupted);
                    let _ = tx.send(r);
                    shared.done(halt);
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
    })
}
