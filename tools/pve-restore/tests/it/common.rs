//! What the areas share: the demo's archives, a run over SSH and its record, a step of it.

use std::process::{Child, Command, Stdio};

use pvedr::s3::{Bucket, Endpoint, Secret};
use pvedr_testkit::s3::Moto;
use pvedr_testkit::{Backup, SimNode, Sshd};
use serde_json::{Value, json};

pub const VM_BACKUP: &str = "local:backup/vzdump-qemu-100-2024_01_14-02_00_02.vma.zst";

/// pve-restore's arguments that overwrite the demo's guest 102 (on pve2) with its newest
/// backup, the safety point on `nas` (`--force --yes`).
pub const OVERWRITE_102: [&str; 6] = [
    "--vmid",
    "102",
    "--force",
    "--yes",
    "--safety-storage",
    "nas",
];

pub const CT_BACKUP: &str = "local:backup/vzdump-lxc-101-2024_01_14-02_01_07.tar.gz";

/// pve-restore over `sshd`: (the `restore` record or null, exit code, stderr). Whatever it
/// printed ends with the `summary` record.
pub fn restore(sshd: &Sshd, args: &[&str]) -> (Value, i32, String) {
    finished(sshd.bin("pve-restore").args(args))
}

/// [`restore`] with `input` (records) on stdin.
pub fn restore_fed(sshd: &Sshd, args: &[&str], input: impl Into<Vec<u8>>) -> (Value, i32, String) {
    finished(sshd.bin("pve-restore").args(args).write_stdin(input))
}

fn finished(cmd: &mut assert_cmd::Command) -> (Value, i32, String) {
    let (recs, code, err) = pvedr_testkit::outcome(cmd);
    let rec = recs.iter().find(|r| r["kind"] == "restore").cloned();
    if !recs.is_empty() {
        assert_eq!(
            recs.last().map(|r| r["kind"].clone()),
            Some(json!("summary"))
        );
    }
    (rec.unwrap_or(Value::Null), code, err)
}

/// The arguments of a command line as typed (none holds a space).
pub fn argv(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// pve-restore's arguments that restore `volid` to the new guest `target` (`--yes`), then
/// `more`.
pub fn new_guest<'a>(volid: &'a str, target: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    [
        &["--volid", volid, "--target-id", target, "--yes"][..],
        more,
    ]
    .concat()
}

/// pve-restore's arguments that overwrite the guest `volid` holds (`--force --yes`), then
/// `more`.
pub fn overwrite<'a>(volid: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    [&["--volid", volid, "--force", "--yes"][..], more].concat()
}

/// Overwrites VM 100 with its demo backup (`--force --yes`).
pub fn overwrite_vm(sshd: &Sshd) -> (Value, i32, String) {
    restore(sshd, &overwrite(VM_BACKUP, &[]))
}

/// [`overwrite_vm`], which must restore it (exit 0): the record and stderr.
pub fn overwritten(sshd: &Sshd) -> (Value, String) {
    let (rec, code, err) = overwrite_vm(sshd);
    assert_eq!(code, 0, "{err}\n{rec}");
    assert_eq!(rec["status"], "restored", "{rec}");
    (rec, err)
}

/// [`overwrite_vm`], which must be refused (exit 1): the record and stderr.
pub fn overwrite_refused(sshd: &Sshd) -> (Value, String) {
    let (rec, code, err) = overwrite_vm(sshd);
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    (rec, err)
}

