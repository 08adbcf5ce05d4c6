//! pve-snapshot's integration tests: one binary, a module per area, all through the built
//! binaries against the simulator over a real sshd.

mod api;
mod cli;
mod create;
mod ls;
mod man;
mod prune;
mod rollback;

use pvedr_testkit::{SimNode, Sshd, bin, outcome};
use serde_json::{Value, json};

/// `pve-snapshot SUB <ssh flags>`.
pub fn snap_cmd(sshd: &Sshd, sub: &str) -> assert_cmd::Command {
    let mut c = bin("pve-snapshot");
    c.arg(sub).args(sshd.args());
    c
}

/// Runs `pve-snapshot SUB <ssh flags> ARGS`: (records, exit code, stderr).
pub fn snap(sshd: &Sshd, sub: &str, args: &[&str]) -> (Vec<Value>, i32, String) {
    outcome(snap_cmd(sshd, sub).args(args))
}

/// `--yes`, `--vmid V` for each of `vmids`, then `extra`: a change of those guests.
pub fn on<'a>(vmids: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--yes"];
    for v in vmids {
        args.extend(["--vmid", v]);
    }
    args.extend(extra);
    args
}

/// [`snap`], which must succeed: its records.
pub fn snap_ok(sshd: &Sshd, sub: &str, args: &[&str]) -> Vec<Value> {
    let (recs, code, err) = snap(sshd, sub, args);
    assert_eq!(code, 0, "{err}");
    recs
}

/// The `snapshot` records, by VMID.
pub fn of(recs: &[Value], vmid: u64) -> Vec<Value> {
    recs.iter()
        .filter(|r| r["kind"] == "snapshot" && r["vmid"] == vmid)
        .cloned()
        .collect()
}

pub fn guest(sim: &SimNode, vmid: u64) -> Value {
    sim.read_json(&format!("guests/{vmid}.json"))
}

/// The names of a guest's snapshots in the simulator, sorted.
pub fn names(sim: &SimNode, vmid: u64) -> Vec<String> {
    let mut v: Vec<String> = guest(sim, vmid)["snapshots"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Changes a guest's simulated state.
pub fn edit_guest(sim: &SimNode, vmid: u64, f: impl FnOnce(&mut Value)) {
    let mut g = guest(sim, vmid);
    f(&mut g);
    sim.write_json(&format!("guests/{vmid}.json"), &g);
}

/// A snapshot section as pve-snapshot's create leaves it in a guest's config.
pub fn section(snaptime: i64, parent: Option<&str>, ours: bool) -> Value {
    let mut s = json!({"snaptime": snaptime, "hostname": "db01"});
    if ours {
        s["description"] = json!("pve-snapshot: label daily, taken by pvedr pve-snapshot create");
    }
    if let Some(p) = parent {
        s["parent"] = json!(p);
    }
    s
}

/// Waits for the wall clock's second to turn, so the next run's node time differs.
pub fn next_second() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    let s = now();
    while now() == s {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
