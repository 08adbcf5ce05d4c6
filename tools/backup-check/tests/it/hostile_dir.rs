//! `backup-check --dir` on a dump directory with FIFOs named like side files (issue 11
//! point 3): it finishes (under a timeout) and says what it skipped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pvedr_testkit::json_lines;

use crate::common::{find, on_dir};
const ARCHIVE: &str = "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(st.success());
}

#[test]
fn fifo_side_files_do_not_hang_the_check() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join(ARCHIVE), b"0123456789").expect("write");
    mkfifo(&tmp.path().join(format!("{ARCHIVE}.notes")));
    mkfifo(&tmp.path().join(format!("{ARCHIVE}.protected")));
    mkfifo(&tmp.path().join("vzdump-qemu-100-2024_01_15-02_00_02.log"));
    // And a log alone, which would be a failed run.
    mkfifo(&tmp.path().join("vzdump-qemu-101-2024_01_15-02_00_02.log"));
    let out = on_dir(tmp.path())
        .timeout(Duration::from_secs(20))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        code.is_some_and(|c| (0..=3).contains(&c)),
        "status {:?} (a timeout is a hang): {err}",
        out.status
    );
    let checks = json_lines(&out.stdout);
    // Guest 100 was checked all the same.
    find(&checks, "guest/100", "freshness");
    for side in [
        format!("{ARCHIVE}.notes"),
        format!("{ARCHIVE}.protected"),
        "vzdump-qemu-100-2024_01_15-02_00_02.log".into(),
        "vzdump-qemu-101-2024_01_15-02_00_02.log".into(),
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("backup-check: ") && l.contains(&side)),
            "no warning about {side}: {err}"
        );
    }
}
