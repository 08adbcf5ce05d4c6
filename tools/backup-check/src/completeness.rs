//! Whether the records on the input are a whole listing: an empty input, a listing that
//! failed or was cut short is UNKNOWN, never "all fine" (records.md, `listing`).

use pvedr::records::{Check, CheckStatus, Listing, Record};

/// What the input said about itself, gathered while it was read.
#[derive(Debug, Default)]
pub struct Completeness {
    records: u64,
    listings: Vec<Listing>,
    /// Records that pve-ls-backups writes (node backups, guests, storages, jobs, failed
    /// runs): a stream holding them ends with a `listing` record when it is whole.
    listed: bool,
}

impl Completeness {
    pub fn see(&mut self, r: &Record) {
        self.records += 1;
        match r {
            Record::Listing(l) => self.listings.push(l.clone()),
            Record::Backup(b) => self.listed |= !b.extra.contains_key("url"),
            Record::Guest(_) | Record::Storage(_) | Record::Job(_) | Record::BackupFailure(_) => {
                self.listed = true
            }
            _ => {}
        }
    }

    /// A `backup` record read straight from its typical line (it has no `url`: a listing's).
    pub fn see_backup_line(&mut self) {
        self.records += 1;
        self.listed = true;
    }

    /// Why backups may be missing though every source answered (privileges).
    pub fn blind(&self) -> bool {
        self.listings.iter().any(|l| !l.blind.is_empty())
    }

    /// The UNKNOWN findings: what could not be read, or why the input cannot be trusted
    /// to be whole.
    pub fn findings(&self) -> Vec<Check> {
        if self.records == 0 {
            return vec![unknown(
                "input",
                "no records on input: did the listing fail? (pve-ls-backups ends every listing with a `listing` record)",
            )];
        }
        let mut out = Vec::new();
        for l in &self.listings {
            if let Some(e) = &l.error {
                out.push(unknown("read", &format!("the listing failed: {e}")));
            }
            for p in &l.problems {
                out.push(unknown("read", p));
            }
            if !l.complete && l.error.is_none() && l.problems.is_empty() {
                out.push(unknown("read", "the listing says it is not complete"));
            }
        }
        if self.listed && self.listings.is_empty() {
            out.push(unknown(
                "input",
                "the records end without a `listing` record: the listing was cut short (a killed process, head, a jq filter?)",
            ));
        }
        out
    }
}

fn unknown(check: &str, message: &str) -> Check {
    Check {
        component: "source".into(),
        check: check.into(),
        status: CheckStatus::Unknown,
        message: message.into(),
        ..Default::default()
    }
}
