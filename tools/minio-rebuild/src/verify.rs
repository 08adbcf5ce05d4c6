//! Step 7: every environment's backend initialises again and plans. The plan runs with
//! `-lock=false`: it only reads, so a rebuild on a healthy store writes nothing to it, not
//! even a lock object and its delete marker. Drift the plan shows is reported (`changes`)
//! under `ok`: the run did not cause it, and a second run must not say `changed`.

use pvedr::records::StepStatus;
use std::time::Instant;

use pvedr::error::Result;
use pvedr::terraform::PlanOutcome;
use serde_json::Value;

use crate::ctx::Ctx;
use pvedr::change::step;

pub fn verify_backends(ctx: &mut Ctx) -> Result<bool> {
    let mut all_ok = true;
    for dir in ctx.cli.terraform.verify_dir.clone() {
        if pvedr::interrupt::requested() {
            return Ok(false);
        }
        let t0 = Instant::now();
        let target = dir.display().to_string();
        if ctx.dry_run && ctx.planned_any() {
            let m = "would run terraform init -reconfigure and plan after the changes above";
            ctx.emit(step("verify-backends", &target, StepStatus::Planned, m, t0))?;
            continue;
        }
        let tf = ctx.terraform(&dir);
        let s = match tf
            .init(&["-reconfigure"])
            .and_then(|_| tf.plan(&["-lock=false"]))
        {
            Ok(PlanOutcome::NoChanges) => step(
                "verify-backends",
                &target,
                StepStatus::Ok,
                "terraform init -reconfigure and plan work: no changes",
                t0,
            ),
            Ok(PlanOutcome::Changes(n)) => {
                let count = n.map_or("some".to_string(), |n| n.to_string());
                // The drift is Terraform's, not this run's doing: `ok`, so that a second run
                // reports no change; the count and a warning say it.
                let m = format!(
                    "terraform init -reconfigure and plan work; the plan shows drift this run did not cause: {count} resource changes (the state may be older than the infrastructure; review with terraform plan)"
                );
                pvedr::msg::warn(format!("{target}: {m}"));
                let mut s = step("verify-backends", &target, StepStatus::Ok, m, t0);
                s.extra
                    .insert("changes".into(), n.map_or(Value::Null, Value::from));
                s
            }
            Err(e) => {
                all_ok = false;
                let m = crate::health::tf_failed(
                    &e,
                    &tf,
                    "check the backend block (bucket, key, endpoint) and the credentials",
                );
                step("verify-backends", &target, StepStatus::Failed, m, t0)
            }
        };
        ctx.emit(s)?;
    }
    Ok(all_ok)
}
