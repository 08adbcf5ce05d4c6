//! A simulated cluster in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::sim_dir;

/// A fixed "now" for deterministic scenarios: 2024-01-15 06:26:40 UTC.
pub const DEFAULT_NOW: i64 = 1_705_300_000;

/// pve-restore's arguments that roll the demo's VM 100 back to its snapshot `before-upgrade`
/// over the running guest (`--force --yes`).
pub const DEMO_ROLLBACK: [&str; 6] = [
    "--vmid",
    "100",
    "--snapshot",
    "before-upgrade",
    "--force",
    "--yes",
];

pub struct SimNode {
    dir: tempfile::TempDir,
    tz: String,
    node: String,
}

/// What `add_backup` creates.
#[derive(Debug, Clone)]
pub struct Backup {
    pub storage: String,
    pub guest_type: String,
    pub vmid: u64,
    pub epoch: i64,
    pub compress: String,
    pub name: Option<String>,
    pub notes: Option<String>,
    pub protected: bool,
    pub log: String,
    /// The guest config the archive holds (the demo's when `None`).
    pub config: Option<String>,
}

impl Backup {
    pub fn new(storage: &str, guest_type: &str, vmid: u64, epoch: i64) -> Self {
        Backup {
            storage: storage.into(),
            guest_type: guest_type.into(),
            vmid,
            epoch,
            compress: "zstd".into(),
            name: None,
            notes: None,
            protected: false,
            log: "ok".into(),
            config: None,
        }
    }

    /// This backup, holding `config` as its guest config.
    pub fn holding(mut self, config: &str) -> Self {
        self.config = Some(config.into());
        self
    }
}

impl SimNode {
    /// The demo cluster (pve1, pve2 online, pve3 offline; storages local, nas, pbs; guests
    /// 100–103 and a template; two jobs; tasks), "now" = [`DEFAULT_NOW`], TZ = UTC.
    pub fn demo() -> SimNode {
        SimNode::with("demo", "UTC", DEFAULT_NOW)
    }

    /// One node, one empty `local` dir storage.
    pub fn empty() -> SimNode {
        SimNode::with("empty", "UTC", DEFAULT_NOW)
    }

    pub fn with(scenario: &str, tz: &str, now: i64) -> SimNode {
        let dir = tempfile::Builder::new().prefix("pvesim").tempdir().unwrap();
        let sim = SimNode {
            dir,
            tz: tz.into(),
            node: "pve1".into(),
        };
        sim.admin(&[
            "init",
            &sim.root_str(),
            "--scenario",
            scenario,
            "--now",
            &now.to_string(),
        ]);
        sim
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    fn root_str(&self) -> String {
        self.root().display().to_string()
    }

    pub fn tz(&self) -> &str {
        &self.tz
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Runs `tests/sim/pvesim-admin ARGS` with the simulation's TZ; returns its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        crate::stdout_of(
            Command::new("python3")
                .arg(sim_dir().join("pvesim-admin"))
                .args(args)
                .env("TZ", &self.tz),
            &format!("pvesim-admin {args:?}"),
        )
    }

    /// A PBS snapshot of `vmid` (`vm` or `ct`) that is still being written, a minute before
    /// [`crate::DEFAULT_NOW`]: no manifest yet, so PBS lists it with no size.
    pub fn add_unfinished_pbs(&self, kind: &str, vmid: u64) {
        let root = self.root().display().to_string();
        let epoch = (crate::DEFAULT_NOW - 60).to_string();
        let vmid = vmid.to_string();
        self.admin(&[
            "add-pbs",
            &root,
            "--type",
            kind,
            "--vmid",
            &vmid,
            "--epoch",
            &epoch,
            "--unfinished",
        ]);
    }