/// [`overwrite_vm`] as a child to signal, its stdout and stderr piped.
pub fn spawn_overwrite_vm(sshd: &Sshd) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("pve-restore"))
        .args(sshd.args())
        .args(["--volid", VM_BACKUP, "--force", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// moto with the versioned bucket `offsite`, as backup-sync's offsite copies live in.
pub fn offsite_moto() -> Moto {
    let moto = Moto::start();
    moto.create_versioned_bucket("offsite");
    moto
}

/// Puts `body` at `key` in the bucket `offsite` of the S3 server at `url` (moto's
/// credentials).
pub fn put(url: &str, key: &str, body: Vec<u8>) {
    offsite(url).put(key, body).expect("put");
}

/// The bucket `offsite` of the S3 server at `url`, with moto's credentials.
pub fn offsite(url: &str) -> Bucket {
    let ep = Endpoint {
        url: Some(url.to_string()),
        region: "us-east-1".into(),
        timeouts: Default::default(),
    };
    let s = Secret {
        ak: "test".into(),
        sk: "testtest".into(),
        token: None,
    };
    Bucket::connect_with(&ep, "offsite", s).expect("bucket")
}

/// The demo cluster reinstalled: its storages are `local` (backups only) and those
/// `others` gives for the simulation's root directory.
pub fn reinstalled(others: impl FnOnce(&str) -> Vec<Value>) -> SimNode {
    let sim = SimNode::demo();
    let root = sim.root().display().to_string();
    let mut storages = vec![json!(
        {"storage": "local", "type": "dir", "path": format!("{root}/local"),
         "content": "backup,iso,vztmpl", "shared": 0}
    )];
    storages.extend(others(&root));
    sim.write_json("storage.json", &Value::Array(storages));
    sim
}

/// A backup of `vmid` on `local` taken at `epoch` and holding `config`: its file name.
pub fn backup_holding(sim: &SimNode, kind: &str, vmid: u64, epoch: i64, config: &str) -> String {
    let path = sim.add_backup(&Backup::new("local", kind, vmid, epoch).holding(config));
    let name = path.file_name().expect("file name");
    name.to_string_lossy().into_owned()
}

/// `rec` is a refusal whose error says `why`, and the node saw no change.
pub fn refused_untouched(rec: &Value, sim: &SimNode, why: &str) {
    assert_eq!(rec["status"], "refused", "{rec}");
    assert!(rec["error"].as_str().unwrap_or("").contains(why), "{rec}");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

/// Writes the zstd archive `name` on the demo's `local` and gives its volid: `make` is
/// Python that sets `raw`, the uncompressed archive, with the simulator's `archives`.
pub fn crafted_backup(sim: &SimNode, name: &str, make: &str) -> String {
    let path = sim.dump_dir("local").join(name);
    let code = format!(
        "import sys; sys.path.insert(0, {:?})\nfrom pvesim import archives\n{make}\
         open({:?}, 'wb').write(archives.compress(raw, 'zstd'))\n",
        pvedr_testkit::sim_dir().display().to_string(),
        path.display().to_string()
    );
    let made = Command::new("python3")
        .args(["-c", &code])
        .output()
        .expect("python3");
    assert!(made.status.success(), "{made:?}");
    format!("local:backup/{name}")
}

/// `err` (a tool's stderr) says `said` and not `unsaid`.
pub fn says_not(err: &str, said: &str, unsaid: &str) {
    assert!(err.contains(said) && !err.contains(unsaid), "{err}");
}

/// The field `key` of each object in the array `list`.
pub fn strs<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    let items = list.as_array().unwrap_or_else(|| panic!("no list: {list}"));
    items.iter().filter_map(|v| v[key].as_str()).collect()
}

/// Runs `check` on every case to its end, even after one failed (each failure's message is
/// printed as it happens), then fails naming the cases that failed.
pub fn each_case<C>(cases: &[C], name: impl Fn(&C) -> &str, check: impl Fn(&C)) {
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| {
            eprintln!("case: {}", name(c));
            // Each case sets up its own node: nothing a failed one leaves is read again.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(c))).is_err()
        })
        .map(&name)
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

/// The step `name` of a restore record.
pub fn step<'a>(rec: &'a Value, name: &str) -> &'a Value {
    rec["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == name))
        .unwrap_or_else(|| panic!("no step {name}: {rec}"))
}
