use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use pvedr::error::{Error, Result, code};
use pvedr::listing::{self, Extras, SelectArgs};
use pvedr::records::{Backup, Record, Restore, Summary};
use pvedr::transport::{RemoteCommand, Transport};
use pvedr::{archive, jsonl, pve, time, validate};
use serde_json::{Map, Value, json};

use crate::cli::Cli;
use crate::plan::Plan;
use crate::probe::{self, Probe, Target};

/// What the flags asked for, checked before anything runs on a node.
struct Options {
    target: Option<u64>,
    node: Option<String>,
    storage: Option<String>,
    safety_storage: Option<String>,
    probes: Vec<Probe>,
    start: bool,
    probe_timeout: Duration,
    wait_lock: Duration,
}

/// A guest as `/cluster/resources` shows it.
#[derive(Debug, Clone)]
struct Present {
    node: String,
    gtype: String,
    running: bool,
}

fn options(cli: &Cli) -> Result<Options> {
    let mut probes = Vec::new();
    for p in &cli.probe {
        probes.extend(probe::parse(p)?);
    }
    if cli.test && !probes.contains(&Probe::Agent) {
        probes.insert(0, Probe::Agent);
    }
    Ok(Options {
        target: cli.target_id.as_deref().map(validate::vmid).transpose()?,
        node: cli
            .node
            .as_deref()
            .map(|n| validate::node(n).map(String::from))
            .transpose()?,
        storage: cli
            .storage
            .as_deref()
            .map(|s| validate::storage_id(s).map(String::from))
            .transpose()?,
        safety_storage: cli
            .safety_storage
            .as_deref()
            .map(|s| validate::storage_id(s).map(String::from))
            .transpose()?,
        start: cli.start || !probes.is_empty(),
        probes,
        probe_timeout: Duration::from_secs(time::parse_duration(&cli.probe_timeout)?.max(1)),
        wait_lock: Duration::from_secs(
            cli.wait_lock
                .as_deref()
                .map(time::parse_duration)
                .transpose()?
                .unwrap_or(0),
        ),
    })
}

/// A backup named by its volume ID alone.
fn backup_of_volid(volid: &str, node: Option<String>) -> Result<Backup> {
    validate::volid(volid)?;
    let (storage, name) = volid.split_once(':').unwrap_or(("", volid));
    let (subtype, vmid, format) = if let Some(rest) = name
        .strip_prefix("backup/vm/")
        .or_else(|| name.strip_prefix("backup/ct/"))
    {
        let kind = if name.starts_with("backup/vm/") {
            "qemu"
        } else {
            "lxc"
        };
        let id = rest.split('/').next().and_then(|v| v.parse().ok());
        (
            kind.to_string(),
            id,
            format!("pbs-{}", if kind == "qemu" { "vm" } else { "ct" }),
        )
    } else {
        let file = name.rsplit('/').next().unwrap_or(name);
        let a = archive::parse(file)
            .ok_or_else(|| Error::usage(format!("'{volid}' is not a vzdump archive name")))?;
        (a.subtype, a.vmid, a.format)
    };
    Ok(Backup {
        node,
        storage: Some(storage.into()),
        volid: volid.into(),
        vmid,
        subtype,
        format,
        ..Default::default()
    })
}

fn local_node(t: &dyn Transport) -> Result<String> {
    let cmd = pve::get("/cluster/status", &[]);
    let items = pve::parse_list(t.host(), &cmd, t.exec(&cmd)?)?;
    items
        .iter()
        .find(|m| {
            pve::str_of(m, "type").as_deref() == Some("node")
                && pve::bool_of(m, "local") == Some(true)
        })
        .and_then(|m| pve::str_of(m, "name"))
        .ok_or_else(|| Error::Other("cannot tell which node this is; give --node".into()))
}

fn resources(t: &dyn Transport) -> Result<HashMap<u64, Present>> {
    let cmd = pve::get("/cluster/resources", &["--type", "vm"]);
    let items = pve::parse_list(t.host(), &cmd, t.exec(&cmd)?)?;
    Ok(items
        .iter()
        .filter_map(|m| {
            Some((
                pve::uint_of(m, "vmid")?,
                Present {
                    node: pve::str_of(m, "node").unwrap_or_default(),
                    gtype: pve::str_of(m, "type").unwrap_or_default(),
                    running: pve::str_of(m, "status").as_deref() == Some("running"),
                },
            ))
        })
        .collect())
}

