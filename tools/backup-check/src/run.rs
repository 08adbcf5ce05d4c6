use std::time::{Duration, Instant};

use pvedr::error::{Error, Result};
use pvedr::listing::{self, Extras};
use pvedr::output::Format;
use pvedr::records::{Backup, CheckStatus, Record};
use pvedr::time::{Zone, format_duration};
use pvedr::{backup_line, jsonl};

use crate::checks::{Thresholds, run_checks};
use crate::cli::Cli;
use crate::completeness::Completeness;
use crate::inputs::Inputs;
use crate::summary::{Context, Seen, Summaries};
use crate::{deep, report};

fn thresholds(cli: &Cli) -> Result<Thresholds> {
    let t = Thresholds {
        max_age: cli.max_age.as_secs(),
        max_age_critical: cli.max_age_critical.as_secs(),
        grace: cli.grace.as_secs(),
        min_count: cli.min_count,
        shrink_warn: cli.shrink_warn,
        storage_warn: cli.storage_warn,
        storage_crit: cli.storage_crit,
        max_snapshot_age: cli.max_snapshot_age.as_secs(),
        max_drill_age: cli.max_drill_age.map(|d| d.as_secs()),
        size_anomaly: crate::size_anomaly::Limits {
            window: cli.size_window,
            grow: cli.size_grow,
            shrink: cli.size_shrink,
        },
    };
    if t.max_age_critical < t.max_age {
        return Err(Error::usage("--max-age-critical is shorter than --max-age"));
    }
    if t.storage_crit < t.storage_warn {
        return Err(Error::usage("--storage-crit is below --storage-warn"));
    }
    Ok(t)
}

/// Sorts one record in: a backup is folded into its guest's summary at once, or held
/// (`held`) for `--deep` to read its archive first.
fn split(r: Record, inputs: &mut Inputs, held: Option<&mut Vec<Backup>>) {
    match r {
        Record::Backup(b) => match held {
            Some(h) if !b.unfinished => h.push(b),
            Some(_) => {}
            None => inputs.backups.fold(&Seen::from(&b)),
        },
        Record::Guest(g) => inputs.guests.push(g),
        Record::Storage(s) => inputs.storages.push(s),
        Record::Job(j) => inputs.jobs.push(j),
        Record::BackupFailure(f) => inputs.failures.push(f),
        Record::TfstateVersion(v) => inputs.tfstate.push(v),
        Record::Snapshot(s) => inputs.snapshots.push(s),
        Record::Other(m) if m.get("kind").and_then(|k| k.as_str()) == Some("offsite_damaged") => {
            inputs.offsite_damaged.push(m)
        }
        Record::Check(c) => inputs.foreign.push(c),
        Record::Restore(r) => {
            inputs.drills.see(&r);
            if let (None, Some(v)) = (r.size, &r.volid) {
                inputs.backups.want(v);
            }
        }
        _ => {}
    }
}

/// Reads FILEs (standard input by default) into `inputs`; `--deep` holds the backups in
/// `held` for their archives to be read first.
fn read_files(
    cli: &Cli,
    seen: &mut Completeness,
    inputs: &mut Inputs,
    held: &mut Vec<Backup>,
) -> Result<()> {
    let fast = !cli.deep;
    for p in &cli.input.files {
        let mut reader = jsonl::open(p)?;
        loop {
            let next = reader.next_unless(&mut |line| fast && fold_line(line, seen, inputs));
            let Some(r) = next else { break };
            let r = r?;
            seen.see(&r);
            split(r, inputs, cli.deep.then_some(&mut *held));
        }
    }
    Ok(())
}

/// Folds a backup line of the typical shape straight from the line, borrowed: no record
/// built for most lines of a listing. `false`: the line is read as any record.
fn fold_line(line: &str, seen: &mut Completeness, inputs: &mut Inputs) -> bool {
    if !backup_line::looks_like_backup(line) {
        return false;
    }
    let Some(b) = backup_line::typical(line) else {
        return false;
    };
    seen.see_backup_line();
    inputs.backups.fold(&Seen::from(&b));
    true
}

