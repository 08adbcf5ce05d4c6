//! Commands for another node of the cluster, run from the node we are connected to over the
//! cluster's own SSH, as Proxmox does itself (pve-cluster `src/PVE/SSHInfo.pm`
//! `ssh_info_to_command`: `/usr/bin/ssh -e none -o BatchMode=yes -o HostKeyAlias=NODE
//! root@IP`, the node's key checked against `/etc/pve/nodes/NODE/ssh_known_hosts`). The
//! client is found on the node's PATH (`/usr/bin/ssh` there; the simulator's in tests), and
//! a connect timeout bounds the wait for a node that does not answer.
//! `qm`, `pct`, `qmrestore`, `vzdump` and archive tests act on the local node only, so
//! each must run on the node that owns the guest (or the local storage).

use std::io::{Read, Write};

use super::{CommandOutput, RemoteCommand, Streamed, Transport};
use crate::error::Result;
use crate::shell;

/// Another node, reached through `via`.
pub struct Hop<'a> {
    via: &'a dyn Transport,
    node: String,
    ip: String,
    label: String,
}

impl<'a> Hop<'a> {
    /// `node` and `ip` must be validated (they come from `/cluster/status`).
    pub fn new(via: &'a dyn Transport, node: &str, ip: &str) -> Hop<'a> {
        Hop {
            via,
            node: node.into(),
            ip: ip.into(),
            label: format!("{node} (via {})", via.host()),
        }
    }

    /// The command wrapped for the hop: the inner command travels as one quoted line.
    pub fn wrap(&self, cmd: &RemoteCommand) -> RemoteCommand {
        let known = format!("/etc/pve/nodes/{}/ssh_known_hosts", self.node);
        let argv = vec![
            "ssh".to_string(),
            "-e".into(),
            "none".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "ConnectTimeout=10".into(),
            "-o".into(),
            format!("HostKeyAlias={}", self.node),
            "-o".into(),
            format!("UserKnownHostsFile={known}"),
            "-o".into(),
            "GlobalKnownHostsFile=none".into(),
            format!("root@{}", self.ip),
            "--".into(),
            shell::join(&cmd.argv),
        ];
        RemoteCommand {
            argv,
            mutating: cmd.mutating,
            timeout: cmd.timeout,
        }
    }
}

impl Transport for Hop<'_> {
    fn host(&self) -> &str {
        &self.label
    }

    fn timeouts(&self) -> super::Timeouts {
        self.via.timeouts()
    }

    fn exec_quiet(&self, cmd: &RemoteCommand) -> Result<CommandOutput> {
        self.via.exec_quiet(&self.wrap(cmd))
    }

    fn exec_stream(&self, cmd: &RemoteCommand, sink: &mut dyn Write) -> Result<Streamed> {
        self.via.exec_stream(&self.wrap(cmd), sink)
    }

    fn exec_with_stdin(&self, cmd: &RemoteCommand, input: &mut dyn Read) -> Result<CommandOutput> {
        self.via.exec_with_stdin(&self.wrap(cmd), input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Local;

    #[test]
    fn the_inner_command_is_one_quoted_argument() {
        let local = Local::default();
        let h = Hop::new(&local, "pve2", "10.0.0.2");
        let w = h.wrap(&RemoteCommand::write(["qm", "stop", "102"]));
        assert_eq!(w.argv.last().map(String::as_str), Some("qm stop 102"));
        assert!(w.mutating);
        assert!(w.argv.contains(&"HostKeyAlias=pve2".to_string()));
        let w = h.wrap(&RemoteCommand::read(["sh", "-c", "a b; c"]));
        assert_eq!(w.argv.last().map(String::as_str), Some("sh -c 'a b; c'"));
    }
}