/// Asks on the terminal; without one, the plan needs --yes.
fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let tty = std::fs::File::open("/dev/tty")
        .ok()
        .filter(|_| std::io::stderr().is_terminal());
    let Some(tty) = tty else {
        return Err(Error::NeedsConfirmation(format!(
            "{what} changes the node and there is no terminal to ask on: rerun with --yes (nothing was done)"
        )));
    };
    eprint!("pve-restore: {what}. Proceed? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::BufReader::new(tty)
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the answer", e))?;
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::Refused("not confirmed; nothing was done".into()))
    }
}

/// One restore per target VMID at a time (on this machine, for this host).
fn lock_target(host: &str, port: u16, vmid: u64) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("pvedr-restore-{host}-{port}-{vmid}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        Error::Refused(format!(
            "another pve-restore is working on VMID {vmid} ({})",
            path.display()
        ))
    })
}

pub fn run(cli: Cli) -> Result<u8> {
    let started = Instant::now();
    let opts = options(&cli)?;
    let vmid_arg = cli.vmid.as_deref().map(validate::vmid).transpose()?;
    if let Some(s) = &cli.snapshot {
        validate::snapshot_name(s)?;
    }
    if let Some(v) = &cli.volid {
        validate::volid(v)?;
    }
    let date = cli
        .date
        .as_deref()
        .map(|d| time::parse_date(d, time::Zone::Local, false))
        .transpose()?;
    if cli.snapshot.is_some() && cli.test {
        return Err(Error::usage("--snapshot and --test do not go together"));
    }

    // Which backups (stdin records are read before connecting: bad input costs nothing).
    let mut from_stdin: Vec<Backup> = Vec::new();
    if cli.volid.is_none() && vmid_arg.is_none() {
        for r in jsonl::read_all(&cli.files)? {
            if let Record::Backup(b) = r {
                from_stdin.push(b);
            }
        }
        if from_stdin.is_empty() {
            return Err(Error::usage(
                "no backup to restore: give --volid, --vmid, or backup records on stdin",
            ));
        }
        if from_stdin.len() > 1 && !cli.all {
            return Err(Error::usage(format!(
                "{} backups on input: restoring several guests needs --all (or pipe one, e.g. pve-ls-backups --vmid N --latest)",
                from_stdin.len()
            )));
        }
        if opts.target.is_some() && from_stdin.len() > 1 {
            return Err(Error::usage("--target-id with several backups"));
        }
    }

    let conn = cli.connect.connect()?;
    let t = conn.transport.as_ref();
    let port = cli.connect.port;
    let default_node = match opts.node.clone().or(conn.tfvars_node.clone()) {
        Some(n) => n,
        None => local_node(t)?,
    };

    let mut out = cli.output.output();
    let mut records: Vec<Restore> = Vec::new();

    if let (Some(vmid), Some(snap)) = (vmid_arg, cli.snapshot.as_deref()) {
        let r = rollback_snapshot(&cli, &opts, t, port, vmid, snap, &default_node)?;
        records.push(r);
    } else {
        let backups = if let Some(v) = &cli.volid {
            vec![backup_of_volid(v, Some(default_node.clone()))?]
        } else if let Some(vmid) = vmid_arg {
            let sel = SelectArgs {
                node: vec![default_node.clone()],
                ..Default::default()
            };
            let g = listing::gather_remote(t, &sel, Extras::default(), None)?;
            let mut mine: Vec<Backup> = g
                .backups
                .into_iter()
                .filter(|b| b.vmid == Some(vmid))
                .collect();
            if let Some(d) = date {
                mine.retain(|b| b.ctime >= d && b.ctime < d + 86400);
            }
            let newest = mine.into_iter().max_by_key(|b| b.ctime).ok_or_else(|| {
                Error::Refused(format!(
                    "no backup of guest {vmid}{} found on {default_node}",
                    cli.date
                        .as_deref()
                        .map(|d| format!(" from {d}"))
                        .unwrap_or_default()
                ))
            })?;
            vec![newest]
        } else {
            from_stdin
        };
        for b in backups {
            let rec = restore_one(&cli, &opts, t, port, b, &default_node)?;
            records.push(rec);
        }
    }

    let failed = records
        .iter()
        .filter(|r| !matches!(r.status.as_str(), "restored" | "verified" | "planned"))
        .count();
    for r in &records {
        out.write(&Record::Restore(r.clone()))?;
    }
    let mut counts = Map::new();
    for r in &records {
        let n = counts.get(&r.status).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(r.status.clone(), Value::from(n + 1));
    }
    let interrupted = records.iter().any(|r| r.status == "interrupted");
    let exit = match (failed, records.len()) {
        _ if interrupted => code::INTERRUPTED,
        (0, _) => code::SUCCESS,
        (f, n) if f < n => code::PARTIAL,
        _ => code::FAILURE,
    };
    out.write(&Record::Summary(Summary {
        tool: Some("pve-restore".into()),
        counts,
        exit_code: exit,
        duration_s: Some(secs(started)),
        extra: Map::new(),
    }))?;
    out.finish()?;
    Ok(exit)
}

