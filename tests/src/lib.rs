//! The pvedr test harness: real parts for integration tests.
//!
//! - [`SimNode`]: a simulated Proxmox VE cluster (the Python simulator in `tests/sim/`), laid
//!   out in a temporary directory with real vzdump archives.
//! - [`Sshd`]: a real OpenSSH server on a free loopback port, with generated host and client
//!   keys, whose `PATH` runs the simulator.
//! - [`ApiFront`]: the simulator's HTTPS front, Proxmox's REST API of the entry node on a
//!   loopback port with a self-signed certificate (`tests/sim/pvesim-api`).
//! - [`s3::Moto`], [`s3::Tf`]: a moto S3 server and a real Terraform directory on it.
//! - [`bin`], [`run_ok`], [`run_code`], [`records`]: the workspace's binaries and their records.

#![allow(clippy::unwrap_used)]

mod api;
pub mod help;
pub mod model;
pub mod s3;
mod sim;
mod sshd;

pub use api::ApiFront;
pub use sim::{Backup, DEFAULT_NOW, DEMO_ROLLBACK, SimNode};
pub use sshd::Sshd;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `tests/sim`.
pub fn sim_dir() -> PathBuf {
    workspace_root().join("tests").join("sim")
}

/// A command for one of the workspace's binaries (built by `cargo build --workspace --bins`;
/// `make test` does).
pub fn bin(name: &str) -> assert_cmd::Command {
    assert_cmd::Command::new(bin_path(name))
}

