//! What the run writes: each restore record as soon as it is done (standard output, the
//! drill history), and the summary that ends the run.

use std::time::{Duration, Instant};

use pvedr::error::{Result, exit_for};
use pvedr::records::{Record, Restore, RestoreStatus, Summary};

use crate::history::History;

/// The exit status of a site whose RTO exceeds `--rto-target`, all else having succeeded.
pub const RTO_MISSED: u8 = 4;

/// A site's figures for the summary.
#[derive(Debug, Clone, Default)]
pub struct SiteFigures {
    pub predicted_rto_s: f64,
    /// Measured, wall clock; `None` for a dry run.
    pub rto_s: Option<f64>,
    pub rpo_s: Option<f64>,
    pub rto_target: Option<Duration>,
    /// Why the guests after a failed one were not started (`--stop-on-failure`).
    pub stopped: Option<String>,
}

impl SiteFigures {
    /// Whether the plan (or, once run, the site) took longer than the target.
    pub fn missed(&self) -> bool {
        let Some(t) = self.rto_target else {
            return false;
        };
        let t = t.as_secs_f64();
        self.predicted_rto_s > t || self.rto_s.is_some_and(|r| r > t)
    }

    fn fill(&self, s: &mut Summary) {
        s.predicted_rto_s = Some(round(self.predicted_rto_s));
        s.rto_s = self.rto_s.map(round);
        s.rpo_s = self.rpo_s.map(round);
        s.rto_target_s = self.rto_target.map(|t| t.as_secs_f64());
        s.stopped = self.stopped.clone();
        s.prediction_error_pct = match self.rto_s {
            Some(r) if self.predicted_rto_s > 0.0 => Some(round(
                (r - self.predicted_rto_s) / self.predicted_rto_s * 100.0,
            )),
            _ => None,
        };
    }
}

/// Milliseconds are enough for a duration, tenths of a percent for an error.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Where the records go, and those written so far (for the summary).
pub struct Writer {
    out: pvedr::output::Output,
    history: Option<History>,
    records: Vec<Restore>,
}

impl Writer {
    pub fn new(out: pvedr::output::Output, history: Option<History>) -> Writer {
        Writer {
            out,
            history,
            records: Vec::new(),
        }
    }

    /// Written now: a later guest's failure or a Ctrl-C must not lose it.
    pub fn put(&mut self, r: Restore) -> Result<()> {
        write(&mut self.out, self.history.as_mut(), &r)?;
        self.records.push(r);
        Ok(())
    }

    /// The summary, and the run's exit status.
    pub fn finish(mut self, started: Instant, site: Option<&SiteFigures>) -> Result<u8> {
        let exit = summary(&self.records, started, site, &mut self.out)?;
        self.out.finish()?;
        Ok(exit)
    }
}

/// The record on standard output, flushed, and in the drill history when there is one.
fn write(
    out: &mut pvedr::output::Output,
    history: Option<&mut History>,
    r: &Restore,
) -> Result<()> {
    out.write(&Record::Restore(r.clone()))?;
    out.flush()?;
    match history {
        Some(h) => h.append(r),
        None => Ok(()),
    }
}

/// The summary; its exit status.
fn summary(
    records: &[Restore],
    started: Instant,
    site: Option<&SiteFigures>,
    out: &mut pvedr::output::Output,
) -> Result<u8> {
    use RestoreStatus as S;
    let ok = |r: &&Restore| matches!(r.status, S::Restored | S::Verified | S::Planned);
    let succeeded = records.iter().filter(ok).count();
    // A wait on a task ended by Ctrl-C leaves a failed record, but the run was interrupted.
    let interrupted =
        records.iter().any(|r| r.status == S::Interrupted) || pvedr::interrupt::requested();
    let mut exit = exit_for(succeeded, records.len() - succeeded, interrupted);
    if exit == 0 && site.is_some_and(SiteFigures::missed) {
        exit = RTO_MISSED;
    }
    let mut s = Summary {
        tool: Some("pve-restore".into()),
        counts: pvedr::status::counts(records.iter().map(|r| &r.status)),
        exit_code: exit,
        duration_s: Some(pvedr::records::seconds_since(started)),
        ..Default::default()
    };
    if let Some(f) = site {
        f.fill(&mut s);
    }
    out.write(&Record::Summary(s))?;
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_missed_by_the_plan_or_by_the_run() {
        let mut f = SiteFigures {
            predicted_rto_s: 100.0,
            rto_target: Some(Duration::from_secs(120)),
            ..Default::default()
        };
        assert!(!f.missed());
        f.rto_s = Some(130.0);
        assert!(f.missed());
        f.rto_s = None;
        f.predicted_rto_s = 121.0;
        assert!(f.missed());
        f.rto_target = None;
        assert!(!f.missed());
        let mut s = Summary::default();
        f.rto_s = Some(110.0);
        f.predicted_rto_s = 100.0;
        f.fill(&mut s);
        assert_eq!(s.prediction_error_pct, Some(10.0));
    }
}