fn secs(since: Instant) -> f64 {
    pvedr::records::seconds_since(since)
}

fn tool_of(lxc: bool) -> &'static str {
    if lxc { "pct" } else { "qm" }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The restore command: `qmrestore <archive> <vmid>` but `pct restore <vmid> <archive>`.
fn restore_cmd(
    lxc: bool,
    archive: &str,
    target: u64,
    force: bool,
    storage: Option<&str>,
    unique: bool,
) -> Vec<String> {
    let id = target.to_string();
    let mut a = if lxc {
        argv(&["pct", "restore", &id, archive])
    } else {
        argv(&["qmrestore", archive, &id])
    };
    if force {
        a.extend(argv(&["--force", "1"]));
    }
    if let Some(s) = storage {
        a.extend(argv(&["--storage", s]));
    }
    if unique {
        a.extend(argv(&["--unique", "1"]));
    }
    a
}

fn refused(mut rec: Restore, plan: Plan, msg: String, started: Instant) -> Restore {
    eprintln!("pve-restore: refused: {msg}");
    rec.status = "refused".into();
    rec.error = Some(msg);
    rec.steps = plan.steps;
    rec.duration_s = Some(secs(started));
    rec
}

/// Runs a step's command; `Err` is a lost connection (the node's state is then unknown).
fn exec(
    t: &dyn Transport,
    a: &[String],
    mutating: bool,
) -> Result<pvedr::transport::CommandOutput> {
    let cmd = if mutating {
        RemoteCommand::write(a.to_vec())
    } else {
        RemoteCommand::read(a.to_vec())
    };
    t.exec(&cmd)
}

fn status_line(out: &pvedr::transport::CommandOutput) -> String {
    let e = out.stderr.trim();
    if e.is_empty() {
        format!("exit status {}", out.status)
    } else {
        e.lines().last().unwrap_or(e).to_string()
    }
}

fn guest_config(
    t: &dyn Transport,
    lxc: bool,
    vmid: u64,
) -> Result<std::result::Result<String, String>> {
    let out = exec(
        t,
        &argv(&[tool_of(lxc), "config", &vmid.to_string()]),
        false,
    )?;
    Ok(if out.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(status_line(&out))
    })
}

fn lock_of(config: &str) -> Option<String> {
    config
        .lines()
        .find_map(|l| l.strip_prefix("lock:").map(|v| v.trim().to_string()))
}