/// One source of records: `--local`, a node (`--host`, `--tfvars`, `--api`), `--dir`, or
/// FILEs (standard input by default). Two are a contradiction, refused before anything is
/// read: silently preferring one would check something else than what was asked.
fn one_source(cli: &Cli) -> Result<()> {
    let files = cli.input.files.iter().any(|f| f != "-") || cli.input.files.len() > 1;
    let given: Vec<&str> = [
        (cli.local, "--local"),
        (
            cli.listing.connect.names_a_node(),
            "--host/--tfvars/--api (or PVEDR_API)",
        ),
        (cli.listing.select.dir.is_some(), "--dir"),
        (files, "FILE"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if given.len() > 1 {
        return Err(Error::usage(format!(
            "{} name different sources of records: give one",
            given.join(" and ")
        )));
    }
    Ok(())
}

/// --max-drill-age once drills are on record: a monthly drill, with a few days' slack.
const DEFAULT_MAX_DRILL_AGE: u64 = 35 * 86400;

/// The whole run's bound with --nagios when --timeout is not given: under Nagios's 60 s.
const NAGIOS_TIMEOUT: u64 = 50;

/// With --nagios (or --timeout) the run ends by its bound: each command is cut to fit
/// (`pvedr::deadline`), and a watchdog says UNKNOWN with what it waited for if it passes.
fn bound_the_run(cli: &Cli, started: Instant) -> Result<()> {
    let secs = match (&cli.timeout, cli.nagios) {
        (Some(t), _) => t.as_secs().max(1),
        (None, true) => NAGIOS_TIMEOUT,
        (None, false) => return Ok(()),
    };
    pvedr::deadline::set(Duration::from_secs(secs));
    let nagios = cli.nagios;
    let (prom, now) = (cli.prom.clone(), cli.now);
    pvedr::deadline::watch(move |what| {
        let why = format!(
            "no answer within {} (--timeout) while {what}",
            format_duration(secs)
        );
        metrics_down(prom.as_deref(), now, started);
        if nagios {
            report::print_nagios_unknown(&why);
        }
        pvedr::msg::say(&why);
        std::process::exit(3);
    });
    Ok(())
}

/// Checks; a run that cannot check still answers as its outputs promise: one Nagios line
/// and a rewritten metrics file that says so (not yesterday's green one).
pub fn run(cli: Cli) -> Result<u8> {
    let started = Instant::now();
    let result = check(&cli, started);
    if let Err(e) = &result
        && !e.is_broken_pipe()
    {
        could_not_check(&cli, e, started);
    }
    result
}

fn could_not_check(cli: &Cli, e: &Error, started: Instant) {
    let reason = pvedr::msg::printable(&e.to_string());
    metrics_down(cli.prom.as_deref(), cli.now, started);
    if cli.nagios {
        report::print_nagios_unknown(&reason);
    }
}

fn check(cli: &Cli, started: Instant) -> Result<u8> {
    one_source(cli)?;
    let mut th = thresholds(cli)?;
    let tfstates = crate::tfcoverage::Sources::parse(&cli.tfstate)?;
    bound_the_run(cli, started)?;
    let mut zone = Zone::from_arg(cli.listing.select.timezone.as_deref())?;
    let now = cli.now.unwrap_or_else(pvedr::time::now);
    let gather =
        cli.local || cli.listing.connect.names_a_node() || cli.listing.select.dir.is_some();
    let extras = Extras {
        guests: true,
        storage: true,
        jobs: true,
        failures: true,
    };
    let cx = Context {
        now,
        window: th.size_anomaly.window,
        ..Default::default()
    };
    let mut inputs = Inputs {
        backups: Summaries::new(cx),
        ..Default::default()
    };
    // The history first: a backup read after a drill of it keeps its size for the drill.
    if let Some(h) = &cli.drill_history {
        inputs.drills.read_history(h);
        let wanted: Vec<String> = inputs.drills.sizes_wanted().map(String::from).collect();
        wanted.iter().for_each(|v| inputs.backups.want(v));
    }
    let mut transport = None;
    let mut problems: Vec<String> = Vec::new();
    let mut blind: Vec<String> = Vec::new();
    let mut unread: Vec<pvedr::records::Check> = Vec::new();
    // Backups held for --deep (or gathered whole); folded once it has read them.
    let mut held: Vec<Backup> = Vec::new();
    if cli.listing.select.dir.is_some() {
        let g = listing::gather_dir(
            &cli.listing.select,
            zone,
            Extras {
                guests: false,
                jobs: false,
                ..extras
            },
        )?;
        held = split_gathered(g, &mut inputs);
    } else if gather {
        let conn = cli.listing.connect.connect()?;
        let g = conn.gather(&cli.listing.select, extras)?;
        // Each problem was said on stderr as it was found; the checks report them.
        problems = g.problems.clone();
        blind = g.blind.clone();
        // Periods and schedules are the node's.
        zone = g.zone(&cli.listing.select)?;
        held = split_gathered(g, &mut inputs);
        transport = Some(conn.transport);
    } else {
        let mut seen = Completeness::default();
        read_files(cli, &mut seen, &mut inputs, &mut held)?;
        if seen.blind() {
            blind.push("the listing may leave backups out".into());
        }
        unread = seen.findings();
    }

    if inputs.drills.seen {
        th.max_drill_age.get_or_insert(DEFAULT_MAX_DRILL_AGE);
    }

    held.retain(|b| !b.unfinished);
    if cli.deep {
        deep_check(cli, &held, transport.as_deref(), &mut inputs)?;
    }
    for b in &held {
        inputs.backups.fold(&Seen::from(b));
    }
    drop(held);

    let mut checks = run_checks(&inputs, &th, now, zone);
    checks.extend(tfstates.checks(&cli.s3, &inputs.guests, &inputs.backups)?);
    if !blind.is_empty() {
        distrust_absences(&mut checks);
    }
    // Another tool's findings (backup-sync verify) count as ours.
    checks.append(&mut inputs.foreign);
    // What could not be read is UNKNOWN, not OK.
    checks.extend(unread);
    checks.extend(inputs.drills.findings());
    checks.extend(inputs.backups.finding());
    for p in problems {
        checks.push(pvedr::records::Check {
            component: "source".into(),
            check: "read".into(),
            status: CheckStatus::Unknown,
            message: p,
            value: None,
            threshold: None,
            extra: Default::default(),
        });
    }
    let duration = started.elapsed().as_secs_f64();
    let summary = report::summary(&checks, duration);
    if let Some(p) = &cli.prom {
        let text = report::prometheus(&checks, &inputs, now, duration);
        pvedr::fs::write_atomic(p, text.as_bytes())?;
    }
    let code = summary.exit_code;
    let mut out = cli.output.output();
    if cli.nagios {
        let mut line = report::nagios_line(&checks);
        line.push('\n');
        out.raw()
            .write_all(line.as_bytes())
            .map_err(|e| Error::io("writing to standard output", e))?;
    } else if out.format() == Format::Table {
        report::table(out.raw(), &checks, &inputs)
            .map_err(|e| Error::io("writing to standard output", e))?;
    } else {
        for c in checks {
            out.write(&Record::Check(c))?;
        }
        out.write(&Record::Summary(summary))?;
    }
    out.finish()?;
    Ok(code)
}

/// With backups possibly left out of the listing, "no backup", "too old" and "too few" are
/// not facts: they are UNKNOWN (the source/read checks say which privileges are missing).
fn distrust_absences(checks: &mut [pvedr::records::Check]) {
    for c in checks.iter_mut() {
        let depends = match c.check.as_str() {
            "freshness" | "count" | "retention" | "size" => true,
            // "no backup at all", not a job's coverage.
            "coverage" => c.value == Some(serde_json::json!(0)),
            // The guest list may leave the guest out: it is not known to be gone.
            "orphan" => true,
            // "declared but not on the cluster": the token may not see it.
            "terraform" => c.value == Some(serde_json::json!("missing")),
            _ => false,
        };
        if depends && c.status != CheckStatus::Ok && c.component.starts_with("guest/") {
            c.status = CheckStatus::Unknown;
            c.message = format!(
                "{} (not trusted: the listing may leave backups out, see source/read)",
                c.message
            );
        }
    }
}

/// A gathered listing's records into `inputs`; its backups are returned, to be folded.
fn split_gathered(g: listing::Gathered, inputs: &mut Inputs) -> Vec<Backup> {
    inputs.guests = g.guests;
    inputs.storages = g.storages;
    inputs.jobs = g.jobs;
    inputs.failures = g.failures;
    g.backups
}

/// `--deep`: reads the archives of `held` (by path, or on the node), so the fold knows
/// which are damaged.
fn deep_check(
    cli: &Cli,
    held: &[Backup],
    transport: Option<&dyn pvedr::transport::Transport>,
    inputs: &mut Inputs,
) -> Result<()> {
    let jobs = cli.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let cx = &mut inputs.backups.cx;
    let with_path: Vec<&Backup> = held.iter().filter(|b| b.path.is_some()).collect();
    if !with_path.is_empty() {
        cx.damaged = deep::check_local(&with_path, jobs);
        inputs.deep_checked = Some(with_path.len());
    } else if let Some(t) = transport {
        let all: Vec<&Backup> = held.iter().collect();
        let (damaged, untested, n) = deep::check_remote(t, &all)?;
        cx.untested = untested;
        cx.damaged = damaged;
        inputs.deep_checked = Some(n);
    } else {
        pvedr::msg::warn(
            "--deep needs archives it can reach: --dir, --host/--local, or records with a path",
        );
    }
    cx.deep = inputs.deep_checked.is_some();
    Ok(())
}

/// The metrics file of a run that could not check: rewritten, `pvedr_backup_check_up 0`.
fn metrics_down(prom: Option<&std::path::Path>, now: Option<i64>, started: Instant) {
    let Some(p) = prom else { return };
    let now = now.unwrap_or_else(pvedr::time::now);
    let text = report::prometheus_down(now, started.elapsed().as_secs_f64());
    if let Err(w) = pvedr::fs::write_atomic(p, text.as_bytes()) {
        pvedr::msg::warn(format!("cannot write {}: {w}", p.display()));
    }
}
