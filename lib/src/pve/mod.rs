//! One typed Proxmox client: what the tools read of a cluster, as types.
//!
//! Every read goes out as `pvesh get PATH … --output-format json` ([`crate::pvesh::get`]):
//! over SSH and on the node pvesh runs it, and the API transport sends it as the `GET` it
//! names, so one JSON parser serves all three. pvesh answers for the whole cluster: a path
//! under `/nodes/N/` is proxied to node N (the API methods' `proxyto => 'node'`, pve-manager
//! `PVE/CLI/pvesh.pm` `proxy_handler`). Nothing here parses the text a Proxmox CLI prints.

pub mod config;
pub mod maps;
pub mod node;
pub mod props;
pub mod resources;
pub mod startup;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::pvesh::{self, paths};
use crate::transport::{CommandOutput, RemoteCommand, Transport};

pub use config::GuestConfig;
pub use node::{Bridge, Mapping, NodeFacts, Provisioning, Storage};
pub use resources::{Resource, Volume};

/// A guest's kind, as its API path names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Qemu,
    Lxc,
}

impl Kind {
    pub fn of_lxc(lxc: bool) -> Kind {
        if lxc { Kind::Lxc } else { Kind::Qemu }
    }

    /// `qemu` or `lxc` (`/cluster/resources` `type`); anything else is no guest.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "qemu" => Some(Kind::Qemu),
            "lxc" => Some(Kind::Lxc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Qemu => "qemu",
            Kind::Lxc => "lxc",
        }
    }
}

/// A guest on its node: where its API paths are.
#[derive(Debug, Clone, Copy)]
pub struct At<'g> {
    pub node: &'g str,
    pub kind: Kind,
    pub vmid: u64,
}

impl At<'_> {
    fn path(&self, tail: &str) -> String {
        format!(
            "/nodes/{}/{}/{}/{tail}",
            self.node,
            self.kind.as_str(),
            self.vmid
        )
    }

    /// `pvesh get /nodes/N/{qemu,lxc}/V/config`: the config with pending changes applied,
    /// as `qm config` shows it (qemu-server `API2/Qemu.pm`, pve-container
    /// `API2/LXC/Config.pm` `vm_config`).
    pub fn config_cmd(&self) -> RemoteCommand {
        pvesh::get(&self.path("config"), &[])
    }

    /// `pvesh get …/status/current` (qemu-server `API2/Qemu.pm`, pve-container
    /// `API2/LXC/Status.pm` `vm_status`).
    pub fn status_cmd(&self) -> RemoteCommand {
        pvesh::get(&self.path("status/current"), &[])
    }

    /// `pvesh get …/snapshot`.
    pub fn snapshots_cmd(&self) -> RemoteCommand {
        pvesh::get(
            &paths::guest_snapshots(self.node, self.kind.as_str(), self.vmid),
            &[],
        )
    }
}

/// What the node answered: the value, or its reason for not giving it (a missing guest,
/// a refused privilege, an answer that is not what the path returns).
pub type Answer<T> = std::result::Result<T, String>;

/// A guest's state (`status/current`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestStatus {
    /// `running`, `stopped`, …
    pub status: String,
    pub lock: Option<String>,
}

impl GuestStatus {
    pub fn running(&self) -> bool {
        self.status == "running"
    }
}

/// One entry of a guest's snapshot list; `current` is the "You are here!" entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
    pub snaptime: Option<i64>,
    /// Whether it holds the VM's RAM: a rollback to it starts the VM.
    pub vmstate: bool,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub snapstate: Option<String>,
}

impl Snapshot {
    fn from_json(m: &Map<String, Value>) -> Option<Snapshot> {
        Some(Snapshot {
            name: pvesh::str_of(m, "name")?,
            snaptime: pvesh::int_of(m, "snaptime"),
            vmstate: pvesh::bool_of(m, "vmstate") == Some(true),
            parent: pvesh::str_of(m, "parent"),
            description: pvesh::str_of(m, "description"),
            snapstate: pvesh::str_of(m, "snapstate"),
        })
    }

    pub fn is_current(&self) -> bool {
        self.name == "current"
    }
}

/// A node's task, as its task list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub upid: Option<String>,
    pub task_type: Option<String>,
}

/// The typed reads, over any transport.
pub struct Client<'a> {
    t: &'a dyn Transport,
}

