//! What a vzdump `.log` says (issue 10 point 9): an ERROR line in a backup that finished
//! (a guest-agent freeze error) is not a failure; the failure is
//! `ERROR: Backup of VM N failed - …` (pve-manager PVE/VZDump.pm, exec_backup_task).

use std::fs;
use std::path::Path;

use serde_json::Value;

fn list(dir: &Path) -> Vec<Value> {
    crate::list(dir).0
}

#[test]
fn a_freeze_error_in_a_finished_backup_is_a_warning_not_a_failure() {
    let tmp = tempfile::tempdir().expect("tmp");
    let stem = "vzdump-qemu-100-2024_01_15-02_00_02";
    fs::write(tmp.path().join(format!("{stem}.vma.zst")), b"0123456789").expect("write");
    fs::write(
        tmp.path().join(format!("{stem}.log")),
        "2024-01-15 02:00:02 INFO: Starting Backup of VM 100 (qemu)\n\
         2024-01-15 02:00:02 INFO: issuing guest-agent 'fs-freeze' command\n\
         2024-01-15 02:00:12 ERROR: unable to freeze guest fs - got timeout\n\
         2024-01-15 02:00:12 INFO: issuing guest-agent 'fs-thaw' command\n\
         2024-01-15 02:01:05 INFO: Finished Backup of VM 100 (00:01:03)\n",
    )
    .expect("write");
    let recs = list(tmp.path());
    let b = recs.iter().find(|r| r["kind"] == "backup").expect("backup");
    assert_eq!(b["log_status"], "warning", "{b}");
}

#[test]
fn the_failure_line_is_the_error_of_a_failed_run() {
    // An earlier freeze error, then vzdump's failure line with a message of two lines
    // (debugmsg writes each line with its own ERROR: prefix).
    let tmp = tempfile::tempdir().expect("tmp");
    fs::write(
        tmp.path().join("vzdump-qemu-102-2024_01_16-02_00_02.log"),
        "2024-01-16 02:00:02 INFO: Starting Backup of VM 102 (qemu)\n\
         2024-01-16 02:00:05 ERROR: unable to freeze guest fs - got timeout\n\
         2024-01-16 02:00:09 ERROR: Backup of VM 102 failed - job failed with err -5 - Input/output error\n\
         2024-01-16 02:00:09 ERROR: see the journal of the node\n",
    )
    .expect("write");
    let recs = list(tmp.path());
    let f = recs
        .iter()
        .find(|r| r["kind"] == "backup_failure")
        .expect("failure");
    assert_eq!(
        f["error"], "Backup of VM 102 failed - job failed with err -5 - Input/output error",
        "{f}"
    );
}
