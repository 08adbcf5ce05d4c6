//! What `verify` read when, so that every copy is read whole once per cycle: a JSON file
//! of the tool's own (never in the bucket), rewritten atomically after each run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pvedr::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A state of millions of copies stays far below this; a larger file is not ours.
const MAX_STATE: u64 = 64 << 20;

/// One archive key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// When verify first listed it (its first cycle runs from there).
    pub first_seen: i64,
    /// The last whole read that matched the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<i64>,
    /// The object's ETag and its manifest's sha256 at that read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub objects: BTreeMap<String, Seen>,
}

/// `--state`, else `$XDG_STATE_HOME/pvedr/verify-BUCKET.json`, else under `~/.local/state`.
pub fn path(given: Option<&Path>, bucket: &str) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let base = match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
        (Some(x), _) if !x.is_empty() => PathBuf::from(x),
        (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".local/state"),
        _ => return Err(Error::usage("no HOME or XDG_STATE_HOME: give --state FILE")),
    };
    Ok(base.join("pvedr").join(format!("verify-{bucket}.json")))
}

/// The state at `p`; none yet is an empty one, an unreadable one an error (never reset
/// silently: it would restart every cycle).
pub fn load(p: &Path) -> Result<State> {
    if !p.exists() {
        return Ok(State::default());
    }
    let bytes = pvedr::fs::read_small(p, MAX_STATE)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Other(format!(
            "{}: not a verify state ({e}); move it away to start anew",
            p.display()
        ))
    })
}

pub fn save(p: &Path, s: &State) -> Result<()> {
    if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    }
    // A map of strings and numbers always serializes.
    let bytes = serde_json::to_vec_pretty(s).unwrap_or_default();
    pvedr::fs::write_atomic(p, &bytes)
}