impl<'a> Client<'a> {
    pub fn new(t: &'a dyn Transport) -> Client<'a> {
        Client { t }
    }

    /// A read whose failure on the node is an answer, not an error.
    fn answer(&self, cmd: &RemoteCommand) -> Result<Answer<Value>> {
        let out = self.t.exec(cmd)?;
        Ok(decode(&out))
    }

    /// A read whose failure is an error ([`Error::Remote`], [`Error::Protocol`]).
    fn value(&self, cmd: &RemoteCommand) -> Result<Value> {
        let out = self.t.exec(cmd)?;
        let host = self.t.host();
        let stdout = crate::transport::check(host, cmd, out)?;
        serde_json::from_slice(&stdout).map_err(|e| Error::Protocol {
            host: host.into(),
            command: cmd.line(),
            message: format!("not JSON: {e}"),
        })
    }

    /// A list answer's objects.
    fn list(&self, cmd: &RemoteCommand) -> Result<Vec<Map<String, Value>>> {
        let out = self.t.exec(cmd)?;
        pvesh::parse_list(self.t.host(), cmd, out)
    }

    pub fn guest_config(&self, at: At) -> Result<Answer<GuestConfig>> {
        Ok(self.answer(&at.config_cmd())?.and_then(|v| match v {
            Value::Object(m) => Ok(GuestConfig::from_json(at.kind, &m)),
            _ => Err("the config is not a JSON object".into()),
        }))
    }

    /// The guest's lock (`lock` of its config), `None` when it has none; a refusal is an
    /// error ([`Error::Remote`]).
    pub fn lock(&self, at: At) -> Result<Option<String>> {
        let cmd = at.config_cmd();
        match self.value(&cmd)? {
            Value::Object(m) => Ok(GuestConfig::from_json(at.kind, &m).lock),
            _ => Err(not_object(self.t.host(), &cmd)),
        }
    }

    pub fn guest_status(&self, at: At) -> Result<Answer<GuestStatus>> {
        Ok(self.answer(&at.status_cmd())?.and_then(|v| {
            let m = v.as_object().ok_or("the status is not a JSON object")?;
            Ok(GuestStatus {
                status: pvesh::str_of(m, "status").ok_or("the status names no state")?,
                lock: pvesh::str_of(m, "lock"),
            })
        }))
    }

    /// A guest's snapshots, `current` among them.
    pub fn snapshots(&self, at: At) -> Result<Vec<Snapshot>> {
        let items = self.list(&at.snapshots_cmd())?;
        Ok(items.iter().filter_map(Snapshot::from_json).collect())
    }

    /// Several guests' snapshots in one batch (in parallel on the node or over the API);
    /// per guest, the list or why it could not be read.
    pub fn snapshots_of(&self, guests: &[At]) -> Result<Vec<Answer<Vec<Snapshot>>>> {
        let cmds: Vec<RemoteCommand> = guests.iter().map(At::snapshots_cmd).collect();
        let outs = self.t.exec_batch(&cmds)?;
        Ok(cmds
            .iter()
            .zip(outs)
            .map(|(cmd, out)| {
                let items =
                    pvesh::parse_list(self.t.host(), cmd, out).map_err(|e| e.to_string())?;
                Ok(items.iter().filter_map(Snapshot::from_json).collect())
            })
            .collect())
    }

    /// `/cluster/resources --type vm`: every guest of the cluster.
    pub fn vm_resources(&self) -> Result<Vec<Resource>> {
        Ok(Resource::all(&self.list(&resources::vm_resources_cmd())?))
    }

    /// `/nodes/N/storage/S/status`: one storage as the node sees it.
    pub fn storage_status(&self, node: &str, storage: &str) -> Result<Storage> {
        let cmd = pvesh::get(&paths::storage_status(node, storage), &[]);
        match self.value(&cmd)? {
            Value::Object(m) => Ok(Storage::from_status(storage.to_string(), &m)),
            _ => Err(not_object(self.t.host(), &cmd)),
        }
    }

    /// `/nodes/N/storage/S/content/VOLID`: one volume (its `path`, `size`, …).
    pub fn volume(&self, node: &str, storage: &str, volid: &str) -> Result<Volume> {
        let cmd = pvesh::get(&paths::content(node, storage, volid), &[]);
        match self.value(&cmd)? {
            Value::Object(m) => Ok(Volume::from_json(&m)),
            _ => Err(not_object(self.t.host(), &cmd)),
        }
    }

    /// `/cluster/ha/resources`: what HA manages, each with its requested `state`
    /// (pve-ha-manager `src/PVE/API2/HA/Resources.pm` `index`).
    pub fn ha_resources(&self) -> Result<Vec<Map<String, Value>>> {
        self.list(&pvesh::get("/cluster/ha/resources", &[]))
    }

    /// The tasks running on `node` of one type (`--source active --typefilter TYPE`,
    /// pve-manager `PVE/API2/Tasks.pm` `node_tasks`).
    pub fn active_tasks(&self, node: &str, task_type: &str) -> Result<Vec<Task>> {
        let items = self.list(&active_tasks_cmd(node, task_type))?;
        Ok(items
            .iter()
            .map(|m| Task {
                upid: pvesh::str_of(m, "upid"),
                task_type: pvesh::str_of(m, "type"),
            })
            .collect())
    }

    /// The zone a node reads archive names and calendars in (`/nodes/N/time`).
    pub fn node_zone(&self, node: &str) -> Result<crate::time::Zone> {
        pvesh::node_zone(self.t, node)
    }
}

/// `pvesh get /nodes/N/tasks --source active --typefilter TYPE`, also what a plan shows.
pub fn active_tasks_cmd(node: &str, task_type: &str) -> RemoteCommand {
    pvesh::get(
        &paths::tasks(node),
        &["--source", "active", "--typefilter", task_type],
    )
}

fn not_object(host: &str, cmd: &RemoteCommand) -> Error {
    Error::Protocol {
        host: host.into(),
        command: cmd.line(),
        message: "expected a JSON object".into(),
    }
}

/// A pvesh answer: its JSON, or the node's reason (the last line it printed on stderr).
fn decode(out: &CommandOutput) -> Answer<Value> {
    if !out.success() {
        let last = out
            .stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty());
        return Err(match last {
            Some(l) => crate::msg::visible(l),
            None => format!("exit status {}", out.status),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("the answer is not JSON: {e}"))
}
