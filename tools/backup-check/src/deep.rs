//! Running `--deep` over many archives: in parallel, with progress on stderr.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use pvedr::records::Backup;
use pvedr::transport::{RemoteCommand, Transport};
use pvedr::{pvesh, validate};

/// `sha256=<hex>` anywhere in the notes.
fn notes_sha256(b: &Backup) -> Option<String> {
    let n = b.notes.as_deref()?;
    let i = n.find("sha256=")?;
    let hex: String = n[i + 7..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (hex.len() == 64).then_some(hex)
}

/// `pvedr::integrity::check_file`, with a panic in the checker (a bug, or an overflow check on a
/// number the archive supplies) reported for this archive instead of ending the run.
fn check_guarded(path: &Path, format: &str, sha256: Option<&str>) -> Result<(), String> {
    std::panic::catch_unwind(|| pvedr::integrity::check_file(path, format, sha256)).unwrap_or_else(
        |p| {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(format!("the checker failed on it ({why})"))
        },
    )
}

/// Checks archives that have a local path. Returns volid → problem for the damaged ones.
pub fn check_local(backups: &[&Backup], jobs: usize) -> HashMap<String, String> {
    let work: Vec<(String, PathBuf, String, Option<String>)> = backups
        .iter()
        .filter_map(|b| {
            Some((
                b.volid.clone(),
                PathBuf::from(b.path.as_ref()?),
                b.format.clone(),
                notes_sha256(b),
            ))
        })
        .collect();
    let total = work.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let damaged = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(total.max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((volid, path, format, sha)) = work.get(i) else {
                        break;
                    };
                    let r = check_guarded(path, format, sha.as_deref());
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    match &r {
                        Ok(()) => pvedr::msg::say(format!("deep [{n}/{total}] ok {volid}")),
                        Err(e) => {
                            pvedr::msg::say(format!("deep [{n}/{total}] DAMAGED {volid}: {e}"))
                        }
                    }
                    if let Err(e) = r
                        && let Ok(mut d) = damaged.lock()
                    {
                        d.insert(volid.clone(), e);
                    }
                }
            });
        }
    });
    damaged.into_inner().unwrap_or_default()
}

/// Checks archives on the node with its own tools (zstd -t, gzip -t, lzop -t, vma verify).
/// PBS snapshots are left to PBS verification.
/// What `--deep` found on the node: damaged archives, archives it could not test, and how
/// many it looked at.
type Found = (HashMap<String, String>, HashMap<String, String>, usize);

pub fn check_remote(t: &dyn Transport, backups: &[&Backup]) -> pvedr::Result<Found> {
    let files: Vec<&Backup> = backups
        .iter()
        .copied()
        .filter(|b| !b.format.starts_with("pbs-"))
        .filter(|b| {
            b.node.as_deref().is_some_and(|n| validate::node(n).is_ok())
                && b.storage
                    .as_deref()
                    .is_some_and(|s| validate::storage_id(s).is_ok())
                && validate::volid(&b.volid).is_ok()
        })
        .collect();
    if !t.has_shell() {
        // Over the API no archive can be read: each file is UNKNOWN, said plainly; PBS
        // snapshots keep their verification state.
        let why = "not read: over the API no archive can be read (use --host over SSH, or --dir, for --deep)";
        let untested = files
            .iter()
            .map(|b| (b.volid.clone(), why.to_string()))
            .collect();
        return Ok((HashMap::new(), untested, 0));
    }
    let path_cmds: Vec<RemoteCommand> = files
        .iter()
        .map(|b| {
            pvesh::get(
                &pvesh::paths::content(
                    b.node.as_deref().unwrap_or(""),
                    b.storage.as_deref().unwrap_or(""),
                    &b.volid,
                ),
                &[],
            )
        })
        .collect();
    let outs = t.exec_batch(&path_cmds)?;
    let mut damaged = HashMap::new();
    let mut tests: Vec<(&Backup, RemoteCommand)> = Vec::new();
    for ((b, cmd), out) in files.iter().zip(&path_cmds).zip(outs) {
        match pvesh::parse_object(t.host(), cmd, out) {
            Ok(m) => match pvesh::str_of(&m, "path") {
                Some(p) => tests.push((b, archive_test(&p, &b.format))),
                None => {
                    damaged.insert(b.volid.clone(), "no path reported by Proxmox".into());
                }
            },
            Err(e) => {
                damaged.insert(b.volid.clone(), format!("cannot locate: {e}"));
            }
        }
    }
    let mut untested = HashMap::new();
    // A storage's path is readable on the node it was listed from (a node-local storage
    // of pve2 exists only there): each node's archives are tested on that node.
    let mut by_node: std::collections::BTreeMap<&str, Vec<(&Backup, RemoteCommand)>> =
        std::collections::BTreeMap::new();
    for (b, cmd) in tests {
        by_node
            .entry(b.node.as_deref().unwrap_or(""))
            .or_default()
            .push((b, cmd));
    }
    let cluster = if by_node.is_empty() {
        pvedr::cluster::Cluster::default()
    } else {
        pvedr::cluster::read(t)?
    };
    for (node, group) in by_node {
        let hop = match cluster.route(t, node) {
            Ok(h) => h,
            Err(e) => {
                for (b, _) in &group {
                    untested.insert(b.volid.clone(), e.to_string());
                }
                continue;
            }
        };
        let on: &dyn Transport = match &hop {
            Some(h) => h.as_ref(),
            None => t,
        };
        pvedr::msg::say(format!(
            "deep: testing {} archive(s) on {node}",
            group.len()
        ));
        let cmds: Vec<RemoteCommand> = group.iter().map(|(_, c)| c.clone()).collect();
        let outs = on.exec_batch(&cmds)?;
        for ((b, cmd), out) in group.iter().zip(outs) {
            judge(b, cmd, &out, &mut damaged, &mut untested);
        }
    }
    Ok((damaged, untested, files.len()))
}

/// One archive test's outcome: whole, damaged, or not testable on that node.
fn judge(
    b: &Backup,
    cmd: &RemoteCommand,
    out: &pvedr::transport::CommandOutput,
    damaged: &mut HashMap<String, String>,
    untested: &mut HashMap<String, String>,
) {
    // 126/127: the shell could not run the tool (not installed, not executable).
    if matches!(out.status, 126 | 127) {
        let tool = cmd
            .argv
            .first()
            .map(String::as_str)
            .unwrap_or("the test tool");
        untested.insert(
            b.volid.clone(),
            format!("{tool} is not available on the node"),
        );
    } else if !out.success() {
        let msg = out.stderr.trim();
        let why = if msg.is_empty() {
            format!("test failed with status {}", out.status)
        } else {
            msg.to_string()
        };
        damaged.insert(b.volid.clone(), why);
    }
}

/// `archive::test_command` as a read-only command with its own bound
/// (`archive::TEST_TIMEOUT`).
fn archive_test(path: &str, format: &str) -> RemoteCommand {
    RemoteCommand::read(pvedr::archive::test_command(path, format))
        .within(pvedr::archive::TEST_TIMEOUT)
}