/// The path of one of the workspace's binaries, which must be built.
pub fn bin_path(name: &str) -> PathBuf {
    let path = assert_cmd::cargo::cargo_bin(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// The demo cluster and an sshd in front of it: the set-up most tests start from.
pub fn demo_over_ssh() -> (SimNode, Sshd) {
    let sim = SimNode::demo();
    let sshd = Sshd::start(&sim);
    (sim, sshd)
}

/// The demo cluster and its REST API front.
pub fn demo_over_api() -> (SimNode, ApiFront) {
    let sim = SimNode::demo();
    let front = ApiFront::start(&sim);
    (sim, front)
}

/// The demo cluster in the time zone `tz` and an sshd in front of it.
pub fn demo_over_ssh_in(tz: &str) -> (SimNode, Sshd) {
    let sim = SimNode::with("demo", tz, DEFAULT_NOW);
    let sshd = Sshd::start(&sim);
    (sim, sshd)
}

/// 2024-01-15 00:30 in Paris, 2024-01-14 23:30 UTC: a time whose day depends on the zone.
pub const PARIS_JUST_AFTER_MIDNIGHT: i64 = 1_705_275_000;

/// The demo cluster in Europe/Paris and an sshd in front of it, with a backup of VM 100 on
/// `local` taken at [`PARIS_JUST_AFTER_MIDNIGHT`].
pub fn demo_in_paris_after_midnight() -> (SimNode, Sshd) {
    let (sim, sshd) = demo_over_ssh_in("Europe/Paris");
    sim.add_backup(&Backup::new(
        "local",
        "qemu",
        100,
        PARIS_JUST_AFTER_MIDNIGHT,
    ));
    (sim, sshd)
}

/// Asserts that `rec[field]` is a string that contains `needle`; shows `rec` when not.
pub fn assert_says(rec: &serde_json::Value, field: &str, needle: &str) {
    let text = rec[field].as_str().unwrap_or("");
    assert!(
        text.contains(needle),
        "{field} does not say {needle:?}: {rec}"
    );
}

/// Runs a helper program (`what` names it in the failure), which must succeed; its stdout,
/// trimmed.
fn stdout_of(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what} runs: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Parses every stdout line as JSON (each must be one object).
pub fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Runs a command to its end: its records, its exit code (-1 when a signal ended it) and
/// its stderr.
pub fn outcome(
    mut cmd: impl std::borrow::BorrowMut<assert_cmd::Command>,
) -> (Vec<serde_json::Value>, i32, String) {
    let out = cmd.borrow_mut().output().expect("the binary runs");
    (
        json_lines(&out.stdout),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The workspace binary `name` as a plain command, its stdout and stderr piped: for a test
/// that spawns it to read part of its output, hang up or signal it.
pub fn piped(name: &str) -> std::process::Command {
    let mut c = std::process::Command::new(bin_path(name));
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// Spawns `cmd` with `input` on its stdin, then closes it (the end of the records); stdout
/// and stderr go where `cmd` sends them.
pub fn spawn_fed(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Child {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write");
    child
}

/// SIGINT to a running tool (as Ctrl-C sends it), then all it wrote once it ended.
pub fn interrupt(child: std::process::Child) -> std::process::Output {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    child.wait_with_output().expect("wait")
}

/// [`interrupt`], and the tool must end as interrupted (exit 130); all it wrote.
pub fn interrupted(child: std::process::Child) -> std::process::Output {
    let out = interrupt(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Once the reader of a child's stdout has hung up (`| head`): the rest of its stderr and
/// how it ended.
pub fn rest_of(mut child: std::process::Child) -> (String, std::process::ExitStatus) {
    use std::io::Read;
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    (err, child.wait().expect("wait"))
}

/// Runs a command that must succeed; shows its stderr when it does not.
pub fn run_ok(cmd: impl std::borrow::BorrowMut<assert_cmd::Command>) -> std::process::Output {
    run_code(cmd, 0)
}

/// Runs a command that must exit with `code`; shows its stderr when it does not.
pub fn run_code(
    mut cmd: impl std::borrow::BorrowMut<assert_cmd::Command>,
    code: i32,
) -> std::process::Output {
    let out = cmd.borrow_mut().output().expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The stdout records of one kind, as pvedr's own type (so a test reads fields by name).
pub fn records(out: &[u8], kind: &str) -> Vec<pvedr::Record> {
    json_lines(out)
        .into_iter()
        .filter(|v| v["kind"] == kind)
        .map(|v| pvedr::Record::from_value(v).unwrap_or_else(|e| panic!("{kind}: {e}")))
        .collect()
}

/// The committed `man/<tool>.1` is what `<tool> --generate-man` prints, and it documents
/// every visible long flag of `cmd` and the EXAMPLES, RECORDS and EXIT STATUS sections; its
/// help is fit for people ([`help::assert_help_for_people`]).
pub fn assert_man_page(tool: &str, cmd: clap::Command) {
    // clap's own consistency checks of the definition, once per tool.
    cmd.clone().debug_assert();
    let out = bin(tool).arg("--generate-man").output().expect("run");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf8");
    let path = workspace_root().join("man").join(format!("{tool}.1"));
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == committed,
        "{} is out of date: run `make man`",
        path.display()
    );
    let subs: Vec<clap::Arg> = cmd
        .get_subcommands()
        .flat_map(|s| s.get_arguments().cloned().collect::<Vec<_>>())
        .collect();
    for arg in cmd
        .get_arguments()
        .chain(subs.iter())
        .filter(|a| !a.is_hide_set())
    {
        if let Some(long) = arg.get_long() {
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(generated.contains(&roff), "--{long} is not in the man page");
        }
    }
    for section in [".SH \"RECORDS\"", ".SH \"EXIT STATUS\"", ".SH \"EXAMPLES\""] {
        assert!(generated.contains(section), "missing {section}");
    }
    help::assert_help_for_people(tool);
}

/// [`assert_man_page`], and the page names each of `words`.
pub fn assert_man_page_names(tool: &str, cmd: clap::Command, words: &[&str]) {
    assert_man_page(tool, cmd);
    let path = workspace_root().join("man").join(format!("{tool}.1"));
    let page = std::fs::read_to_string(&path).expect("man page");
    for word in words {
        assert!(
            page.contains(word),
            "{word} not documented in {}",
            path.display()
        );
    }
}

/// [`assert_man_page_names`] for the tool `C` defines (clap's name for it is the tool's):
/// the test each tool's `man.rs` runs.
pub fn assert_man_page_of<C: clap::CommandFactory>(words: &[&str]) {
    let cmd = C::command();
    let tool = cmd.get_name().to_string();
    assert_man_page_names(&tool, cmd, words);
}

/// The `listing` record that ends a whole pve-ls-backups listing of `records` records
/// (records.md), as a line: hand-made inputs end with it as real listings do.
pub fn listing_end(records: usize) -> String {
    format!("{{\"kind\":\"listing\",\"complete\":true,\"records\":{records}}}\n")
}

/// The records of a pve-ls-backups run without the `listing` record that must end them,
/// and that record.
pub fn listed(out: &[u8]) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut recs = json_lines(out);
    let end = recs.pop().unwrap_or_default();
    assert_eq!(
        end["kind"], "listing",
        "the records end with a listing record"
    );
    (recs, end)
}

/// True when stdout holds only a `listing` record saying the listing failed: what a run
/// that could not list gives (nothing else, no partial records).
pub fn only_failed_listing(out: &[u8]) -> bool {
    let (recs, end) = listed(out);
    recs.is_empty() && end["complete"] == false && end["error"].is_string()
}
