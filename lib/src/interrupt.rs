//! Ctrl-C and SIGTERM.
//!
//! Every tool starts with [`default_exit`]: a signal ends the run at once with exit 130 and
//! a line saying so, after removing the temporary files of writes under way
//! (`fs::AtomicFile`), so no half-written file and no stray temporary file is
//! left (a read-only listing or check has nothing else to finish). Before a change a tool
//! calls [`install`]: from then on the step that runs is finished (a half-done remote
//! command is worse than a finished one), the run stops at the next safe point and exits
//! 130; a second signal ends it at once. The first is answered at once with what the
//! running step leads to ([`set_answer`]), one line per thread scope that has a step.
//! Before any immediate exit the process groups of the children that must not outlive the
//! tool ([`track_group`]: Terraform) are killed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// A signal arrived (set by [`default_exit`]'s handler, whatever the mode).
static SEEN: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// [`install`] was called: the tool stops at its own safe points.
static GRACEFUL: AtomicBool = AtomicBool::new(false);
/// Temporary files being written, removed before an immediate exit.
static TEMP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Process groups of running children, killed before an immediate exit.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// The watcher thread runs (started once, by [`default_exit`] or [`install`]).
static WATCHING: OnceLock<()> = OnceLock::new();
/// What the first signal after [`install`] is answered with at once, by the scope of the
/// thread that set it (see [`set_answer`]).
static ANSWERS: Mutex<BTreeMap<Option<String>, String>> = Mutex::new(BTreeMap::new());
/// The code of an immediate exit in the default mode.
static EXIT_CODE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(130);

const SIGNALS: [i32; 2] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// The temporary files being written; held, no exit can happen in between (the rename of a
/// finished file runs under it).
pub(crate) fn temp_files() -> MutexGuard<'static, Vec<PathBuf>> {
    match TEMP.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn groups() -> MutexGuard<'static, Vec<i32>> {
    match GROUPS.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A child's process group, known while this lives: an immediate exit kills it first.
pub struct GroupGuard(i32);

/// Registers the process group `pgid` (a child started with `process_group(0)`).
pub fn track_group(pgid: u32) -> GroupGuard {
    let pgid = i32::try_from(pgid).unwrap_or(0);
    if pgid > 0 {
        groups().push(pgid);
    }
    GroupGuard(pgid)
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        groups().retain(|g| *g != self.0);
    }
}

/// Ends the process now: the tracked children's groups killed, the temporary files of
/// writes under way removed.
fn exit_now(code: u8, message: &str) -> ! {
    for g in groups().iter() {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(*g),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let files = temp_files();
    for f in files.iter() {
        let _ = std::fs::remove_file(f);
    }
    crate::msg::say(message);
    std::process::exit(i32::from(code));
}

fn seen() -> &'static Arc<AtomicBool> {
    SEEN.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// The thread that acts on signals: in the default mode the first ends the run; after
/// [`install`] the first sets the flag and a second ends the run.
fn watch() {
    WATCHING.get_or_init(|| {
        for sig in SIGNALS {
            let _ = signal_hook::flag::register(sig, Arc::clone(seen()));
        }
        let _ = std::thread::Builder::new()
            .name("interrupt".into())
            .spawn(|| {
                let mut count = 0u32;
                loop {
                    std::thread::sleep(Duration::from_millis(20));
                    if !seen().swap(false, Ordering::SeqCst) {
                        continue;
                    }
                    count += 1;
                    if !GRACEFUL.load(Ordering::SeqCst) {
                        exit_now(
                            EXIT_CODE.load(Ordering::SeqCst),
                            "interrupted: stopped at once, no file left half-written; run the same command again to finish",
                        );
                    }
                    flag().store(true, Ordering::SeqCst);
                    if count == 1 {
                        say_answer();
                    }
                    if count >= 2 {
                        exit_now(
                            crate::error::code::INTERRUPTED,
                            "interrupted again: stopped at once",
                        );
                    }
                }
            });
    });
}

/// From now on SIGINT and SIGTERM end the run promptly with `exit_code` (130; UNKNOWN for
/// a Nagios plugin, whose contract has no other code), see the module.
pub fn default_exit(exit_code: u8) {
    EXIT_CODE.store(exit_code, Ordering::SeqCst);
    watch();
}

/// From now on SIGINT and SIGTERM set a flag instead of ending the run; a second one ends
/// it at once.
pub fn install() {
    let flag = flag();
    for sig in SIGNALS {
        let _ = signal_hook::flag::register(sig, Arc::clone(flag));
    }
    GRACEFUL.store(true, Ordering::SeqCst);
    watch();
}

/// What the first signal after [`install`] is answered with on stderr, at once: what the
/// tool will do before it ends (the step that runs decides), ending with how to stop now.
/// `None`: a general answer, true for every tool (some finish the running step, some undo
/// it: an upload is aborted, Terraform asked to stop). Each answer belongs to the calling
/// thread's scope ([`crate::msg::set_scope`]): threads working side by side (pve-restore's
/// lanes) each answer for their own step, on their own line.
pub fn set_answer(answer: Option<String>) {
    let scope = crate::msg::scope();
    let mut answers = answers();
    match answer {
        Some(a) => answers.insert(scope, a),
        None => answers.remove(&scope),
    };
}

fn answers() -> MutexGuard<'static, BTreeMap<Option<String>, String>> {
    match ANSWERS.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The first signal is answered at once: the run may go on for minutes (a restore) and a
/// silent terminal invites a second Ctrl-C that stops at once. One line per scope with an
/// answer, each named as that scope's other lines are.
fn say_answer() {
    let answers = answers().clone();
    if answers.is_empty() {
        crate::msg::say(
            "interrupt: stopping at the next safe point (what runs is finished or undone, the records are written); press Ctrl-C again to stop now",
        );
    }
    for (scope, answer) in answers {
        crate::msg::say_in(scope.as_deref(), answer);
    }
}

/// Whether an interrupt arrived.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Sleeps `d`, or less when an interrupt arrives: in short slices, so that Ctrl-C ends a
/// long delay (a backoff, a rate limit) at once.
pub fn sleep(d: Duration) {
    let end = std::time::Instant::now() + d;
    while !requested() {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
