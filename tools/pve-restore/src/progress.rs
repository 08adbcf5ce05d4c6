//! Progress on stderr while a changing step runs: announced as it starts, a heartbeat while
//! it lasts (a restore or a vzdump takes minutes and prints nothing until it ends), and the
//! answer a first Ctrl-C gets at once kept true for the step that runs.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pvedr::plan::{Plan, StepId};
use pvedr::transport::Transport;

/// How often a step that is still running says so.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// What a first Ctrl-C leads to once the running step is finished (the tail of the answer:
/// "…, then {then}").
pub struct Answer {
    /// What happens to the running step ("finishing the restore").
    pub now: String,
    /// What follows it after an interrupt.
    pub then: String,
}

impl Answer {
    /// The step is finished, then `then`.
    pub fn finishing(step: &str, then: impl Into<String>) -> Answer {
        Answer {
            now: format!("finishing the {step}"),
            then: then.into(),
        }
    }

    /// Over the API the wait for a step's task ends on the signal (pvedr's transport
    /// `api::task`): the task goes on, its end is unknown, so nothing follows.
    pub fn left(step: &str) -> Answer {
        Answer {
            now: format!(
                "leaving the wait for the {step} task, which goes on on the node (the message names it and how to stop it)"
            ),
            then: "stopping: nothing further is started or rolled back".into(),
        }
    }

    /// [`Answer::finishing`], or [`Answer::left`] over the API.
    pub fn over(t: &dyn Transport, step: &str, then: impl Into<String>) -> Answer {
        match t.has_shell() {
            true => Answer::finishing(step, then),
            false => Answer::left(step),
        }
    }

    fn during(&self) -> String {
        format!(
            "interrupt: {}, then {}; press Ctrl-C again to stop now",
            self.now, self.then
        )
    }

    fn between(&self) -> String {
        format!(
            "interrupt: no further step is started, then {}; press Ctrl-C again to stop now",
            self.then
        )
    }
}

/// A running step: its heartbeat runs, and the Ctrl-C answer names it, while this lives.
pub struct Running {
    done: Arc<(Mutex<bool>, Condvar)>,
    beat: Option<JoinHandle<()>>,
    between: String,
}

/// Announces step `i` of `plan` on stderr (`[3/7] restore 100 (started 12:03:04)`), starts
/// its heartbeat and makes `answer` what a first Ctrl-C is told.
pub fn start(plan: &Plan, i: StepId, answer: &Answer) -> Running {
    let s = &plan.steps[i];
    let label = format!(
        "[{}/{}] {} {}",
        i + 1,
        plan.steps.len(),
        s.step,
        pvedr::msg::visible(s.target.as_deref().unwrap_or(""))
    );
    let clock = chrono::Local::now().format("%H:%M:%S");
    pvedr::msg::say(format!("{label} (started {clock})"));
    pvedr::interrupt::set_answer(Some(answer.during()));
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let flag = Arc::clone(&done);
    // Its lines name the lane and guest as the step's own do.
    let scope = pvedr::msg::scope();
    let beat = std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || {
            pvedr::msg::set_scope(scope);
            heartbeat(&flag, &label)
        })
        .ok();
    Running {
        done,
        beat,
        between: answer.between(),
    }
}

fn lock(m: &Mutex<bool>) -> MutexGuard<'_, bool> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Every [`HEARTBEAT`] until the step is done: `[3/7] restore 100: still running, 4m10s`.
fn heartbeat(done: &(Mutex<bool>, Condvar), label: &str) {
    let t0 = Instant::now();
    let (m, cv) = done;
    let mut finished = lock(m);
    while !*finished {
        let (g, timeout) = match cv.wait_timeout(finished, HEARTBEAT) {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        finished = g;
        if !*finished && timeout.timed_out() {
            let took = pvedr::time::format_duration(t0.elapsed().as_secs());
            pvedr::msg::say(format!("{label}: still running, {took}"));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let (m, cv) = &*self.done;
        *lock(m) = true;
        cv.notify_all();
        if let Some(b) = self.beat.take() {
            let _ = b.join();
        }
        pvedr::interrupt::set_answer(Some(self.between.clone()));
    }
}

/// The run is over: a later signal gets the general answer.
pub fn done() {
    pvedr::interrupt::set_answer(None);
}

/// How a restore that was interrupted ended, for its last message.
pub struct Ended<'a> {
    /// `VM 100`, `CT 101`.
    pub guest: &'a str,
    /// The safety point was restored over the guest.
    pub rolled_back: bool,
    /// … and the guest, which ran before, started again.
    pub back_running: bool,
    /// The guest stopped for the safety point was started again (nothing was overwritten).
    pub restarted: bool,
    /// The drill's scratch guest was destroyed.
    pub scratch_destroyed: bool,
    /// The record has a way back (something is left to undo).
    pub way_back: bool,
}

/// The last word of an interrupted restore: what was finished and what ran after it.
pub fn interrupted(e: &Ended) -> String {
    let mut m = vec![
        "interrupted: the running step was finished, no further step of the restore was started"
            .to_string(),
    ];
    if e.rolled_back {
        let running = if e.back_running { ", running" } else { "" };
        m.push(format!(
            "the safety point was restored: {} is back as it was{running}",
            e.guest
        ));
    }
    if e.restarted {
        m.push(format!(
            "{} was started again, nothing was overwritten",
            e.guest
        ));
    }
    if e.scratch_destroyed {
        m.push(format!("the scratch guest {} was destroyed", e.guest));
    }
    if !e.way_back {
        m.push("nothing is left to undo".into());
    }
    m.join("; ")
}

/// After an overwrite that stopped the guest and did not start it: how to start it, on its
/// node, quoted to paste.
pub fn start_hint(guest: &str, node: &str, start: &[String]) -> String {
    format!(
        "{guest} was stopped for the restore and is still stopped; to start it, on node {}: {}",
        pvedr::msg::visible(node),
        pvedr::shell::join(start)
    )
}