    /// Waits, 20 s at most, until a command of the log is `what` (e.g. a vzdump has
    /// started, so a signal lands inside it).
    pub fn wait_for(&self, what: &str, matches: impl Fn(&Value) -> bool) {
        let t0 = std::time::Instant::now();
        while !self.commands().iter().any(&matches) {
            assert!(t0.elapsed().as_secs() < 20, "{what} never started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The dump directory of a dir storage.
    pub fn dump_dir(&self, storage: &str) -> PathBuf {
        let cfg = self.read_json("storage.json");
        let path = cfg
            .as_array()
            .and_then(|a| a.iter().find(|s| s["storage"] == storage))
            .and_then(|s| s["path"].as_str())
            .unwrap_or_else(|| panic!("no dir storage {storage}"));
        PathBuf::from(path).join("dump")
    }

    /// The arguments that read the dump directory of `storage` offline, as this node's
    /// (`--dir PATH --storage STORAGE --node NODE`).
    pub fn dir_args(&self, storage: &str) -> Vec<String> {
        vec![
            "--dir".into(),
            self.dump_dir(storage).display().to_string(),
            "--storage".into(),
            storage.into(),
            "--node".into(),
            self.node.clone(),
        ]
    }

    /// Creates a real archive (and its log, notes, protection) and returns its path.
    pub fn add_backup(&self, b: &Backup) -> PathBuf {
        let mut args: Vec<String> = vec!["add-backup".into(), self.root_str()];
        for (flag, value) in [
            ("--storage", b.storage.clone()),
            ("--type", b.guest_type.clone()),
            ("--vmid", b.vmid.to_string()),
            ("--epoch", b.epoch.to_string()),
            ("--compress", b.compress.clone()),
            ("--log", b.log.clone()),
        ] {
            args.extend([flag.into(), value]);
        }
        if let Some(n) = &b.name {
            args.extend(["--name".into(), n.clone()]);
        }
        if let Some(n) = &b.notes {
            args.extend(["--notes".into(), n.clone()]);
        }
        if b.protected {
            args.push("--protected".into());
        }
        if let Some(config) = &b.config {
            let file = self.root().join(format!("conf-{}-{}", b.vmid, b.epoch));
            std::fs::write(&file, config).unwrap();
            args.extend(["--config".into(), file.display().to_string()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        PathBuf::from(self.admin(&refs))
    }

    pub fn read_json(&self, rel: &str) -> Value {
        let text = std::fs::read_to_string(self.root().join(rel)).unwrap_or_else(|_| "null".into());
        serde_json::from_str(&text).unwrap()
    }

    pub fn write_json(&self, rel: &str, v: &Value) {
        let p = self.root().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    }

    /// Reads the JSON file `rel`, lets `f` change it and writes it back.
    pub fn edit_json(&self, rel: &str, f: impl FnOnce(&mut Value)) {
        let mut v = self.read_json(rel);
        f(&mut v);
        self.write_json(rel, &v);
    }

    /// Changes guest `vmid`'s state (`guests/VMID.json`: config, status, snapshots…).
    pub fn edit_guest(&self, vmid: u64, f: impl FnOnce(&mut Value)) {
        self.edit_json(&format!("guests/{vmid}.json"), f);
    }

    /// Changes the storage `name`'s entry in `storage.json` (storage.cfg: type, content,
    /// nodes, shared…).
    pub fn edit_storage(&self, name: &str, f: impl FnOnce(&mut Value)) {
        self.edit_json("storage.json", |storages| {
            let entry = storages
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|s| s["storage"] == name))
                .unwrap_or_else(|| panic!("no storage {name}"));
            f(entry);
        });
    }

    /// Replaces the node's faults (`faults.json`: `[{"match": …, "sleep"|"exit"|"action": …}]`).
    pub fn set_faults(&self, faults: Value) {
        self.write_json("faults.json", &faults);
    }

    /// Makes commands whose joined argv contains `needle` fail with `stderr` and `exit`.
    pub fn fail_when(&self, needle: &str, stderr: &str, exit: i32) {
        let mut faults = match self.read_json("faults.json") {
            Value::Array(a) => a,
            _ => Vec::new(),
        };
        faults.push(serde_json::json!({"match": needle, "stderr": stderr, "exit": exit}));
        self.write_json("faults.json", &Value::Array(faults));
    }

    /// Every simulated command run so far (`{"cmd", "argv", "node", "time"}`).
    pub fn commands(&self) -> Vec<Value> {
        std::fs::read_to_string(self.root().join("commands.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// argv of every simulated command that changes something.
    pub fn mutations(&self) -> Vec<String> {
        self.commands()
            .iter()
            .filter_map(|c| {
                let cmd = c["cmd"].as_str()?;
                let argv: Vec<&str> = c["argv"]
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                let first = argv.first().copied().unwrap_or("");
                let mutating = match cmd {
                    "qmrestore" | "vzdump" => true,
                    "qm" | "pct" => !matches!(
                        first,
                        "status" | "config" | "guest" | "exec" | "listsnapshot"
                    ),
                    "pvesh" => first != "get",
                    _ => false,
                };
                mutating.then(|| format!("{cmd} {}", argv.join(" ")))
            })
            .collect()
    }

    pub fn clear_commands(&self) {
        let _ = std::fs::remove_file(self.root().join("commands.log"));
    }

    /// `PATH` with the simulator first.
    pub fn path_env(&self) -> String {
        let old = std::env::var("PATH").unwrap_or_default();
        format!("{}:{old}", sim_dir().join("bin").display())
    }

    /// Environment to run the simulator locally (the tools' Local transport).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), self.path_env()),
            ("PVESIM_ROOT".into(), self.root_str()),
            ("PVESIM_NODE".into(), self.node.clone()),
            ("TZ".into(), self.tz.clone()),
        ]
    }

    /// Applies [`SimNode::env`] to a command.
    pub fn apply_env(&self, cmd: &mut assert_cmd::Command) {
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
    }
}
