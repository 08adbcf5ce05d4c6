//! pve-ls-backups's integration tests: one binary, a module per area, all through the built binaries.

mod api;
mod cli;
mod hostile_dir;
mod log_status;
mod man;
mod ssh;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// `pve-ls-backups --dir DIR --with-failures`, killed after 20 s, which must succeed: its
/// records and stderr.
fn list(dir: &Path) -> (Vec<Value>, String) {
    let out = Command::cargo_bin("pve-ls-backups")
        .expect("binary")
        .arg("--dir")
        .arg(dir)
        .args(["--timezone", "UTC", "--with-failures"])
        .timeout(Duration::from_secs(20))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "status {:?} (a timeout is a hang): {stderr}",
        out.status
    );
    let recs = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    (recs, stderr)
}
