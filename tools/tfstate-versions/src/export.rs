//! `export --to DIR`: the current state of each environment, with its sha256 and version id,
//! each file written atomically (never through a symlink planted in DIR).

use pvedr::records::StepStatus;
use std::path::Path;
use std::time::Instant;

use pvedr::error::{Error, Result, exit_for};
use pvedr::fs::{write_atomic, write_atomic_private};
use pvedr::output::Output;
use pvedr::records::{Record, Step};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cli::Cli;
use crate::history::{get, location, open};
use pvedr::change::step;

pub fn export(cli: &Cli, to: &Path, out: &mut Output) -> Result<u8> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(format!("creating {}", to.display()), e))?;
    let envs: Vec<Option<&str>> = if cli.s3.env.is_empty() {
        vec![None]
    } else {
        cli.s3.env.iter().map(|e| Some(e.as_str())).collect()
    };
    let (mut ok, mut failed) = (0, 0);
    for env in envs {
        let t0 = Instant::now();
        match export_one(cli, env, to, t0) {
            Ok(s) => {
                ok += 1;
                out.write(&Record::Step(s))?;
            }
            Err(e) => {
                failed += 1;
                pvedr::msg::say(format!("export {}: {e}", env.unwrap_or("state")));
                out.write(&Record::Step(step(
                    "export",
                    env.unwrap_or("state"),
                    StepStatus::Failed,
                    e.to_string(),
                    t0,
                )))?;
            }
        }
    }
    Ok(exit_for(ok, failed, false))
}

fn export_one(cli: &Cli, env: Option<&str>, to: &Path, t0: Instant) -> Result<Step> {
    let t = location(cli, env)?;
    let (s3, h) = open(&t)?;
    let top = h
        .first()
        .filter(|e| !e.delete_marker)
        .ok_or_else(|| Error::Refused(format!("{} has no current state", t.url())))?;
    let body = get(&s3, &t, Some(&top.version_id))?;
    let name = env.map(String::from).unwrap_or_else(|| t.bucket.clone());
    let file = to.join(format!("{name}.tfstate"));
    let sha = pvedr::integrity::hex(&Sha256::digest(&body));
    // A state holds the secrets of every resource: owner only, as any key file.
    write_atomic_private(&file, &body)?;
    write_atomic(
        &to.join(format!("{name}.tfstate.sha256")),
        format!("{sha}  {name}.tfstate\n").as_bytes(),
    )?;
    write_atomic(
        &to.join(format!("{name}.tfstate.version")),
        format!("{}\n", top.version_id).as_bytes(),
    )?;
    let mut s = step(
        "export",
        &t.url(),
        StepStatus::Changed,
        format!("{} ({} bytes)", file.display(), body.len()),
        t0,
    );
    s.extra.insert("sha256".into(), Value::from(sha));
    s.extra
        .insert("version_id".into(), Value::from(top.version_id.clone()));
    s.extra
        .insert("path".into(), Value::from(file.display().to_string()));
    Ok(s)
}