/// Restores one backup. Errors are only for things that stop the whole run (usage,
/// confirmation); everything else ends up in the record.
fn restore_one(
    cli: &Cli,
    o: &Options,
    t: &dyn Transport,
    port: u16,
    b: Backup,
    default_node: &str,
) -> Result<Restore> {
    let started = Instant::now();
    let lxc = b.subtype == "lxc";
    let node = o
        .node
        .clone()
        .or(b.node.clone())
        .unwrap_or_else(|| default_node.to_string());
    validate::node(&node)?;
    validate::volid(&b.volid)?;
    let storage = b.storage.clone().unwrap_or_default();
    validate::storage_id(&storage)?;
    let mut rec = Restore {
        vmid: b.vmid,
        volid: Some(b.volid.clone()),
        node: Some(node.clone()),
        dry_run: cli.dry_run,
        status: "planned".into(),
        ..Default::default()
    };
    let mut plan = Plan::default();
    if b.subtype != "qemu" && b.subtype != "lxc" {
        return Ok(refused(
            rec,
            plan,
            format!("cannot restore a '{}' backup", b.subtype),
            started,
        ));
    }
    let present = resources(t)?;
    let target = if cli.test {
        match o.target {
            Some(v) => v,
            None => (9900..999_999_999)
                .find(|v| !present.contains_key(v))
                .unwrap_or(9900),
        }
    } else {
        match o.target.or(b.vmid) {
            Some(v) => v,
            None => {
                return Ok(refused(
                    rec,
                    plan,
                    "the backup has no VMID; give --target-id".into(),
                    started,
                ));
            }
        }
    };
    rec.target_vmid = Some(target);
    let existing = present.get(&target).cloned();
    let overwrite = existing.is_some();
    let node = existing.as_ref().map(|e| e.node.clone()).unwrap_or(node);
    rec.node = Some(node.clone());
    if let Some(e) = &existing {
        if cli.test {
            return Ok(refused(
                rec,
                plan,
                format!("scratch VMID {target} is in use"),
                started,
            ));
        }
        if Some(target) != b.vmid {
            return Ok(refused(
                rec,
                plan,
                format!(
                    "--target-id {target} is taken ({} on {}): a new VMID must be free cluster-wide",
                    e.gtype, e.node
                ),
                started,
            ));
        }
        if e.gtype != b.subtype {
            return Ok(refused(
                rec,
                plan,
                format!(
                    "guest {target} is a {} but the backup is a {}",
                    e.gtype, b.subtype
                ),
                started,
            ));
        }
        if !cli.force {
            return Ok(refused(
                rec,
                plan,
                format!(
                    "guest {target} exists on {}: overwriting it needs --force (a safety point is taken first)",
                    e.node
                ),
                started,
            ));
        }
    }
    let tool = tool_of(lxc);
    let id = target.to_string();
    let safety_storage = o.safety_storage.clone().unwrap_or_else(|| storage.clone());
    let pbs = b.format.starts_with("pbs-");

    // The plan.
    let content_path = format!("/nodes/{node}/storage/{storage}/content/{}", b.volid);
    let i_check = plan.add(
        "check-archive",
        &b.volid,
        "test the archive on the node before anything changes",
        Some(&pvedr::archive::test_command("<path>", &b.format)),
    );
    let (mut i_lock, mut i_stop, mut i_safety) = (None, None, None);
    if overwrite {
        i_lock = Some(plan.add(
            "check-lock",
            &id,
            "a locked guest (backup, snapshot, migration) must not be touched",
            Some(&argv(&[tool, "config", &id])),
        ));
        let i = plan.add(
            "stop",
            &id,
            "stop the guest, only if it runs",
            Some(&argv(&[tool, "stop", &id])),
        );
        plan.mark_mutating(i);
        i_stop = Some(i);
        let note = format!("pvedr safety point before restoring {}", b.volid);
        let i = plan.add(
            "safety-point",
            &id,
            "a vzdump of the current guest to come back to; keep-all=1 so no retention deletes old archives (maybe the one being restored)",
            Some(&argv(&["vzdump", &id, "--storage", &safety_storage, "--mode", "stop", "--compress", "zstd", "--notes-template", &note, "--prune-backups", "keep-all=1"])),
        );
        plan.mark_mutating(i);
        i_safety = Some(i);
    }
    let restore_argv = restore_cmd(
        lxc,
        &b.volid,
        target,
        overwrite,
        o.storage.as_deref(),
        cli.unique,
    );
    let why = if overwrite {
        "overwrite with the restore command's own --force (destroy --purge would silently drop the guest from backup jobs)"
    } else {
        "restore to a VMID that is free cluster-wide"
    };
    let i_restore = plan.add("restore", &id, why, Some(&restore_argv));
    plan.mark_mutating(i_restore);
    let i_isolate = cli.test.then(|| {
        let i = plan.add(
            "isolate",
            &id,
            "every network link down: the copy must not talk to production",
            Some(&argv(&[tool, "set", &id, "--netN", "<net>,link_down=1"])),
        );
        plan.mark_mutating(i);
        i
    });
    let i_start = o.start.then(|| {
        let i = plan.add(
            "start",
            &id,
            "start the restored guest and wait until it runs",
            Some(&argv(&[tool, "start", &id])),
        );
        plan.mark_mutating(i);
        i
    });
    let i_probes: Vec<usize> = o
        .probes
        .iter()
        .map(|p| plan.add("probe", &p.name(), "prove the restored guest works", None))
        .collect();
    let i_cleanup = cli.test.then(|| {
        let i = plan.add(
            "cleanup",
            &id,
            "destroy the scratch guest",
            Some(&argv(&[tool, "destroy", &id])),
        );
        plan.mark_mutating(i);
        i
    });
    let i_rollback = overwrite.then(|| {
        let i = plan.add(
            "rollback",
            &id,
            "only if the restore or the verification fails: restore the safety point",
            Some(&restore_cmd(
                lxc,
                "<safety point>",
                target,
                true,
                None,
                false,
            )),
        );
        plan.mark_mutating(i);
        i
    });

    eprintln!("pve-restore: plan for {} → {target} on {node}:", b.volid);
    for (n, s) in plan.steps.iter().enumerate() {
        eprintln!(
            "  {}. {:<13} {}  — {}",
            n + 1,
            s.step,
            s.extra.get("command").and_then(Value::as_str).unwrap_or(""),
            s.message.as_deref().unwrap_or("")
        );
    }

    // Read-only checks run in a dry run too.
    let t0 = Instant::now();
    if pbs {
        plan.finish(
            i_check,
            "skipped",
            "PBS verifies its snapshots (see the backup's verification state)",
            t0,
        );
    } else {
        let m = pve::parse_object(
            t.host(),
            &pve::get(&content_path, &[]),
            exec(t, &pve::get(&content_path, &[]).argv, false)?,
        )?;
        let Some(path) = pve::str_of(&m, "path") else {
            plan.finish(
                i_check,
                "failed",
                "Proxmox reports no path for the archive",
                t0,
            );
            return Ok(refused(
                rec,
                plan,
                "cannot locate the archive".into(),
                started,
            ));
        };
        let test = pvedr::archive::test_command(&path, &b.format);
        plan.set_command(i_check, &test);
        let out = exec(t, &test, false)?;
        if !out.success() {
            let msg = format!("the archive is damaged: {}", status_line(&out));
            plan.finish(i_check, "failed", msg.clone(), t0);
            plan.skip_rest("refused");
            return Ok(refused(
                rec,
                plan,
                format!("{msg}; nothing was changed"),
                started,
            ));
        }
        plan.finish(i_check, "ok", format!("{path} is whole"), t0);
    }
    let mut was_running = existing.as_ref().is_some_and(|e| e.running);
    if let Some(i) = i_lock {
        let t0 = Instant::now();
        let deadline = Instant::now() + o.wait_lock;
        loop {
            match guest_config(t, lxc, target)? {
                Err(e) => {
                    plan.finish(i, "failed", e.clone(), t0);
                    plan.skip_rest("refused");
                    return Ok(refused(
                        rec,
                        plan,
                        format!("cannot read guest {target}: {e}"),
                        started,
                    ));
                }
                Ok(conf) => match lock_of(&conf) {
                    None => {
                        plan.finish(i, "ok", "not locked", t0);
                        break;
                    }
                    Some(l) if Instant::now() >= deadline || cli.dry_run => {
                        let msg = format!(
                            "guest {target} is locked ({l}); wait for it or use --wait-lock"
                        );
                        plan.finish(i, "failed", msg.clone(), t0);
                        plan.skip_rest("refused");
                        return Ok(refused(rec, plan, msg, started));
                    }
                    Some(_) => std::thread::sleep(Duration::from_secs(2)),
                },
            }
        }
    }
    if cli.dry_run {
        rec.steps = plan.steps;
        rec.duration_s = Some(secs(started));
        return Ok(rec);
    }
    confirm(
        &format!(
            "restoring {} to {} {target} on {node}{}",
            b.volid,
            if lxc { "CT" } else { "VM" },
            if overwrite { " (overwrite)" } else { "" }
        ),
        cli.yes,
    )?;
    let _lock = lock_target(t.host(), port, target)?;
    pvedr::interrupt::install();

    // From here on the node changes: every failure is recorded with the way back.
    let mut safety: Option<String> = None;
    let mut failure: Option<String> = None;
    let mut lost = false;
    let mut stopped_by_us = false;
    macro_rules! step {
        ($i:expr, $argv:expr) => {{
            let t0 = Instant::now();
            match exec(t, &$argv, true) {
                Ok(out) if out.success() => Ok((out, t0)),
                Ok(out) => {
                    let m = status_line(&out);
                    plan.finish($i, "failed", m.clone(), t0);
                    Err(m)
                }
                Err(e) => {
                    lost = true;
                    let m = format!("connection lost: {e}; the node's state is unknown");
                    plan.finish($i, "failed", m.clone(), t0);
                    Err(m)
                }
            }
        }};
    }
    if failure.is_none() && pvedr::interrupt::requested() {
        failure = Some("interrupted".into());
    }
    if let (Some(i), None) = (i_stop, &failure) {
        if was_running {
            match step!(i, argv(&[tool, "stop", &id])) {
                Ok((_, t0)) => {
                    plan.finish(i, "changed", "stopped", t0);
                    stopped_by_us = true;
                }
                Err(m) => failure = Some(format!("stop failed: {m}")),
            }
        } else {
            plan.finish(i, "skipped", "not running", Instant::now());
        }
    }
    if failure.is_none() && pvedr::interrupt::requested() {
        failure = Some("interrupted".into());
    }
    if let (Some(i), None) = (i_safety, &failure) {
        let a: Vec<String> = plan.steps[i]
            .extra
            .get("command")
            .and_then(Value::as_str)
            .map(|_| {
                argv(&[
                    "vzdump",
                    &id,
                    "--storage",
                    &safety_storage,
                    "--mode",
                    "stop",
                    "--compress",
                    "zstd",
                    "--notes-template",
                    &format!("pvedr safety point before restoring {}", b.volid),
                    "--prune-backups",
                    "keep-all=1",
                ])
            })
            .unwrap_or_default();
        match step!(i, a) {
            Ok((out, t0)) => {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let file = text.lines().find_map(|l| {
                    let rest = l.split("creating vzdump archive '").nth(1)?;
                    Some(rest.trim_end_matches('\'').rsplit('/').next()?.to_string())
                });
                match file {
                    Some(f) => {
                        let v = format!("{safety_storage}:backup/{f}");
                        plan.finish(i, "changed", format!("safety point {v}"), t0);
                        rec.safety_point = Some(json!({"volid": v, "storage": safety_storage}));
                        safety = Some(v);
                    }
                    None => {
                        plan.finish(i, "failed", "vzdump did not say which archive it wrote", t0);
                        failure = Some("no safety point".into());
                    }
                }
            }
            Err(m) => failure = Some(format!("safety point failed: {m}; nothing was overwritten")),
        }
    }
    if failure.is_none() && pvedr::interrupt::requested() {
        failure = Some("interrupted".into());
    }
    let mut restored = false;
    if failure.is_none() {
        match step!(i_restore, restore_argv) {
            Ok((_, t0)) => {
                plan.finish(i_restore, "changed", format!("restored {}", b.volid), t0);
                restored = true;
            }
            Err(m) => failure = Some(format!("restore failed: {m}")),
        }
    }
    if failure.is_none() && pvedr::interrupt::requested() {
        failure = Some("interrupted".into());
    }
    if let (Some(i), true, None) = (i_isolate, restored, &failure) {
        let t0 = Instant::now();
        match guest_config(t, lxc, target)? {
            Ok(conf) => {
                let mut done = 0;
                for line in conf.lines() {
                    let Some((k, v)) = line.split_once(':') else {
                        continue;
                    };
                    let k = k.trim();
                    if k.starts_with("net")
                        && k[3..].bytes().all(|c| c.is_ascii_digit())
                        && !v.contains("link_down=1")
                    {
                        let val = format!("{},link_down=1", v.trim());
                        if let Err(m) = step!(i, argv(&[tool, "set", &id, &format!("--{k}"), &val]))
                        {
                            failure = Some(format!("isolating failed: {m}"));
                            break;
                        }
                        done += 1;
                    }
                }
                if failure.is_none() {
                    plan.finish(i, "changed", format!("{done} link(s) down"), t0);
                }
            }
            Err(e) => {
                plan.finish(i, "failed", e.clone(), t0);
                failure = Some(format!("isolating failed: {e}"));
            }
        }
    }
    if failure.is_none() && pvedr::interrupt::requested() {
        failure = Some("interrupted".into());
    }
    if let (Some(i), true, None) = (i_start, restored, &failure) {
        match step!(i, argv(&[tool, "start", &id])) {
            Ok((_, t0)) => {
                let deadline = Instant::now() + o.probe_timeout.max(Duration::from_secs(5)) * 3;
                let mut running = false;
                while Instant::now() < deadline {
                    let out = exec(t, &argv(&[tool, "status", &id]), false)?;
                    if String::from_utf8_lossy(&out.stdout).contains("status: running") {
                        running = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                if running {
                    plan.finish(i, "changed", "running", t0);
                } else {
                    plan.finish(i, "failed", "did not reach running", t0);
                    failure = Some("the guest did not start".into());
                }
            }
            Err(m) => failure = Some(format!("start failed: {m}")),
        }
    }
    if failure.is_none() && pvedr::interrupt::requested() {
        failure = Some("interrupted".into());
    }
    // Probes.
    let mut verify = Vec::new();
    if restored && failure.is_none() && !o.probes.is_empty() {
        let ip = guest_config(t, lxc, target)?
            .ok()
            .and_then(|c| probe::config_ip(&c));
        let target_info = Target {
            transport: t,
            vmid: target,
            lxc,
            ip,
            timeout: o.probe_timeout,
        };
        for (p, &i) in o.probes.iter().zip(&i_probes) {
            let t0 = Instant::now();
            let mut last = String::new();
            let mut ok = None;
            let mut attempts = 0;
            for n in 0..cli.probe_retries.max(1) {
                attempts = n + 1;
                match probe::run_once(p, &target_info) {
                    Ok(m) => {
                        ok = Some(m);
                        break;
                    }
                    Err(e) => last = e,
                }
                if n + 1 < cli.probe_retries {
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
            match ok {
                Some(m) => {
                    plan.finish(i, "ok", m.clone(), t0);
                    verify.push(json!({"probe": p.name(), "status": "ok", "message": m, "attempts": attempts}));
                }
                None => {
                    plan.finish(i, "failed", last.clone(), t0);
                    verify.push(json!({"probe": p.name(), "status": "failed", "message": last, "attempts": attempts}));
                    failure.get_or_insert(format!("verification failed: {} ({last})", p.name()));
                }
            }
        }
        rec.verify = Some(Value::Array(verify.clone()));
    }
    // The drill cleans up whatever happened.
    if let (Some(i), true) = (i_cleanup, restored && !lost) {
        let t0 = Instant::now();
        let _ = exec(t, &argv(&[tool, "stop", &id]), true);
        match exec(t, &argv(&[tool, "destroy", &id]), true) {
            Ok(out) if out.success() => plan.finish(
                i,
                "changed",
                format!("scratch guest {target} destroyed"),
                t0,
            ),
            Ok(out) => {
                let m = status_line(&out);
                plan.finish(i, "failed", m.clone(), t0);
                failure.get_or_insert(format!(
                    "cleanup failed: {m}; destroy {tool} {target} by hand"
                ));
            }
            Err(e) => {
                plan.finish(i, "failed", e.to_string(), t0);
                lost = true;
            }
        }
    }
    // Rollback to the safety point.
    let mut rolled_back = false;
    if let (Some(i), Some(f)) = (i_rollback, &failure) {
        match (&safety, cli.no_rollback, lost) {
            (Some(s), false, false)
                if restored
                    || f.starts_with("restore failed")
                    || f.starts_with("verification")
                    || f.starts_with("start") =>
            {
                let t0 = Instant::now();
                let _ = exec(t, &argv(&[tool, "stop", &id]), true);
                let a = restore_cmd(lxc, s, target, true, None, false);
                plan.set_command(i, &a);
                match exec(t, &a, true) {
                    Ok(out) if out.success() => {
                        if was_running {
                            let _ = exec(t, &argv(&[tool, "start", &id]), true);
                        }
                        plan.finish(
                            i,
                            "changed",
                            format!("guest {target} is back as it was ({s})"),
                            t0,
                        );
                        rolled_back = true;
                    }
                    Ok(out) => plan.finish(i, "failed", status_line(&out), t0),
                    Err(e) => {
                        plan.finish(i, "failed", e.to_string(), t0);
                        lost = true;
                    }
                }
            }
            (_, true, _) => plan.finish(i, "skipped", "--no-rollback", Instant::now()),
            _ => {}
        }
    } else if let Some(i) = i_rollback {
        plan.finish(i, "skipped", "not needed", Instant::now());
    }
    if stopped_by_us && !restored && failure.is_some() && !lost {
        // Nothing was overwritten: bring the guest back up.
        let _ = exec(t, &argv(&[tool, "start", &id]), true);
        was_running = false;
    }
    plan.skip_rest(if lost {
        "connection lost"
    } else {
        "not reached"
    });

    rec.way_back = way_back(
        &safety,
        lxc,
        target,
        overwrite,
        cli.test,
        restored,
        rolled_back,
        was_running,
    );
    rec.steps = plan.steps;
    rec.duration_s = Some(secs(started));
    rec.status = match (&failure, rolled_back) {
        (Some(f), _) if f == "interrupted" => "interrupted".into(),
        (None, _) if !verify.is_empty() => "verified".into(),
        (None, _) => "restored".into(),
        (Some(_), true) => "rolled-back".into(),
        (Some(_), false) => "failed".into(),
    };
    rec.error = failure;
    if let Some(w) = rec.way_back.as_ref() {
        eprintln!("pve-restore: way back: {w}");
    }
    Ok(rec)
}

#[allow(clippy::too_many_arguments)]
fn way_back(
    safety: &Option<String>,
    lxc: bool,
    target: u64,
    overwrite: bool,
    test: bool,
    restored: bool,
    rolled_back: bool,
    was_running: bool,
) -> Option<String> {
    if test || rolled_back {
        return None;
    }
    match (safety, overwrite, restored) {
        (Some(s), true, _) => Some(restore_cmd(lxc, s, target, true, None, false).join(" ")),
        (None, true, false) if was_running => Some(format!("{} start {target}", tool_of(lxc))),
        (_, false, true) => Some(format!("{} destroy {target}", tool_of(lxc))),
        _ => None,
    }
}

/// `--vmid N --snapshot NAME`: roll back, after a safety point.
fn rollback_snapshot(
    cli: &Cli,
    o: &Options,
    t: &dyn Transport,
    port: u16,
    vmid: u64,
    snap: &str,
    node: &str,
) -> Result<Restore> {
    let started = Instant::now();
    let present = resources(t)?;
    let mut rec = Restore {
        vmid: Some(vmid),
        target_vmid: Some(vmid),
        node: Some(node.into()),
        dry_run: cli.dry_run,
        status: "planned".into(),
        ..Default::default()
    };
    rec.extra.insert("snapshot".into(), Value::from(snap));
    let mut plan = Plan::default();
    let Some(e) = present.get(&vmid).cloned() else {
        return Ok(refused(
            rec,
            plan,
            format!("guest {vmid} does not exist"),
            started,
        ));
    };
    let lxc = e.gtype == "lxc";
    let tool = tool_of(lxc);
    let id = vmid.to_string();
    rec.node = Some(e.node.clone());
    if !cli.force {
        return Ok(refused(
            rec,
            plan,
            format!(
                "rolling {vmid} back to '{snap}' discards its current state: needs --force (a safety point is taken first)"
            ),
            started,
        ));
    }
    let storage = match &o.safety_storage {
        Some(s) => s.clone(),
        None => {
            return Ok(refused(
                rec,
                plan,
                "give --safety-storage for the safety point taken before the rollback".into(),
                started,
            ));
        }
    };
    let i_lock = plan.add(
        "check-lock",
        &id,
        "a locked guest must not be touched",
        Some(&argv(&[tool, "config", &id])),
    );
    let vz = argv(&[
        "vzdump",
        &id,
        "--storage",
        &storage,
        "--mode",
        "snapshot",
        "--compress",
        "zstd",
        "--notes-template",
        &format!("pvedr safety point before rollback to {snap}"),
        "--prune-backups",
        "keep-all=1",
    ]);
    let i_safety = plan.add(
        "safety-point",
        &id,
        "a vzdump of the current state to come back to",
        Some(&vz),
    );
    plan.mark_mutating(i_safety);
    let rb = argv(&[tool, "rollback", &id, snap]);
    let i_rb = plan.add("rollback", &id, "back to the snapshot", Some(&rb));
    plan.mark_mutating(i_rb);
    let t0 = Instant::now();
    match guest_config(t, lxc, vmid)? {
        Ok(c) => match lock_of(&c) {
            Some(l) => {
                plan.finish(i_lock, "failed", format!("locked ({l})"), t0);
                plan.skip_rest("refused");
                return Ok(refused(
                    rec,
                    plan,
                    format!("guest {vmid} is locked ({l})"),
                    started,
                ));
            }
            None => plan.finish(i_lock, "ok", "not locked", t0),
        },
        Err(m) => return Ok(refused(rec, plan, m, started)),
    }
    if cli.dry_run {
        rec.steps = plan.steps;
        return Ok(rec);
    }
    confirm(
        &format!("rolling {vmid} back to snapshot '{snap}'"),
        cli.yes,
    )?;
    let _lock = lock_target(t.host(), port, vmid)?;
    let t0 = Instant::now();
    let out = exec(t, &vz, true)?;
    if !out.success() {
        plan.finish(i_safety, "failed", status_line(&out), t0);
        plan.skip_rest("no safety point");
        rec.status = "failed".into();
        rec.error = Some("safety point failed; nothing was changed".into());
        rec.steps = plan.steps;
        return Ok(rec);
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = text
        .lines()
        .find_map(|l| {
            l.split("creating vzdump archive '").nth(1).map(|r| {
                r.trim_end_matches('\'')
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
        })
        .map(|f| format!("{storage}:backup/{f}"));
    plan.finish(
        i_safety,
        "changed",
        format!("safety point {}", v.as_deref().unwrap_or("?")),
        t0,
    );
    rec.safety_point = v.as_ref().map(|v| json!({"volid": v, "storage": storage}));
    let t0 = Instant::now();
    let out = exec(t, &rb, true)?;
    if out.success() {
        plan.finish(i_rb, "changed", format!("rolled back to '{snap}'"), t0);
        rec.status = "restored".into();
    } else {
        plan.finish(i_rb, "failed", status_line(&out), t0);
        rec.status = "failed".into();
        rec.error = Some(status_line(&out));
    }
    rec.way_back = v.map(|v| restore_cmd(lxc, &v, vmid, true, None, false).join(" "));
    rec.steps = plan.steps;
    rec.duration_s = Some(secs(started));
    Ok(rec)
}
