//! backup-prune's command line: policy errors, pass-through, the pvesm-style table, --from-job.

use pvedr_testkit::{bin, json_lines};
use serde_json::{Value, json};

fn backup(vmid: u64, day: u32, protected: bool) -> Value {
    let t = chrono::NaiveDate::from_ymd_opt(2024, 1, day)
        .and_then(|d| d.and_hms_opt(2, 0, 0))
        .expect("date");
    json!({"kind": "backup", "node": "pve1", "storage": "local",
           "volid": format!("local:backup/vzdump-qemu-{vmid}-{}.vma.zst", t.format("%Y_%m_%d-%H_%M_%S")),
           "vmid": vmid, "subtype": "qemu", "ctime": t.and_utc().timestamp(), "time": "", "format": "vma.zst",
           "protected": protected})
}

fn stream(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

/// The run's stderr says `needle`.
fn stderr_says(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{err}");
}

#[test]
fn policy_errors_are_proxmox_errors_and_usage_errors() {
    for (args, msg) in [
        (
            vec!["--prune-backups", "keep-daily=7,keep-daily=3"],
            "duplicate key in comma-separated list property: keep-daily",
        ),
        (
            vec!["--prune-backups", "keep-all=1,keep-weekly=2"],
            "keep-all cannot be set together with other options.",
        ),
        (
            vec!["--keep-all", "--keep-daily", "3"],
            "keep-all cannot be set together with other options.",
        ),
        // pve-common JSONSchema.pm parse_property_string + check_object: an unknown key is a
        // format error, and every bad value gets its own line, sorted by key here.
        (
            vec!["--prune-backups", "keep-hours=1"],
            "format error\nkeep-hours: property is not defined in schema and the schema does not allow additional properties\n",
        ),
        (
            vec!["--prune-backups", "keep-weekly=-1,keep-daily=x"],
            "format error\nkeep-daily: type check ('integer') failed - got 'x'\nkeep-weekly: value must have a minimum value of 0\n",
        ),
        (vec![], "no retention given"),
    ] {
        let out = bin("backup-prune")
            .args(&args)
            .write_stdin(stream(&[backup(100, 1, false)]))
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    pvedr_testkit::run_code(bin("backup-prune").args(["--keep-daily", "-1"]), 2);
}

#[test]
fn policy_strings_proxmox_accepts() {
    // One trailing newline per part passes (parse_property_string's `(.+)$`). Proxmox's
    // is_integer takes any run of digits; typed on pvedr's command line a count must fit
    // what --keep-last takes (a u64), see policy_strings_pvedr_refuses.
    for (policy, want) in [
        ("keep-last=1\n", ["remove", "keep"]),
        ("keep-last=+1,keep-all=0", ["remove", "keep"]),
        ("keep-last=18446744073709551615", ["keep", "keep"]),
    ] {
        let out = bin("backup-prune")
            .args(["--prune-backups", policy])
            .write_stdin(stream(&[backup(100, 1, false), backup(100, 2, false)]))
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{policy:?}: {err}");
        let marks: Vec<Value> = json_lines(&out.stdout)
            .iter()
            .map(|r| r["mark"].clone())
            .collect();
        assert_eq!(marks, want.map(Value::from), "{policy:?}");
    }
}

#[test]
fn policy_strings_pvedr_refuses() {
    // A count no flag could take is a typo: a usage error before any input is read.
    let out = bin("backup-prune")
        .args(["--prune-backups", "keep-last=99999999999999999999999"])
        .write_stdin(stream(&[backup(100, 1, false)]))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    stderr_says(&out, "keep-last: 23 digits is more than a count can be");
}

#[test]
fn bad_input_names_the_line() {
    let out = pvedr_testkit::run_code(
        bin("backup-prune")
            .args(["--keep-last", "1"])
            .write_stdin(format!("{}\nnot json\n", backup(100, 1, false))),
        1,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<stdin>:2:"), "{err}");
}

#[test]
fn other_kinds_pass_through_in_order() {
    let guest = json!({"kind": "guest", "vmid": 100, "type": "qemu", "name": "web01"});
    let future = json!({"kind": "something_new", "x": [1, 2]});
    let input = [
        guest.clone(),
        backup(100, 1, false),
        future.clone(),
        backup(100, 2, false),
    ];
    let out = pvedr_testkit::run_ok(
        bin("backup-prune")
            .args(["--keep-last", "1"])
            .write_stdin(stream(&input)),
    );
    let recs = json_lines(&out.stdout);
    assert_eq!(recs.len(), 4);
    assert_eq!(recs[0], guest);
    assert_eq!(recs[2], future);
    assert_eq!(
        (recs[1]["mark"].as_str(), recs[3]["mark"].as_str()),
        (Some("remove"), Some("keep"))
    );
    assert_eq!(recs[3]["reason"], "keep-last");
    assert_eq!(recs[1]["reason"], Value::Null);
}

#[test]
fn table_looks_like_pvesm_prune_backups_dry_run() {
    let input = [
        backup(101, 2, false),
        backup(100, 1, true),
        backup(100, 3, false),
        backup(100, 2, false),
    ];
    let out = bin("backup-prune")
        .args(["--keep-last", "1", "--format", "table"])
        .write_stdin(stream(&input))
        .output()
        .expect("run");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let v = "local:backup/vzdump-qemu-100-2024_01_01-02_00_00.vma.zst";
    let w = v.len() + 1;
    let expected = [
        "NOTE: this is only a preview and might not be what a subsequent".to_string(),
        "prune call does if backups are removed/added in the meantime.".into(),
        String::new(),
        format!("{:<w$} {:>15} {:>10}", "Backup", "Backup-ID", "Prune-Mark"),
        format!("{:<w$} {:>15} {:>10}", v, "qemu/100", "protected"),
        format!(
            "{:<w$} {:>15} {:>10}",
            v.replace("01_01", "01_02"),
            "qemu/100",
            "remove"
        ),
        format!(
            "{:<w$} {:>15} {:>10}",
            v.replace("01_01", "01_03"),
            "qemu/100",
            "keep"
        ),
        format!(
            "{:<w$} {:>15} {:>10}",
            v.replace("01_01", "01_02").replace("-100-", "-101-"),
            "qemu/101",
            "keep"
        ),
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn from_job_uses_the_covering_jobs_retention() {
    let jobs = [
        json!({"kind": "job", "id": "backup-prod", "all": true, "exclude": [102], "enabled": true, "storage": "local",
               "prune_backups": {"keep-last": 2}}),
        json!({"kind": "job", "id": "backup-lab", "vmid": [101], "enabled": true, "storage": "local",
               "prune_backups": {"keep-last": "1"}}),
    ];
    let mut input: Vec<Value> = jobs.to_vec();
    for vmid in [100, 101, 102] {
        for day in 1..=3 {
            input.push(backup(vmid, day, false));
        }
    }
    let out = pvedr_testkit::run_ok(
        bin("backup-prune")
            .arg("--from-job")
            .write_stdin(stream(&input)),
    );
    let recs = json_lines(&out.stdout);
    let kept = |vmid: u64| {
        recs.iter()
            .filter(|r| r["vmid"] == vmid && r["mark"] == "keep")
            .count()
    };
    // 101 is covered by both; the first enabled job on its storage wins (backup-prod: 2).
    assert_eq!((kept(100), kept(101), kept(102)), (2, 2, 3));
    let r102: Vec<&Value> = recs.iter().filter(|r| r["vmid"] == 102).collect();
    assert!(r102.iter().all(|r| r["reason"] == "no-job"));
    stderr_says(&out, "qemu/102: no backup job covers this guest");
}

#[test]
fn from_job_without_job_records_says_to_add_with_jobs() {
    let input: Vec<Value> = (1..=3).map(|day| backup(100, day, false)).collect();
    let out = pvedr_testkit::run_code(
        bin("backup-prune")
            .arg("--from-job")
            .write_stdin(stream(&input)),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("add --with-jobs"), "{err}");
    assert!(
        !err.contains("no backup job covers"),
        "no per-guest warning: {err}"
    );
}

#[test]
fn dry_run_and_yes_are_accepted_without_apply() {
    let out = pvedr_testkit::run_ok(
        bin("backup-prune")
            .args(["--keep-last", "1", "--dry-run", "--yes"])
            .write_stdin(stream(&[backup(100, 1, false), backup(100, 2, false)])),
    );
    assert_eq!(json_lines(&out.stdout).len(), 2);
}

/// Records of other kinds as Proxmox and other tools give them: `tags` as pvesh prints them
/// (a `;`-separated string, possibly empty), and a `job` this tool cannot read.
fn other_kinds() -> Vec<Value> {
    vec![
        json!({"kind": "guest", "vmid": 100, "type": "qemu", "node": "pve1", "name": "web01",
               "status": "running", "tags": "prod;web"}),
        json!({"kind": "guest", "vmid": 101, "type": "lxc", "node": "pve1", "tags": ""}),
        json!({"kind": "job", "id": 7, "enabled": "maybe"}),
    ]
}

#[test]
fn records_of_other_kinds_as_proxmox_gives_them_pass_through_untouched() {
    let mut input = other_kinds();
    input.insert(1, backup(100, 1, false));
    input.push(backup(100, 2, false));
    let out = pvedr_testkit::run_code(
        bin("backup-prune")
            .args(["--keep-last", "1", "--timezone", "UTC"])
            .write_stdin(stream(&input)),
        0,
    );
    let recs = json_lines(&out.stdout);
    assert_eq!(recs.len(), input.len());
    for i in [0, 2, 3] {
        assert_eq!(recs[i], input[i], "passed through as it came");
    }
    assert_eq!(
        (recs[1]["mark"].as_str(), recs[4]["mark"].as_str()),
        (Some("remove"), Some("keep"))
    );
}
