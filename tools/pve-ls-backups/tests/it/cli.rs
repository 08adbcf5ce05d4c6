//! Command-line behaviour that needs no node: usage errors, offline listing of a dump
//! directory, formats, pipes.

use std::fs;
use std::io::Read;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn tool() -> Command {
    Command::cargo_bin("pve-ls-backups").expect("binary")
}

/// The records before the `listing` record that ends every listing.
fn lines(out: &[u8]) -> Vec<Value> {
    pvedr_testkit::listed(out).0
}

/// A temporary dump directory with the cases Proxmox distinguishes ([`dump_dir`]).
fn dump() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    dump_dir(tmp.path());
    tmp
}

/// pve-ls-backups reading `dir` as a node in UTC would.
fn in_utc(dir: &Path) -> Command {
    let mut c = tool();
    c.arg("--dir").arg(dir).args(["--timezone", "UTC"]);
    c
}

/// A dump directory with the cases Proxmox distinguishes.
fn dump_dir(dir: &Path) {
    let w = |name: &str, data: &[u8]| fs::write(dir.join(name), data).expect("write");
    w("vzdump-qemu-100-2024_01_15-02_00_02.vma.zst", b"0123456789");
    w(
        "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst.notes",
        "web01 — prod\nsecond line".as_bytes(),
    );
    w(
        "vzdump-qemu-100-2024_01_15-02_00_02.log",
        b"2024-01-15 02:00:02 INFO: Starting Backup of VM 100 (qemu)\n2024-01-15 02:01:05 INFO: Finished Backup of VM 100 (00:01:03)\n",
    );
    w("vzdump-lxc-101-2024_01_15-02_01_07.tar.gz", b"xx");
    w("vzdump-lxc-101-2024_01_15-02_01_07.tar.gz.protected", b"");
    w("vzdump-qemu-100-manual-copy.vma.zst", b"y");
    w(
        "vzdump-qemu-102-2024_01_16-02_00_02.log",
        b"2024-01-16 02:00:02 INFO: Starting Backup of VM 102 (qemu)\n2024-01-16 02:00:03 ERROR: Backup of VM 102 failed - no space left on device\n",
    );
    w("vzdump-qemu-103-2024_01_16-03_00_00.vma.dat", b"partial");
    fs::create_dir(dir.join("vzdump-qemu-103-2024_01_16-03_00_00.tmp")).expect("mkdir");
    w("unrelated.txt", b"");
}

#[test]
fn offline_listing_reads_names_in_the_node_zone() {
    let tmp = dump();
    let out = pvedr_testkit::run_ok(tool().args(["--dir"]).arg(tmp.path()).args([
        "--storage",
        "nas",
        "--node",
        "pve1",
        "--timezone",
        "Europe/Paris",
    ]));
    let recs = lines(&out.stdout);
    let volids: Vec<&str> = recs
        .iter()
        .map(|r| r["volid"].as_str().unwrap_or(""))
        .collect();
    // Sorted by lower-cased volid; .log/.notes/.protected/.dat/.tmp never listed.
    assert_eq!(
        volids,
        [
            "nas:backup/vzdump-lxc-101-2024_01_15-02_01_07.tar.gz",
            "nas:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst",
            "nas:backup/vzdump-qemu-100-manual-copy.vma.zst",
        ]
    );
    let vm = &recs[1];
    assert_eq!(vm["kind"], "backup");
    assert_eq!(vm["node"], "pve1");
    assert_eq!(vm["storage"], "nas");
    assert_eq!(vm["vmid"], 100);
    assert_eq!(vm["subtype"], "qemu");
    assert_eq!(vm["format"], "vma.zst");
    // 02:00:02 in Paris in winter is 01:00:02 UTC.
    assert_eq!(vm["ctime"], 1705280402);
    assert_eq!(vm["time"], "2024-01-15T01:00:02Z");
    assert_eq!(vm["size"], 10);
    assert_eq!(vm["notes"], "web01 — prod");
    assert_eq!(vm["protected"], false);
    assert_eq!(vm["log_status"], "ok");
    let ct = &recs[0];
    assert_eq!(
        (ct["subtype"].as_str(), ct["format"].as_str()),
        (Some("lxc"), Some("tar.gz"))
    );
    assert_eq!(ct["protected"], true);
    // A non-standard name: vmid from the -NNN- pattern, time from the file.
    let odd = &recs[2];
    assert_eq!(odd["vmid"], 100);
    assert!(odd["ctime"].as_i64().unwrap_or(0) > 1_700_000_000);
    // The failed run of 102 is reported on stderr, and not as a backup.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed backup of qemu 102"), "{err}");
    assert!(err.contains("no space left on device"), "{err}");
}

