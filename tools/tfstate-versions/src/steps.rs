//! How fallback and return report: their steps, and the exit code they make.

use pvedr::error::{Result, code};
use pvedr::output::Output;
use pvedr::records::{Record, Step, StepStatus};

/// Writes steps; a failed one is also said on stderr, and makes the exit 1.
pub(crate) fn write_steps(out: &mut Output, steps: Vec<Step>) -> Result<u8> {
    let failed = steps.iter().any(|s| s.status == StepStatus::Failed);
    for s in steps {
        if s.status == StepStatus::Failed {
            pvedr::msg::say(format!(
                "{} failed: {}",
                s.step,
                s.message.as_deref().unwrap_or("")
            ));
        }
        out.write(&Record::Step(s))?;
    }
    Ok(if pvedr::interrupt::requested() {
        code::INTERRUPTED
    } else if failed {
        code::FAILURE
    } else {
        code::SUCCESS
    })
}
