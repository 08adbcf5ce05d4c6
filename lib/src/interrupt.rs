//! Ctrl-C and SIGTERM.
//!
//! Every tool starts with [`default_exit`]: a signal ends the run at once with exit 130 and
//! a line saying so, after removing the temporary files of writes under way
//! ([`crate::fs::AtomicFile`]), so no half-written file and no stray temporary file is
//! left (a read-only listing or check has nothing else to finish). Before a change a tool
//! calls [`install`]: from then on the step that runs is finished (a half-done remote
//! command is worse than a finished one), the run stops at the next safe point and exits
//! 130; a second signal kills at once.

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

const SIGNALS: [i32; 2] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// The temporary files being written; held, no exit can happen in between (the rename of a
/// finished file runs under it).
pub(crate) fn temp_files() -> MutexGuard<'static, Vec<PathBuf>> {
    match TEMP.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// From now on SIGINT and SIGTERM end the run promptly with `exit_code` (130; UNKNOWN for
/// a Nagios plugin, whose contract has no other code), see the module.
pub fn default_exit(exit_code: u8) {
    let seen = SEEN.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for sig in SIGNALS {
        let _ = signal_hook::flag::register(sig, Arc::clone(seen));
    }
    let seen = Arc::clone(seen);
    let _ = std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(20));
                if seen.load(Ordering::SeqCst) && !GRACEFUL.load(Ordering::SeqCst) {
                    let files = temp_files();
                    for f in files.iter() {
                        let _ = std::fs::remove_file(f);
                    }
                    crate::msg::say(
                        "interrupted: stopped at once, no file left half-written; run the same command again to finish",
                    );
                    std::process::exit(i32::from(exit_code));
                }
            }
        });
}

/// From now on SIGINT and SIGTERM set a flag instead of ending the run.
pub fn install() {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for sig in SIGNALS {
        // A second signal kills at once: the operator insists.
        let _ = signal_hook::flag::register_conditional_shutdown(
            sig,
            i32::from(crate::error::code::INTERRUPTED),
            Arc::clone(flag),
        );
        let _ = signal_hook::flag::register(sig, Arc::clone(flag));
    }
    GRACEFUL.store(true, Ordering::SeqCst);
    // A signal that came just before is not lost.
    if SEEN.get().is_some_and(|s| s.load(Ordering::SeqCst)) {
        flag.store(true, Ordering::SeqCst);
    }
}

/// Whether an interrupt arrived.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}