#[test]
fn failures_become_records_on_request() {
    let tmp = dump();
    let out = in_utc(tmp.path())
        .args(["--with-failures", "--vmid", "102"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let recs = lines(&out.stdout);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["kind"], "backup_failure");
    assert_eq!(recs[0]["vmid"], 102);
    assert_eq!(recs[0]["ctime"], 1705370402);
    assert_eq!(
        recs[0]["error"],
        "Backup of VM 102 failed - no space left on device"
    );
}

#[test]
fn filters() {
    let tmp = dump();
    let run = |args: &[&str]| -> Vec<Value> {
        let out = pvedr_testkit::run_ok(in_utc(tmp.path()).args(args));
        lines(&out.stdout)
    };
    assert_eq!(run(&["--type", "lxc"]).len(), 1);
    assert_eq!(run(&["--vmid", "100"]).len(), 2);
    assert_eq!(run(&["--vmid", "100", "--latest"]).len(), 1);
    assert_eq!(run(&["--until", "2024-01-15"]).len(), 2);
    assert_eq!(
        run(&[
            "--since",
            "2024-01-15T02:00:30Z",
            "--until",
            "2024-01-15T03:00:00Z"
        ])
        .len(),
        1
    );
}

#[test]
fn bad_values_are_usage_errors() {
    for args in [
        vec!["--vmid", "100;touch /tmp/x"],
        vec!["--vmid", "99"],
        vec!["--node", "pve1;id"],
        vec!["--storage", "$(reboot)"],
        vec!["--since", "yesterday"],
        vec!["--timezone", "Mars/Olympus", "--dir", "."],
        vec!["--format", "xml"],
        vec!["--no-such-flag"],
    ] {
        tool()
            .args(&args)
            .env("PATH", "/nonexistent")
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty());
    }
}

#[test]
fn csv_has_a_header_row_and_table_is_aligned() {
    let tmp = dump();
    let out = in_utc(tmp.path())
        .args(["--format", "csv"])
        .output()
        .expect("run");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().expect("header").clone();
    assert_eq!(&headers[0], "node");
    assert!(headers.iter().any(|h| h == "volid"));
    assert_eq!(rdr.records().count(), 3);
    let out = in_utc(tmp.path())
        .args(["--format", "table"])
        .output()
        .expect("run");
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        text.lines()
            .next()
            .unwrap_or("")
            .starts_with("STORAGE  VMID"),
        "{text}"
    );
}

#[test]
fn closed_stdout_exits_quietly() {
    let tmp = tempfile::tempdir().expect("tmp");
    for i in 0..3000 {
        fs::write(
            tmp.path()
                .join(format!("vzdump-qemu-{}-2024_01_15-02_00_02.vma", 100 + i)),
            b"x",
        )
        .expect("write");
    }
    let mut child = pvedr_testkit::piped("pve-ls-backups")
        .arg("--dir")
        .arg(tmp.path())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("read");
    drop(stdout); // like `| head -c 16`
    let (err, status) = pvedr_testkit::rest_of(child);
    assert_eq!(status.code(), Some(0));
    assert_eq!(err, "");
}

#[test]
fn help_documents_exit_codes() {
    tool()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("EXIT STATUS"))
        .stdout(predicate::str::contains("--accept-new-host-key"));
}

/// Runs `args` with standard output (and input) on a terminal, through `script`'s pty.
fn on_a_terminal(args: &str) -> String {
    let line = format!(
        "{} {args} 2>/dev/null",
        env!("CARGO_BIN_EXE_pve-ls-backups")
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn a_terminal_gets_a_table_and_a_pipe_json_lines() {
    let tmp = dump();
    let dir = tmp.path().display();
    let people = on_a_terminal(&format!("--dir {dir} --timezone UTC"));
    let header = people.lines().next().unwrap_or("");
    assert!(
        header.starts_with("STORAGE") && header.contains("VOLID"),
        "{people}"
    );
    assert!(!people.contains("{\"kind\""), "{people}");
    // --format still decides.
    let json = on_a_terminal(&format!("--dir {dir} --timezone UTC --format jsonl"));
    assert!(json.starts_with("{\"kind\":\"backup\""), "{json}");
}

#[test]
fn dry_run_and_yes_are_accepted_and_change_nothing_in_the_listing() {
    // One vocabulary for every tool (a wrapper may pass --yes to all): a reader ignores them.
    let tmp = dump();
    let run = |extra: &[&str]| {
        pvedr_testkit::run_ok(
            tool()
                .arg("--dir")
                .arg(tmp.path())
                .args(["--timezone", "UTC"])
                .args(extra),
        )
        .stdout
    };
    let plain = lines(&run(&[]));
    assert!(!plain.is_empty());
    assert_eq!(lines(&run(&["--yes", "--dry-run"])), plain);
}
