//! Hostile-input suite (issue 16, first bullet): tables of hostile values × every place
//! they reach, across the eight tools. Each case runs a built binary against the simulator
//! over a real sshd (or `--dir` dumps / an unreachable S3 endpoint) and asserts: a
//! documented exit code, no panic, a bound (timeout), stderr prefixed with the tool's name,
//! stdout only JSON Lines, and no mutating command in the simulator's `commands.log`.

#![allow(clippy::unwrap_used)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use pvedr_testkit::{SimNode, Sshd, bin, demo_over_ssh};

mod s3_server;

/// Hostile argv values (no NUL: the OS refuses it in argv).
fn argv_values() -> Vec<OsString> {
    let mut v: Vec<OsString> = [
        "x;touch /tmp/pvedr-hostile-pwned",
        "$(touch /tmp/pvedr-hostile-pwned)",
        "`id`",
        "a|b",
        "a&&b",
        "'\"",
        "--help",
        "-rf",
        "--all",
        "a\nb",
        "a\rb",
        "../../etc/passwd",
        "*",
        "",
        " ",
        "100 101",
        "99999999999999999999999",
        "-1",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    v.push(OsStr::from_bytes(b"\xff\xfe\x80").to_owned());
    v.push(OsStr::from_bytes(b"ok\xc3(").to_owned());
    v
}

/// Documented exit codes of each tool (man/*.1, EXIT STATUS), 130 aside.
fn documented(tool: &str) -> &'static [i32] {
    match tool {
        "backup-check" => &[0, 1, 2, 3],
        // 4: a site's RTO over --rto-target (man pve-restore).
        "pve-restore" => &[0, 1, 2, 3, 4],
        _ => &[0, 1, 2, 3],
    }
}

struct Case {
    tool: &'static str,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    env: Vec<(String, OsString)>,
    /// The code this case should exit with; a different documented code is a finding.
    want: Option<i32>,
    label: String,
}

/// Runs every case; returns (hard failures, exit-code findings).
fn run_all(sim: &SimNode, cases: &[Case]) -> (Vec<String>, Vec<String>) {
    let mut hard = Vec::new();
    let mut soft = Vec::new();
    let _ = std::fs::remove_file("/tmp/pvedr-hostile-pwned");
    for c in cases {
        sim.clear_commands();
        let mut cmd = bin(c.tool);
        cmd.args(&c.args).timeout(Duration::from_secs(20));
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        cmd.write_stdin(c.stdin.clone().unwrap_or_default());
        let out = match cmd.output() {
            Ok(o) => o,
            Err(e) => {
                hard.push(format!("{}: did not run: {e}", c.label));
                continue;
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        let tag = format!("{} [{}] {:?}", c.label, c.tool, c.args);
        match code {
            None => hard.push(format!(
                "{tag}: killed (timeout or signal); stderr {stderr}"
            )),
            Some(101) => hard.push(format!("{tag}: exit 101 (panic): {stderr}")),
            Some(n) if !documented(c.tool).contains(&n) => {
                hard.push(format!("{tag}: undocumented exit {n}: {stderr}"));
            }
            Some(n) => {
                if let Some(w) = c.want
                    && w != n
                {
                    soft.push(format!("{tag}: exit {n}, expected {w}: {}", stderr.trim()));
                }
                if n != 0 && !stderr.trim().is_empty() {
                    let prefixed = stderr.lines().filter(|l| !l.trim().is_empty()).all(|l| {
                        l.starts_with(&format!("{}:", c.tool))
                            || l.starts_with(' ')
                            || l.starts_with("Usage")
                            || l.starts_with("For more")
                            || l.starts_with("  ")
                    });
                    if !prefixed
                        && !stderr.contains(&format!("{}:", c.tool))
                        && !stderr.starts_with("error:")
                    {
                        soft.push(format!(
                            "{tag}: stderr not prefixed with the tool name: {stderr:?}"
                        ));
                    }
                }
                // backup-check's WARNING and CRITICAL are verdicts, given on stdout.
                let verdict = c.tool == "backup-check" && (n == 1 || n == 2);
                if n != 0 && stderr.trim().is_empty() && !verdict {
                    soft.push(format!("{tag}: exit {n} with an empty stderr"));
                }
            }
        }
        if stderr.contains("panicked") {
            hard.push(format!("{tag}: panicked: {stderr}"));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if !serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()) {
                hard.push(format!(
                    "{tag}: stdout line is not a JSON object: {line:.200}"
                ));
                break;
            }
        }
        let m = sim.mutations();
        if !m.is_empty() {
            hard.push(format!("{tag}: REMOTE CHANGE: {m:?}"));
        }
        if std::path::Path::new("/tmp/pvedr-hostile-pwned").exists() {
            hard.push(format!("{tag}: a shell ran the injected command"));
            let _ = std::fs::remove_file("/tmp/pvedr-hostile-pwned");
        }
    }
    (hard, soft)
}

fn report(name: &str, n: usize, hard: &[String], soft: &[String]) {
    eprintln!(
        "{name}: {n} cases, {} failures, {} findings",
        hard.len(),
        soft.len()
    );
    for s in soft {
        eprintln!("FINDING {s}");
    }
    assert!(hard.is_empty(), "{name}:\n{}", hard.join("\n"));
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

fn ssh_args(sshd: &Sshd) -> Vec<OsString> {
    sshd.args().into_iter().map(OsString::from).collect()
}

/// `tool PRE` over `sshd`, fed `stdin`: a case that may end with any documented code.
fn fed_over_ssh(
    sshd: &Sshd,
    tool: &'static str,
    pre: &[&str],
    stdin: Vec<u8>,
    label: String,
) -> Case {
    let mut args = ssh_args(sshd);
    args.extend(pre.iter().map(|s| os(s)));
    Case {
        tool,
        args,
        stdin: Some(stdin),
        env: vec![],
        want: None,
        label,
    }
}

/// A real `backup` record from the simulator, as a JSON object.
fn a_backup_record(sshd: &Sshd) -> serde_json::Value {
    let out = sshd
        .bin("pve-ls-backups")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_owned)
        .unwrap_or_default();
    serde_json::from_str(&line).unwrap_or_else(|_| serde_json::json!({"kind":"backup","node":"pve1","storage":"local","volid":"local:backup/vzdump-qemu-100-2024_01_14-01_00_00.vma.zst","vmid":100,"subtype":"qemu","ctime":1705194000}))
}

/// Argv places that reach a node, per tool (a value × every place).
#[rustfmt::skip]
fn argv_places() -> Vec<(&'static str, Vec<&'static str>, &'static str, Option<i32>)> {
    // (tool, fixed args before, flag, expected code); expected None = any documented one.
    vec![
        ("pve-ls-backups", vec![], "--node", None),
        ("pve-ls-backups", vec![], "--storage", None),
        ("pve-ls-backups", vec![], "--vmid", Some(2)),
        ("pve-ls-backups", vec![], "--since", Some(2)),
        ("pve-ls-backups", vec![], "--until", Some(2)),
        ("pve-ls-backups", vec![], "--timezone", Some(2)),
        ("backup-check", vec![], "--node", None),
        ("backup-check", vec![], "--storage", None),
        ("backup-check", vec![], "--max-age", Some(3)),
        ("backup-check", vec![], "--timezone", Some(3)),
        ("backup-check", vec![], "--tfstate", None),
        ("backup-check", vec![], "--size-window", Some(3)),
        ("backup-check", vec![], "--size-shrink", Some(3)),
        ("pve-restore", vec!["--dry-run"], "--vmid", Some(2)),
        ("pve-restore", vec!["--dry-run", "--vmid", "100"], "--volid", None),
        ("pve-restore", vec!["--dry-run", "--vmid", "100"], "--node", None),
        ("pve-restore", vec!["--dry-run", "--vmid", "100"], "--storage", None),
        ("pve-restore", vec!["--dry-run", "--vmid", "100"], "--date", Some(2)),
        ("pve-restore", vec!["--dry-run", "--vmid", "100", "--target-vmid", "9100"], "--target-storage", None),
        ("pve-restore", vec!["--dry-run", "--vmid", "100", "--target-vmid", "9100"], "--target-bridge", None),
        ("pve-restore", vec!["--dry-run", "--vmid", "100"], "--snapshot", None),
        ("pve-restore", vec!["--dry-run", "--vmid", "100", "--start"], "--probe", Some(2)),
        ("pve-snapshot", vec!["create", "--dry-run"], "--vmid", Some(2)),
        ("pve-snapshot", vec!["create", "--dry-run", "--vmid", "100"], "--label", Some(2)),
        ("pve-snapshot", vec!["create", "--dry-run"], "--pool", None),
        ("pve-snapshot", vec!["create", "--dry-run"], "--tag", None),
        ("pve-snapshot", vec!["ls"], "--vmid", Some(2)),
        ("backup-prune", vec!["--keep-last", "1"], "--node", None),
    ]
}

#[test]
fn argv_values_over_ssh() {
    let (sim, sshd) = demo_over_ssh();
    let mut cases = Vec::new();
    for (tool, pre, flag, want) in argv_places() {
        for v in argv_values() {
            let mut args: Vec<OsString> = vec![];
            if tool == "pve-snapshot" {
                args.push(os(pre[0]));
                args.extend(ssh_args(&sshd));
                args.extend(pre[1..].iter().map(|s| os(s)));
            } else {
                args.extend(ssh_args(&sshd));
                args.extend(pre.iter().map(|s| os(s)));
            }
            args.push(os(flag));
            args.push(v.clone());
            let stdin = (tool == "backup-prune").then(Vec::new);
            cases.push(Case {
                tool,
                args,
                stdin,
                env: vec![],
                want,
                label: format!("argv {flag}"),
            });
        }
    }
    let (h, s) = run_all(&sim, &cases);
    report("argv_values_over_ssh", cases.len(), &h, &s);
}

#[test]
fn host_values() {
    let sim = SimNode::demo();
    let mut cases = Vec::new();
    for tool in ["pve-ls-backups", "backup-check", "pve-restore"] {
        for v in argv_values() {
            let mut args = vec![os("--host"), v, os("--connect-timeout"), os("2s")];
            if tool == "pve-restore" {
                args.extend([os("--dry-run"), os("--vmid"), os("100")]);
            }
            cases.push(Case {
                tool,
                args,
                stdin: None,
                env: vec![],
                want: None,
                label: "argv --host".into(),
            });
        }
    }
    let (h, s) = run_all(&sim, &cases);
    report("host_values", cases.len(), &h, &s);
}

/// S3 tools: hostile bucket, key, version id, --env, --workspace against an unreachable
/// endpoint (a value must be refused or fail cleanly; nothing may hang).
#[test]
fn s3_values() {
    let sim = SimNode::empty();
    let ep = "http://127.0.0.1:9";
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), os("x")),
        ("AWS_SECRET_ACCESS_KEY".to_string(), os("y")),
        ("AWS_MAX_ATTEMPTS".to_string(), os("1")),
    ];
    let mut cases = Vec::new();
    #[rustfmt::skip]
    let places: Vec<(&str, Vec<&str>, &str)> = vec![
        ("tfstate-versions", vec!["list", "--endpoint", ep, "--env", "prod"], "--bucket"),
        ("tfstate-versions", vec!["list", "--endpoint", ep, "--bucket", "b"], "--env"),
        ("tfstate-versions", vec!["list", "--endpoint", ep, "--bucket", "b", "--env", "prod"], "--key"),
        ("tfstate-versions", vec!["list", "--endpoint", ep, "--bucket", "b", "--env", "prod"], "--workspace"),
        ("tfstate-versions", vec!["show", "--endpoint", ep, "--bucket", "b", "--env", "prod", "--"], ""),
        ("backup-sync", vec!["ls", "--endpoint", ep], "--to"),
        ("minio-rebuild", vec!["--dry-run", "--endpoint", ep, "--bucket", "b"], "--env"),
        ("minio-rebuild", vec!["--dry-run", "--endpoint", ep, "--env", "prod"], "--bucket"),
    ];
    for (tool, pre, flag) in places {
        for v in argv_values() {
            let mut args: Vec<OsString> = pre.iter().map(|s| os(s)).collect();
            if !flag.is_empty() {
                args.push(os(flag));
            }
            args.push(v);
            let label = format!("s3 {flag}");
            cases.push(Case {
                tool,
                args,
                stdin: None,
                env: env.clone(),
                want: None,
                label,
            });
        }
    }
    let (h, s) = run_all(&sim, &cases);
    report("s3_values", cases.len(), &h, &s);
}

/// Records on stdin with a hostile node/storage/volid/vmid, into the tools that act on them.
#[test]
fn hostile_record_fields() {
    let (sim, sshd) = demo_over_ssh();
    let base = a_backup_record(&sshd);
    let mut vals: Vec<serde_json::Value> = argv_values()
        .iter()
        .map(|v| serde_json::Value::String(v.to_string_lossy().into_owned()))
        .collect();
    vals.push(serde_json::Value::String("a\0b".into()));
    vals.push(serde_json::json!(-1));
    vals.push(serde_json::json!(1e300));
    vals.push(serde_json::json!([1]));
    vals.push(serde_json::json!({"a":1}));
    vals.push(serde_json::Value::Null);
    let mut cases = Vec::new();
    for field in ["node", "storage", "volid", "vmid"] {
        for v in &vals {
            let mut r = base.clone();
            r[field] = v.clone();
            let line = format!("{}\n", r).into_bytes();
            #[rustfmt::skip]
            let readers: [(&str, &[&str]); 3] = [
                ("backup-prune", &["--keep-last", "0", "--apply", "--yes", "--force"]),
                ("pve-restore", &["--dry-run"]),
                ("backup-check", &[]),
            ];
            for (tool, pre) in readers {
                let label = format!("record {field}={v}");
                cases.push(fed_over_ssh(&sshd, tool, pre, line.clone(), label));
            }
            let mut args = vec![os("push"), os("--yes")];
            args.extend(ssh_args(&sshd));
            args.extend([
                os("--to"),
                os("s3://bucket/p"),
                os("--endpoint"),
                os("http://127.0.0.1:9"),
            ]);
            cases.push(Case {
                tool: "backup-sync",
                args,
                stdin: Some(line),
                env: vec![
                    ("AWS_ACCESS_KEY_ID".into(), os("x")),
                    ("AWS_SECRET_ACCESS_KEY".into(), os("y")),
                ],
                want: None,
                label: format!("record {field}={v}"),
            });
        }
    }
    let (h, s) = run_all(&sim, &cases);
    // A prune --apply of a hostile record may delete nothing: run_all checks mutations.
    report("hostile_record_fields", cases.len(), &h, &s);
}

/// Malformed JSON Lines on stdin.
#[test]
fn malformed_json_lines() {
    let (sim, sshd) = demo_over_ssh();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("10MB line", {
            let mut v = b"{\"kind\":\"backup\",\"notes\":\"".to_vec();
            v.extend(std::iter::repeat_n(b'a', 10 << 20));
            v.extend(b"\"}\n");
            v
        }),
        ("100k [", {
            let mut v = vec![b'['; 100_000];
            v.push(b'\n');
            v
        }),
        (
            "duplicate keys",
            br#"{"kind":"backup","vmid":100,"vmid":"x;id","node":"pve1","node":"-rf"}"#.to_vec(),
        ),
        (
            "wrong kind",
            b"{\"kind\":\"guest\",\"vmid\":100}\n".to_vec(),
        ),
        ("kind number", b"{\"kind\":7}\n".to_vec()),
        ("array", b"[1,2,3]\n".to_vec()),
        (
            "binary junk",
            (0..4096u32).map(|i| (i * 37 % 256) as u8).collect(),
        ),
        ("NUL", b"{\"kind\":\"backup\"}\0\n".to_vec()),
        ("truncated", b"{\"kind\":\"backup\",\"vmid\":".to_vec()),
        (
            "invalid utf8",
            b"{\"kind\":\"backup\",\"node\":\"\xff\xfe\"}\n".to_vec(),
        ),
    ];
    let mut cases = Vec::new();
    for (name, data) in &inputs {
        #[rustfmt::skip]
        let readers: [(&str, &[&str]); 4] = [
            ("backup-prune", &["--keep-last", "1", "--apply", "--yes", "--force"]),
            ("backup-prune", &["--keep-last", "1"]),
            ("pve-restore", &["--dry-run"]),
            ("backup-check", &[]),
        ];
        for (tool, pre) in readers {
            let label = format!("stdin {name}");
            cases.push(fed_over_ssh(&sshd, tool, pre, data.clone(), label));
        }
    }
    let (h, s) = run_all(&sim, &cases);
    report("malformed_json_lines", cases.len(), &h, &s);
}

/// What a broken or hostile node could print for a `pvesh get` (exit 0): not JSON, wrong
/// shapes and types, missing fields, shell text in names, huge numbers, deep nesting, a
/// huge value.
fn pvesh_outputs() -> Vec<(&'static str, String)> {
    let pwn = "touch /tmp/pvedr-hostile-pwned";
    vec![
        ("not JSON", "not json at all\n".into()),
        ("empty", String::new()),
        ("object", "{}".into()),
        ("numbers", "[1,2,3]".into()),
        ("API envelope", r#"{"data":[{"volid":"local:backup/x"}]}"#.into()),
        (
            "wrong types",
            r#"[{"volid":5,"ctime":"x","node":[],"storage":{},"type":7,"vmid":{"a":1},"status":false}]"#.into(),
        ),
        (
            "shell in names",
            format!(
                r#"[{{"storage":"x;{pwn}","type":"dir","content":"backup","active":1,"enabled":1,"node":"$({pwn})","name":"$({pwn})","online":1,"local":1,"id":"node/$({pwn})","vmid":"100;{pwn}"}}]"#
            ),
        ),
        (
            "shell in a volid",
            format!(
                r#"[{{"volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst\n;{pwn}","ctime":1,"format":"vma.zst","content":"backup","vmid":100}},{{"volid":"-rf:backup/$({pwn})","ctime":2,"format":"vma","content":"backup"}}]"#
            ),
        ),
        (
            "huge numbers",
            r#"[{"volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst","ctime":99999999999999999999999,"size":-1,"vmid":-5,"content":"backup","format":"vma.zst","total":1e400,"used":-1}]"#.into(),
        ),
        ("deep nesting", "[".repeat(100_000)),
        ("10 MB value", format!("[\"{}\"]", "a".repeat(10 << 20))),
    ]
}

/// A tool, its arguments before the connection's, and whether records are piped in.
type Run = (&'static str, Vec<&'static str>, bool);

#[test]
fn hostile_pvesh_output() {
    let (sim, sshd) = demo_over_ssh();
    let records: Vec<u8> = sshd
        .bin("pve-ls-backups")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
        .stdout;
    // The path a fault replaces, and the runs that read it.
    let places: Vec<(&str, Vec<Run>)> = vec![
        (
            "get /cluster/status",
            vec![
                ("pve-ls-backups", vec!["--all-nodes"], false),
                ("pve-snapshot", vec!["ls"], false),
            ],
        ),
        (
            "get /nodes/localhost/time",
            vec![("pve-ls-backups", vec![], false)],
        ),
        (
            "/storage --content backup",
            vec![("backup-check", vec![], false)],
        ),
        (
            "/content --content backup",
            vec![
                ("pve-ls-backups", vec![], false),
                ("pve-restore", vec!["--dry-run", "--vmid", "100"], false),
                (
                    "backup-prune",
                    vec!["--keep-last", "1", "--apply", "--yes", "--force"],
                    true,
                ),
            ],
        ),
        (
            "get /cluster/resources",
            vec![
                ("pve-ls-backups", vec!["--with-guests"], false),
                ("pve-snapshot", vec!["ls"], false),
            ],
        ),
        ("get /cluster/backup", vec![("backup-check", vec![], false)]),
    ];
    let mut n = 0;
    let (mut hard, mut soft) = (Vec::new(), Vec::new());
    for (name, output) in pvesh_outputs() {
        for (needle, runs) in &places {
            // A 10 MB fault file is read by every simulated command: once, on the listing.
            if name == "10 MB value" && !needle.contains("content") {
                continue;
            }
            sim.set_faults(
                serde_json::json!([{"match": needle, "stdout": output, "stderr": "", "exit": 0}]),
            );
            let cases: Vec<Case> = runs
                .iter()
                .map(|(tool, pre, piped)| {
                    let mut args: Vec<OsString> = pre.iter().map(|s| os(s)).collect();
                    args.extend(ssh_args(&sshd));
                    Case {
                        tool,
                        args,
                        stdin: piped.then(|| records.clone()),
                        env: vec![],
                        want: None,
                        label: format!("pvesh output {name} at {needle}"),
                    }
                })
                .collect();
            n += cases.len();
            let (h, s) = run_all(&sim, &cases);
            hard.extend(h);
            soft.extend(s);
        }
    }
    sim.set_faults(serde_json::json!([]));
    report("hostile_pvesh_output", n, &hard, &soft);
}

/// What a hostile or broken S3 server could hold: state versions that are not states
/// (not JSON, wrong types, 100,000 `[`, 12 MB), and offsite copies whose manifests name
/// paths outside the target directory, lie about sizes, are huge or not JSON, under keys
/// with shell text and newlines. Read by `tfstate-versions` and `backup-sync ls|pull`.
#[test]
fn hostile_s3_objects() {
    use pvedr_testkit::s3::Moto;
    let sim = SimNode::empty();
    let moto = Moto::start();
    moto.create_versioned_bucket("tfstate-h");
    moto.boto(
        "tfstate-h",
        r#"
good = json.dumps({"version": 4, "serial": 1, "lineage": "l", "resources": []})
for body in [good, "not json", "{}", json.dumps({"version": 4, "serial": "x", "lineage": 5}),
             json.dumps({"version": 4, "serial": 2, "lineage": "l", "resources": {"a": 1}}),
             "[" * 100000,
             json.dumps({"version": 4, "serial": 3, "lineage": "l", "resources": [], "x": "a" * (12 << 20)}),
             json.dumps({"version": 4, "serial": 99999999999999999999999, "lineage": "l"}),
             "not json at the top"]:
    s3.put_object(Bucket=B, Key="terraform.tfstate", Body=body.encode())
"#,
    );
    let versions = moto.boto(
        "tfstate-h",
        "print('\\n'.join(v['VersionId'] for v in s3.list_object_versions(Bucket=B)['Versions']))",
    );
    let before = moto.version_count("tfstate-h", "terraform.tfstate");
    moto.create_versioned_bucket("off");
    let pwn = "touch /tmp/pvedr-hostile-pwned";
    moto.boto(
        "off",
        &format!(
            r#"
def manifest(archive, key, **kw):
    m = {{"manifest": 1, "archive": archive, "key": key, "size": 3, "sha256": "0" * 64, "vmid": 100,
         "subtype": "qemu", "format": "vma.zst", "ctime": 1705284002, "source_volid": "local:backup/" + archive,
         "pushed": "2024-01-15T03:00:00Z"}}
    m.update(kw)
    return json.dumps(m).encode()
name = "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst"
cases = {{
    "px/" + name: manifest("../../../tmp/pvedr-hostile-escape", "px/" + name),
    "px/a/" + name: manifest(name, "px/a/" + name, side_files=[{{"name": "../../escape.log", "key": "px/a/x", "size": 1, "sha256": "0" * 64}}]),
    "px/b/" + name: b"not json",
    "px/c/" + name: b"{{" + b" " * (2 << 20) + b"}}",
    "px/d/" + name: manifest(name, "px/d/" + name, size=-1, vmid="x", ctime=1e400),
    "px/e;{pwn}/" + name: manifest(name, "px/e;{pwn}/" + name, node="$({pwn})", storage="-rf"),
    "px/f/" + name: manifest(name + "\n;{pwn}", "px/f/" + name),
    "px/g/" + name: manifest(name, "px/g/" + name, size=3),
    "px/j/" + name: manifest(name, "px/j/" + name, size=18446744073709551615),
}}
# Archives that verify (size and sha256 right) whose side files name other files.
import hashlib
abc = hashlib.sha256(b"abc").hexdigest()
other = "vzdump-qemu-100-2024_01_14-02_00_02.vma.zst"
for d, victim in [("h", other), ("i", name), ("k", other + ".notes")]:
    k = "px/%s/%s" % (d, name)
    s3.put_object(Bucket=B, Key="px/%s/%s" % (d, victim), Body=b"abc")
    cases[k] = manifest(name, k, sha256=abc, side_files=[{{"name": victim, "key": "px/%s/%s" % (d, victim), "size": 3, "sha256": abc}}])
for k, m in cases.items():
    s3.put_object(Bucket=B, Key=k, Body=b"abc")
    s3.put_object(Bucket=B, Key=k + ".manifest.json", Body=m)
s3.put_object(Bucket=B, Key="px/g/" + name, Body=b"abcdef")
# A manifest whose archive object is gone: not a copy (ls), uploaded again (push).
k = "px/m/100/" + name
s3.put_object(Bucket=B, Key=k + ".manifest.json", Body=manifest(name, k, sha256=abc))
"#
        ),
    );
    let ep = moto.endpoint();
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), os("test")),
        ("AWS_SECRET_ACCESS_KEY".to_string(), os("testtest")),
        ("AWS_REGION".to_string(), os("us-east-1")),
    ];
    let tf = |rest: &[&str]| -> Vec<OsString> {
        let mut a: Vec<OsString> = ["--endpoint", &ep, "--bucket", "tfstate-h"]
            .iter()
            .map(|s| os(s))
            .collect();
        a.extend(rest.iter().map(|s| os(s)));
        a
    };
    let mut cases = vec![
        (tf(&["list"]), None),
        (tf(&["list", "--inspect"]), None),
        (
            tf(&[
                "diff",
                "--",
                versions.lines().last().unwrap_or(""),
                versions.lines().next().unwrap_or(""),
            ]),
            None,
        ),
    ];
    for v in versions.lines() {
        cases.push((tf(&["restore", "--yes", "--", v]), None));
    }
    let export = tempfile::tempdir().expect("tmp");
    let mut a = tf(&["export", "--to"]);
    a.push(export.path().as_os_str().to_owned());
    cases.push((a, None));
    let listing = bin("backup-sync")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["ls", "--endpoint", &ep, "--from", "s3://off/px"])
        .timeout(Duration::from_secs(30))
        .output()
        .expect("ls")
        .stdout;
    // The copies whose manifests parse are listed (and go on to the pull): the pull is
    // tested on them, not on an empty input. Sizes that lie are damaged copies, not backups.
    let text = String::from_utf8_lossy(&listing);
    assert!(text.matches("\"kind\":\"backup\"").count() >= 6, "{text}");
    assert_eq!(
        text.matches("\"kind\":\"offsite_damaged\"").count(),
        3,
        "{text}"
    );
    let pulled = tempfile::tempdir().expect("tmp");
    let pull_dir = pulled.path().join("in");
    std::fs::create_dir(&pull_dir).expect("dir");
    // Files a forged side file names: they must stay as they are.
    let mine = [
        "vzdump-qemu-100-2024_01_14-02_00_02.vma.zst",
        "vzdump-qemu-100-2024_01_14-02_00_02.vma.zst.notes",
    ];
    for f in mine {
        std::fs::write(pull_dir.join(f), b"mine").expect("write");
    }
    cases.push((
        ["ls", "--endpoint", &ep, "--from", "s3://off/px"]
            .iter()
            .map(|s| os(s))
            .collect(),
        None,
    ));
    let mut a: Vec<OsString> = ["pull", "--yes", "--endpoint", &ep, "--force", "--to-dir"]
        .iter()
        .map(|s| os(s))
        .collect();
    a.push(pull_dir.as_os_str().to_owned());
    cases.push((a, Some(listing.clone())));
    // The same copies onto the node's storage over SSH, a symlink planted at the temporary
    // name a pull used to write through, the node's files named by forged side files.
    let sshd = Sshd::start(&sim);
    let dump = sim.dump_dir("local");
    std::fs::create_dir_all(&dump).expect("dump");
    for f in mine {
        std::fs::write(dump.join(f), b"mine").expect("write");
    }
    let planted = pulled.path().join("planted");
    std::os::unix::fs::symlink(
        &planted,
        dump.join(format!(
            ".{}.backup-sync.tmp",
            mine[0].replace("_14-", "_15-")
        )),
    )
    .expect("symlink");
    let mut a: Vec<OsString> = [
        "pull",
        "--yes",
        "--endpoint",
        &ep,
        "--force",
        "--to-node",
        "pve1",
        "--storage",
        "local",
    ]
    .iter()
    .map(|s| os(s))
    .collect();
    a.extend(ssh_args(&sshd));
    cases.push((a, Some(listing)));
    // push of an archive whose offsite object is gone, its manifest left: uploaded again.
    let src = pulled.path().join("src");
    std::fs::create_dir(&src).expect("dir");
    let name = "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";
    std::fs::write(src.join(name), b"abc").expect("write");
    let record = format!(
        "{{\"kind\":\"backup\",\"node\":\"m\",\"storage\":\"local\",\"volid\":\"local:backup/{name}\",\"vmid\":100,\"subtype\":\"qemu\",\"ctime\":1705284002,\"size\":3,\"format\":\"vma.zst\"}}\n"
    );
    let mut a: Vec<OsString> = [
        "push",
        "--yes",
        "--endpoint",
        &ep,
        "--to",
        "s3://off/px",
        "--dir",
    ]
    .iter()
    .map(|s| os(s))
    .collect();
    a.push(src.as_os_str().to_owned());
    cases.push((a.clone(), Some(record.into_bytes())));
    // A record whose size is not the file's: nothing uploaded for it.
    let lying = format!(
        "{{\"kind\":\"backup\",\"node\":\"n\",\"storage\":\"local\",\"volid\":\"local:backup/{name}\",\"vmid\":100,\"subtype\":\"qemu\",\"ctime\":1705284002,\"size\":4,\"format\":\"vma.zst\"}}\n"
    );
    cases.push((a, Some(lying.into_bytes())));
    let cases: Vec<Case> = cases
        .into_iter()
        .map(|(args, stdin)| Case {
            tool: if args
                .first()
                .is_some_and(|a| a == "ls" || a == "pull" || a == "push")
            {
                "backup-sync"
            } else {
                "tfstate-versions"
            },
            args,
            stdin,
            env: env.clone(),
            want: None,
            label: "hostile S3 object".into(),
        })
        .collect();
    let (mut h, s) = run_all(&sim, &cases);
    let after = moto.version_count("tfstate-h", "terraform.tfstate");
    if after < before {
        h.push(format!(
            "state versions lost: {before} before, {after} after"
        ));
    }
    for escaped in ["/tmp/pvedr-hostile-escape"] {
        if std::path::Path::new(escaped).exists() {
            h.push(format!("a pull wrote outside its directory: {escaped}"));
            let _ = std::fs::remove_file(escaped);
        }
    }
    // Every manifest lies about the size, the checksum or a side file: nothing may be put
    // in place, nothing already there replaced.
    let kept: Vec<_> = std::fs::read_dir(&pull_dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if kept.len() != mine.len() {
        h.push(format!("a pull put unverified files in place: {kept:?}"));
    }
    for f in mine {
        for d in [&pull_dir, &dump] {
            if std::fs::read(d.join(f)).ok().as_deref() != Some(&b"mine"[..]) {
                h.push(format!(
                    "a pull replaced {} through a forged side file",
                    d.join(f).display()
                ));
            }
        }
    }
    let gone = format!("px/m/100/{name}");
    let back = moto.boto(
        "off",
        &format!("print(s3.list_objects_v2(Bucket=B, Prefix={gone:?}).get('KeyCount', 0))"),
    );
    if back.trim() == "0" {
        h.push(format!("push skipped {gone}, whose archive object is gone"));
    }
    let lied = moto.boto(
        "off",
        "print(s3.list_objects_v2(Bucket=B, Prefix='px/n/').get('KeyCount', 0))",
    );
    if lied.trim() != "0" {
        h.push("push uploaded a file whose size is not its record's".into());
    }
    if planted.exists() {
        h.push("a pull --to-node wrote through a planted symlink".into());
    }
    if pulled.path().join("escape.log").exists() {
        h.push("a side file was written outside the pull directory".into());
    }
    report("hostile_s3_objects", cases.len(), &h, &s);
}

/// (label, args after the tool's own, environment, what stderr must say)
type ApiCase<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>, &'a str);

/// The API options given hostile files and secrets: `/dev/zero` or a FIFO as `--ca`,
/// `PVEDR_CA` or `--token-secret-file`, a secret pasted into `--token`, a password in
/// `--api` or `PVEDR_API` (plain and percent-encoded). Each run must end promptly with a
/// documented code and a clear error, and never print the secret.
#[test]
fn hostile_api_options() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let fifo = fifo.to_string_lossy().into_owned();
    const PASTED: &str = "7d1c0e2f-pasted-secret";
    let url = "https://127.0.0.1:9";
    let token = ["--api", url, "--token", "pvedr@pve!check"];
    let with = |extra: &[&str]| -> Vec<String> {
        token.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let secret = ("PVEDR_TOKEN_SECRET", "0123-4567");
    let cases: Vec<ApiCase> = vec![
        (
            "--ca /dev/zero",
            with(&["--ca", "/dev/zero"]),
            vec![secret],
            "not a regular file",
        ),
        (
            "PVEDR_CA=/dev/zero",
            with(&[]),
            vec![secret, ("PVEDR_CA", "/dev/zero")],
            "not a regular file",
        ),
        (
            "--ca FIFO",
            with(&["--ca", &fifo]),
            vec![secret],
            "not a regular file",
        ),
        (
            "--token-secret-file FIFO",
            with(&["--token-secret-file", &fifo]),
            vec![],
            "not a regular file",
        ),
        (
            "--token-secret-file /dev/zero",
            with(&["--token-secret-file", "/dev/zero"]),
            vec![],
            "not a regular file",
        ),
        (
            "--token ID=SECRET",
            vec![
                "--api".into(),
                url.into(),
                "--token".into(),
                format!("pvedr@pve!check={PASTED}"),
            ],
            vec![secret],
            "not shown",
        ),
        (
            "--api with a password",
            vec![
                "--api".into(),
                format!("https://root:{PASTED}@127.0.0.1:9"),
                "--token".into(),
                "pvedr@pve!check".into(),
            ],
            vec![secret],
            "not shown",
        ),
        (
            "--api with an encoded password",
            vec![
                "--api".into(),
                "https://root:7d1c0e2f%2Dpasted%2Dsecret@127.0.0.1:9".into(),
                "--token".into(),
                "pvedr@pve!check".into(),
            ],
            vec![secret],
            "not shown",
        ),
        (
            "PVEDR_API with a password",
            vec!["--token".into(), "pvedr@pve!check".into()],
            vec![
                secret,
                (
                    "PVEDR_API",
                    "https://root:7d1c0e2f-pasted-secret@127.0.0.1:9",
                ),
            ],
            "not shown",
        ),
    ];
    let tools: [(&str, &[&str]); 4] = [
        ("pve-ls-backups", &[]),
        ("backup-check", &[]),
        ("pve-snapshot", &["ls"]),
        ("pve-restore", &["--vmid", "100", "--dry-run"]),
    ];
    let mut hard = Vec::new();
    for (tool, pre) in tools {
        for (label, args, env, says) in &cases {
            let mut cmd = bin(tool);
            cmd.args(pre)
                .args(args)
                .env_remove("PVEDR_TOKEN_SECRET")
                .timeout(Duration::from_secs(20));
            for (k, v) in env {
                cmd.env(k, v);
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let all = format!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
            let tag = format!("{tool} {label}");
            match out.status.code() {
                Some(1..=3) => {}
                c => hard.push(format!(
                    "{tag}: exit {c:?} (none: killed at the timeout): {stderr}"
                )),
            }
            for s in [PASTED, "7d1c0e2f%2Dpasted", "0123-4567"] {
                if all.contains(s) {
                    hard.push(format!("{tag}: printed a secret: {all}"));
                }
            }
            if !stderr.contains(says) || !stderr.starts_with(&format!("{tool}:")) {
                hard.push(format!("{tag}: stderr does not say '{says}': {stderr}"));
            }
        }
    }
    report("hostile_api_options", tools.len() * cases.len(), &hard, &[]);
}

/// minio-rebuild and tfstate-versions against what a hostile user, export directory or
/// server hands them: env and bucket names that make no valid bucket (a usage error, before
/// anything is contacted); a FIFO or a `/dev/zero` symlink beside an export (a clean
/// failure, nothing uploaded, no hang); a Terraform that hangs (stopped at
/// `--terraform-timeout`, gone when the tool exits); a lineage and a file name with a
/// terminal escape and a newline (never raw on stdout or stderr, no forged line).
#[test]
fn hostile_state_store_inputs() {
    use pvedr_testkit::s3::{HungTerraform, Moto, still_running};
    let sim = SimNode::empty();
    let moto = Moto::start();
    moto.create_versioned_bucket("tfstate-prod");
    let ep = moto.endpoint();
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), os("test")),
        ("AWS_SECRET_ACCESS_KEY".to_string(), os("testtest")),
        ("AWS_REGION".to_string(), os("us-east-1")),
    ];
    let case = |tool: &'static str, args: Vec<OsString>, want: Option<i32>, label: &str| Case {
        tool,
        args,
        stdin: None,
        env: env.clone(),
        want,
        label: label.into(),
    };
    // A name that makes no valid bucket: a usage error.
    let usage = |tool, args: &[&str], label| {
        case(tool, args.iter().map(|s| os(s)).collect(), Some(2), label)
    };
    let mut cases = Vec::new();
    for bad in ["..", "a..b", "prod-", ".prod", "prod."] {
        let rebuild = ["--endpoint", "http://127.0.0.1:9", "--yes", "--env", bad];
        cases.push(usage("minio-rebuild", &rebuild, "env name"));
        let list = ["--endpoint", "http://127.0.0.1:9", "--env", bad, "list"];
        cases.push(usage("tfstate-versions", &list, "env name"));
    }
    for bad in ["10.0.0.1", "-tfstate", "a.-b"] {
        let rebuild = ["--endpoint", "http://127.0.0.1:9", "--yes", "--bucket", bad];
        cases.push(usage("minio-rebuild", &rebuild, "bucket name"));
    }
    // One export per hostile file: prod.tfstate with its sha256, then one file replaced.
    let state = r#"{"version":4,"serial":1,"lineage":"l","resources":[]}"#;
    let exports = tempfile::tempdir().expect("tmp");
    for (i, (name, how)) in [
        ("sha256", "fifo"),
        ("sha256", "zero"),
        ("version", "fifo"),
        ("version", "zero"),
    ]
    .iter()
    .enumerate()
    {
        let d = exports.path().join(i.to_string());
        std::fs::create_dir(&d).expect("dir");
        std::fs::write(d.join("prod.tfstate"), state).expect("state");
        write_sha256(&d);
        std::fs::write(d.join("prod.tfstate.version"), "v1\n").expect("version");
        let p = d.join(format!("prod.tfstate.{name}"));
        std::fs::remove_file(&p).expect("rm");
        if *how == "fifo" {
            assert!(
                std::process::Command::new("mkfifo")
                    .arg(&p)
                    .status()
                    .is_ok_and(|s| s.success())
            );
        } else {
            std::os::unix::fs::symlink("/dev/zero", &p).expect("symlink");
        }
        let mut a: Vec<OsString> = ["--endpoint", &ep, "--env", "prod", "--yes", "--from"]
            .iter()
            .map(|s| os(s))
            .collect();
        a.push(d.into_os_string());
        cases.push(case("minio-rebuild", a, Some(1), "hostile export file"));
    }
    // A Terraform that hangs, against a store that is down.
    let hung = HungTerraform::new(&["init"], false);
    let tfdir = tempfile::tempdir().expect("tmp");
    std::fs::write(tfdir.path().join("main.tf"), "").expect("main.tf");
    let mut a: Vec<OsString> = ["--endpoint", "http://127.0.0.1:9", "--env", "prod", "--yes"]
        .iter()
        .map(|s| os(s))
        .collect();
    a.extend([
        os("--wait"),
        os("1s"),
        os("--terraform-timeout"),
        os("1s"),
        os("--terraform-dir"),
    ]);
    a.push(tfdir.path().as_os_str().to_owned());
    a.push(os("--terraform-bin"));
    a.push(hung.bin().into_os_string());
    cases.push(case("minio-rebuild", a, Some(1), "hung terraform"));
    let (mut h, s) = run_all(&sim, &cases);
    if moto.version_count("tfstate-prod", "terraform.tfstate") != 0 {
        h.push("a hostile export was uploaded".into());
    }
    let pid = std::fs::read_to_string(hung.dir.path().join("pid")).unwrap_or_default();
    if pid.trim().parse().is_ok_and(still_running) {
        h.push("a hung terraform outlived minio-rebuild".into());
    }
    // Text with an escape and a forged line: from S3 (a lineage) and from a file name.
    moto.boto(
        "tfstate-prod",
        r#"s3.put_object(Bucket=B, Key="terraform.tfstate", Body=json.dumps({"version": 4, "serial": 9, "lineage": "\u001b[2J\nminio-rebuild: forged", "resources": []}).encode())"#,
    );
    let d = exports.path().join("0");
    std::fs::remove_file(d.join("prod.tfstate.sha256")).expect("rm");
    write_sha256(&d);
    std::fs::write(d.join("x\u{1b}[31m\nminio-rebuild: forged.tfstate"), "{}").expect("write");
    for format in ["table", "jsonl"] {
        let out = bin("minio-rebuild")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args([
                "--endpoint",
                &ep,
                "--env",
                "prod",
                "--yes",
                "--format",
                format,
                "--from",
            ])
            .arg(&d)
            .timeout(Duration::from_secs(20))
            .output()
            .expect("run");
        for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(text);
            if text.contains('\u{1b}')
                || text.lines().any(|l| l.starts_with("minio-rebuild: forged"))
            {
                h.push(format!(
                    "--format {format}: a raw escape or a forged line on {name}: {text:?}"
                ));
            }
        }
    }
    report("hostile_state_store_inputs", cases.len() + 2, &h, &s);
}

/// `prod.tfstate.sha256` beside the export `dir`'s `prod.tfstate`, as `sha256sum` writes it.
fn write_sha256(dir: &std::path::Path) {
    let sum = std::process::Command::new("sha256sum")
        .arg(dir.join("prod.tfstate"))
        .output()
        .expect("sha256sum");
    std::fs::write(dir.join("prod.tfstate.sha256"), sum.stdout).expect("sum");
}

/// Runs `cmd`, killed after `within`: (exit code, none when killed; stdout; stderr).
fn ended(cmd: &mut assert_cmd::Command, within: Duration) -> (Option<i32>, String, String) {
    let out = cmd.timeout(within).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `pve-snapshot SUB <ssh flags> ARGS` under a bound: (exit code, stdout, stderr).
fn snapshot_run(sshd: &Sshd, sub: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut snapshot = bin("pve-snapshot");
    snapshot.arg(sub).args(sshd.args()).args(args);
    ended(&mut snapshot, Duration::from_secs(30))
}

const OURS: &str =
    "pve-snapshot: label daily, taken by pvedr pve-snapshot create (rotated by prune)";

/// Guest 100 holds pve-snapshot's `daily` snapshots of 12 to 15 January 2024 (02:00 each).
fn four_dailies(sim: &SimNode) -> Vec<String> {
    let names: Vec<String> = (12..=15)
        .map(|d| format!("daily-202401{d}-020000"))
        .collect();
    let mut g = sim.read_json("guests/100.json");
    let mut snaps = serde_json::Map::new();
    let mut parent: Option<&str> = None;
    for (i, n) in names.iter().enumerate() {
        let mut s =
            serde_json::json!({"snaptime": 1_705_024_800 + 86_400 * i as i64, "description": OURS});
        if let Some(p) = parent {
            s["parent"] = serde_json::json!(p);
        }
        snaps.insert(n.clone(), s);
        parent = Some(n);
    }
    g["snapshots"] = serde_json::Value::Object(snaps);
    g["config"]["parent"] = serde_json::json!(parent);
    sim.write_json("guests/100.json", &g);
    names
}

/// The snapshot list of guest 100 as a hostile node prints it: `entries` (name, snaptime as
/// JSON), then `current`.
fn snapshot_listing(entries: &[(&str, serde_json::Value)]) -> String {
    let mut v: Vec<serde_json::Value> = entries
        .iter()
        .map(|(n, t)| serde_json::json!({"name": n, "snaptime": t, "description": OURS, "vmstate": 0}))
        .collect();
    v.push(serde_json::json!({"name": "current", "description": "You are here!", "digest": "d", "running": 1, "parent": "daily-20240115-020000"}));
    serde_json::Value::Array(v).to_string()
}

/// A node that lists a snapshot twice, or gives the newest a snaptime of 0, text or a time
/// in the future (and an old one the future): prune --keep 2 keeps the two newest by the
/// time in their names, and removes only older ones.
#[test]
fn hostile_snapshot_lists() {
    let (sim, sshd) = demo_over_ssh();
    let t = |d: i64| serde_json::json!(1_705_024_800 + 86_400 * d);
    let lists: Vec<(&str, Vec<(&str, serde_json::Value)>)> = vec![
        (
            "newest twice, the copy dated 0",
            vec![
                ("daily-20240115-020000", serde_json::json!(0)),
                ("daily-20240112-020000", t(0)),
                ("daily-20240113-020000", t(1)),
                ("daily-20240114-020000", t(2)),
                ("daily-20240115-020000", t(3)),
            ],
        ),
        (
            "newest dated 0",
            vec![
                ("daily-20240112-020000", t(0)),
                ("daily-20240113-020000", t(1)),
                ("daily-20240114-020000", t(2)),
                ("daily-20240115-020000", serde_json::json!(0)),
            ],
        ),
        (
            "newest dated in text",
            vec![
                ("daily-20240112-020000", t(0)),
                ("daily-20240113-020000", t(1)),
                ("daily-20240114-020000", t(2)),
                ("daily-20240115-020000", serde_json::json!("yesterday")),
            ],
        ),
        (
            "oldest dated in the future",
            vec![
                ("daily-20240112-020000", serde_json::json!(4_102_444_800u64)),
                ("daily-20240113-020000", t(1)),
                ("daily-20240114-020000", t(2)),
                ("daily-20240115-020000", t(3)),
            ],
        ),
    ];
    let mut hard = Vec::new();
    for (what, entries) in &lists {
        let names = four_dailies(&sim);
        sim.set_faults(serde_json::json!([{"match": "qemu/100/snapshot", "stdout": snapshot_listing(entries), "stderr": "", "exit": 0}]));
        let (code, out, err) = snapshot_run(
            &sshd,
            "prune",
            &["--vmid", "100", "--label", "daily", "--keep", "2", "--yes"],
        );
        let left: Vec<String> = sim.read_json("guests/100.json")["snapshots"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for keep in &names[2..] {
            if !left.contains(keep) {
                hard.push(format!(
                    "{what}: {keep} (one of the 2 newest) was removed; exit {code:?}; {err}"
                ));
            }
        }
        for line in out.lines().filter(|l| l.contains(&names[3])) {
            if !line.contains("\"mark\":\"keep\"") {
                hard.push(format!("{what}: the newest is not marked keep: {line}"));
            }
        }
        if !matches!(code, Some(0 | 3)) || err.contains("panicked") {
            hard.push(format!("{what}: exit {code:?}: {err}"));
        }
    }
    sim.set_faults(serde_json::json!([]));
    report("hostile_snapshot_lists", lists.len(), &hard, &[]);
}

/// Every pve-snapshot failure is said on stderr, `pve-snapshot:`, with the guest and node.
#[test]
fn snapshot_failures_are_said() {
    let (sim, sshd) = demo_over_ssh();
    let mut hard = Vec::new();
    let mut check = |what: &str, r: (Option<i32>, String, String), node: &str| {
        let (code, _, err) = r;
        let said = err
            .lines()
            .any(|l| l.starts_with("pve-snapshot:") && l.contains(" 100 on ") && l.contains(node));
        if !said || !matches!(code, Some(1 | 3)) {
            hard.push(format!("{what}: exit {code:?}, stderr {err:?}"));
        }
    };
    let create = ["--vmid", "100", "--yes"];
    sim.set_faults(serde_json::json!([{"match": "/nodes/pve1/time", "stdout": "garbage", "stderr": "", "exit": 0}]));
    check(
        "garbage node clock",
        snapshot_run(&sshd, "create", &create),
        "pve1",
    );
    sim.set_faults(serde_json::json!([]));
    sim.fail_when("qm snapshot", "got timeout", 255);
    check(
        "failed snapshot task",
        snapshot_run(&sshd, "create", &create),
        "pve1",
    );
    sim.set_faults(serde_json::json!([]));
    four_dailies(&sim);
    sim.fail_when("qm delsnapshot", "got timeout", 255);
    check(
        "failed removal",
        snapshot_run(&sshd, "prune", &["--vmid", "100", "--keep", "1", "--yes"]),
        "pve1",
    );
    sim.set_faults(serde_json::json!([]));
    sim.edit_guest(100, |g| {
        g["node"] = serde_json::json!("pve3");
    });
    check(
        "guest on an offline node",
        snapshot_run(&sshd, "create", &create),
        "pve3",
    );
    // Over the API, a server that answers a task id that is not one.
    let sim = SimNode::demo();
    let front = pvedr_testkit::ApiFront::start_with(&sim, &[("PVESIM_API_UPID", "UPID:$(id)")]);
    let secret = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
    front.add_token(
        "ops@pve!snap",
        secret,
        serde_json::json!([{"path": "/", "roles": ["Administrator"], "propagate": true}]),
    );
    let mut over_api = bin("pve-snapshot");
    over_api
        .args([
            "create",
            "--api",
            &front.url(),
            "--token",
            "ops@pve!snap",
            "--ca",
        ])
        .arg(front.ca_path())
        .env("PVEDR_TOKEN_SECRET", secret)
        .args(create);
    let r = ended(&mut over_api, Duration::from_secs(30));
    check("malformed UPID over the API", r, "pve1");
    report("snapshot_failures_are_said", 5, &hard, &[]);
}

/// A run into a full disk: tool, args, stdin, whether it talks to S3, the code it must exit with.
type FullRun = (&'static str, Vec<String>, Vec<u8>, bool, i32);

/// Runs `tool ARGS` with `/dev/full` as standard output (a full disk), stdin from `stdin`.
fn to_full_disk(
    tool: &str,
    args: &[String],
    env: &[(String, String)],
    stdin: &[u8],
) -> (Option<i32>, String) {
    let mut cmd = assert_cmd::Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" \"$@\" >/dev/full")
        .arg(assert_cmd::cargo::cargo_bin(tool))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .write_stdin(stdin.to_vec())
        .timeout(Duration::from_secs(30));
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A full disk on standard output is an error with a message and a documented non-zero
/// exit (1; 3 for the Nagios plugins), in every format, for every tool that prints records,
/// and for --help and --version of all eight; never a silent 0.
#[test]
fn stdout_on_a_full_disk() {
    use pvedr_testkit::s3::Moto;
    let (_sim, sshd) = demo_over_ssh();
    let moto = Moto::start();
    moto.create_versioned_bucket("tfstate-full");
    moto.boto(
        "tfstate-full",
        r#"
s3.put_object(Bucket=B, Key='terraform.tfstate', Body=json.dumps({'version': 4, 'serial': 1, 'lineage': 'l', 'resources': []}).encode())
name = "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst"
key = "off/pve1/local/" + name
s3.put_object(Bucket=B, Key=key, Body=b"abc")
s3.put_object(Bucket=B, Key=key + ".manifest.json", Body=json.dumps({"manifest": 1, "archive": name, "key": key, "size": 3,
    "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "vmid": 100, "subtype": "qemu",
    "format": "vma.zst", "ctime": 1705284002, "source_volid": "local:backup/" + name, "pushed": "2024-01-15T03:00:00Z"}).encode())
"#,
    );
    let ep = moto.endpoint();
    let s3_env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "testtest"),
        ("AWS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let records = sshd
        .bin("pve-ls-backups")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
        .stdout;
    let ssh = sshd.args();
    let with_ssh = |pre: &[&str], post: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
        v.extend(ssh.iter().cloned());
        v.extend(post.iter().map(|s| s.to_string()));
        v
    };
    let plain = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let mut runs: Vec<FullRun> = Vec::new();
    for format in ["jsonl", "table", "csv"] {
        let f = ["--format", format];
        runs.push(("pve-ls-backups", with_ssh(&[], &f), vec![], false, 1));
        runs.push(("backup-check", with_ssh(&[], &f), vec![], false, 3));
        runs.push(("pve-snapshot", with_ssh(&["ls"], &f), vec![], false, 1));
        runs.push((
            "pve-snapshot",
            with_ssh(&["ls"], &[&f[..], &["--max-age", "1d"]].concat()),
            vec![],
            false,
            3,
        ));
        runs.push((
            "backup-prune",
            plain(&[&f[..], &["--keep-last", "1"]].concat()),
            records.clone(),
            false,
            1,
        ));
        runs.push((
            "pve-restore",
            with_ssh(
                &[],
                &[
                    &f[..],
                    &["--dry-run", "--vmid", "100", "--target-id", "9100"],
                ]
                .concat(),
            ),
            vec![],
            false,
            1,
        ));
        runs.push((
            "tfstate-versions",
            plain(
                &[
                    &f[..],
                    &["--endpoint", &ep, "--bucket", "tfstate-full", "list"],
                ]
                .concat(),
            ),
            vec![],
            true,
            1,
        ));
        runs.push((
            "backup-sync",
            plain(
                &[
                    &["ls"],
                    &f[..],
                    &["--endpoint", &ep, "--from", "s3://tfstate-full/off"],
                ]
                .concat(),
            ),
            vec![],
            true,
            1,
        ));
    }
    runs.push((
        "backup-check",
        with_ssh(&[], &["--nagios"]),
        vec![],
        false,
        3,
    ));
    for tool in [
        "pve-ls-backups",
        "pve-restore",
        "backup-prune",
        "backup-check",
        "tfstate-versions",
        "minio-rebuild",
        "backup-sync",
        "pve-snapshot",
    ] {
        let code = if tool == "backup-check" { 3 } else { 1 };
        runs.push((tool, plain(&["--help"]), vec![], false, code));
        runs.push((tool, plain(&["--version"]), vec![], false, code));
    }
    let mut hard = Vec::new();
    for (tool, args, stdin, s3, want) in &runs {
        let env = if *s3 { s3_env.clone() } else { Vec::new() };
        let (code, err) = to_full_disk(tool, args, &env, stdin);
        let said = err.contains(&format!("{tool}: writing to standard output"));
        if code != Some(*want) || !said || err.contains("panicked") {
            hard.push(format!(
                "{tool} {args:?}: exit {code:?} (want {want}), stderr {err:?}"
            ));
        }
    }
    report("stdout_on_a_full_disk", runs.len(), &hard, &[]);
}

/// With --nagios (backup-check) or --max-age (pve-snapshot ls), a storage or guest that
/// does not answer (hung NFS) ends the run within --timeout, UNKNOWN, named; not after the
/// 5-minute --command-timeout, nor killed by Nagios at 60 s.
#[test]
fn nagios_plugins_end_within_their_timeout() {
    let (sim, sshd) = demo_over_ssh();
    let mut hard = Vec::new();
    sim.set_faults(serde_json::json!([{"match": "storage/nas/content", "sleep": 120}, {"match": "qemu/100/snapshot", "sleep": 120}]));
    let plugin = |tool: &str, args: &[&str]| {
        let started = std::time::Instant::now();
        let mut c = bin(tool);
        c.args(args).args(sshd.args()).args(["--timeout", "6s"]);
        let (code, out, err) = ended(&mut c, Duration::from_secs(40));
        (code, out, err, started.elapsed())
    };
    // Only the hung storage: nothing else can be judged; UNKNOWN, named.
    let (code, out, err, took) = plugin("backup-check", &["--nagios", "--storage", "nas"]);
    if code != Some(3)
        || !out.starts_with("BACKUP UNKNOWN - ")
        || !out.contains("nas")
        || out.lines().count() != 1
    {
        hard.push(format!(
            "backup-check --storage nas: exit {code:?} after {took:?}: {out:?} {err:?}"
        ));
    }
    // Every storage: the others are checked, the hung one is named in the status line.
    let (code, out, err, took) = plugin("backup-check", &["--nagios"]);
    if !matches!(code, Some(2 | 3))
        || !out.starts_with("BACKUP ")
        || !out.contains("storage nas on pve1")
    {
        hard.push(format!(
            "backup-check: exit {code:?} after {took:?}: {out:?} {err:?}"
        ));
    }
    let (code, _, err, took) = plugin("pve-snapshot", &["ls", "--max-age", "1d"]);
    if code != Some(3) || !err.contains("qemu 100 on pve1") {
        hard.push(format!(
            "pve-snapshot ls --max-age: exit {code:?} after {took:?}: {err:?}"
        ));
    }
    sim.set_faults(serde_json::json!([]));
    report("nagios_plugins_end_within_their_timeout", 3, &hard, &[]);
}

/// Contradictory sources and absurd counts are usage errors, and nothing is read: a FIFO
/// with no writer as the input would hang a tool that read it.
#[test]
fn contradictions_are_usage_errors() {
    let sim = SimNode::demo();
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("records");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo = fifo.display().to_string();
    let dump = sim.dump_dir("local").display().to_string();
    let huge = format!("keep-last={}", "9".repeat(100));
    let cases: Vec<(&str, Vec<&str>, i32)> = vec![
        ("backup-check", vec!["--local", "--dir", &dump], 3),
        ("backup-check", vec!["--local", &fifo], 3),
        ("backup-check", vec!["--dir", &dump, &fifo], 3),
        ("backup-prune", vec!["--prune-backups", &huge, &fifo], 2),
    ];
    let cases: Vec<Refused> = cases
        .into_iter()
        .map(|(tool, args, want)| Refused {
            tool,
            args,
            env: None,
            want,
            says: format!("{tool}: "),
        })
        .collect();
    let hard = refused_before_anything_runs(&sim, &cases);
    report("contradictions_are_usage_errors", cases.len(), &hard, &[]);
}

/// A command refused before anything runs: it exits `want` with nothing on stdout, its
/// stderr starting with `says`, and runs nothing on the node.
struct Refused<'a> {
    tool: &'a str,
    args: Vec<&'a str>,
    env: Option<(&'a str, &'a str)>,
    want: i32,
    says: String,
}

/// The cases that do not hold, each said.
fn refused_before_anything_runs(sim: &SimNode, cases: &[Refused]) -> Vec<String> {
    let mut hard = Vec::new();
    for c in cases {
        sim.clear_commands();
        let mut cmd = bin(c.tool);
        sim.apply_env(&mut cmd);
        if let Some((k, v)) = c.env {
            cmd.env(k, v);
        }
        let out = cmd
            .args(&c.args)
            .timeout(Duration::from_secs(10))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(c.want) || !out.stdout.is_empty() || !err.starts_with(&c.says)
        {
            hard.push(format!(
                "{} {:?} {:?}: exit {:?} (want {}), stdout {} bytes, stderr {err:?} (want {:?}…)",
                c.tool,
                c.args,
                c.env,
                out.status.code(),
                c.want,
                out.stdout.len(),
                c.says
            ));
        }
        if !sim.commands().is_empty() {
            hard.push(format!("{} {:?}: ran {:?}", c.tool, c.args, sim.commands()));
        }
    }
    hard
}

/// (tool, args, environment, the flag as clap names it, exit code)
type FlagCase<'a> = (
    &'a str,
    Vec<&'a str>,
    Option<(&'a str, &'a str)>,
    &'a str,
    i32,
);

/// A duration or size that does not parse is a usage error from clap, naming the flag as
/// its help does, before anything runs: no record, no command on the node (issue 22, point
/// 4). The S3 timeouts read from the environment are checked the same way.
#[test]
fn bad_durations_and_sizes_are_usage_errors_naming_the_flag() {
    let sim = SimNode::demo();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    #[rustfmt::skip]
    let cases: Vec<FlagCase> = vec![
        ("backup-sync", vec!["push", "--to", "s3://bucket/p", "--part-size", "8X"], None, "--part-size <SIZE>", 2),
        ("backup-sync", vec!["push", "--to", "s3://bucket/p", "--bwlimit", "fast"], None, "--bwlimit <RATE>", 2),
        ("backup-sync", vec!["verify", "--from", "s3://bucket/p", "--max-egress", "10Q"], None, "--max-egress <SIZE>", 3),
        ("backup-sync", vec!["ls", "--from", "s3://bucket/p"], Some(("PVEDR_S3_TIMEOUT", "soon")), "--s3-timeout <DURATION>", 2),
        ("tfstate-versions", vec!["--env", "x", "list", "--s3-read-timeout", "2d"], None, "--s3-read-timeout <DURATION>", 2),
        ("backup-prune", vec!["--keep-last", "1", "--s3-connect-timeout", "0s"], None, "--s3-connect-timeout <DURATION>", 2),
        ("minio-rebuild", vec!["--env", "x", "--wait", "5x"], None, "--wait <DURATION>", 2),
        ("minio-rebuild", vec!["--env", "x", "--terraform-timeout", "10M"], None, "--terraform-timeout <DURATION>", 2),
        ("tfstate-versions", vec!["fallback", "--dir", &dir, "--terraform-timeout", "0s"], None, "--terraform-timeout <DURATION>", 2),
        ("pve-snapshot", vec!["create", "--vmid", "100", "--wait-lock", "1y2"], None, "--wait-lock <DURATION>", 2),
        ("pve-snapshot", vec!["ls", "--max-age", "2x"], None, "--max-age <DURATION>", 3),
        ("pve-snapshot", vec!["ls", "--timeout", "0s"], None, "--timeout <DURATION>", 2),
        ("pve-ls-backups", vec!["--command-timeout", "10M"], None, "--command-timeout <DURATION>", 2),
        // backup-check and pve-restore took these as strings, parsed after the records were
        // read (or the node reached): now clap's usage error, as above.
        ("backup-check", vec!["--max-age", "2x"], None, "--max-age <DURATION>", 3),
        ("backup-check", vec!["--grace", "soon"], None, "--grace <DURATION>", 3),
        ("backup-check", vec!["--max-drill-age", "monthly"], None, "--max-drill-age <DURATION>", 3),
        ("backup-check", vec!["--timeout", "1M"], None, "--timeout <DURATION>", 3),
        ("backup-check", vec!["--storage-warn", "eighty"], None, "--storage-warn <PERCENT>", 3),
        ("backup-check", vec!["--size-window", "2"], None, "--size-window <N>", 3),
        ("backup-check", vec!["--size-shrink", "2"], None, "--size-shrink <FACTOR>", 3),
        ("pve-restore", vec!["--dry-run", "--vmid", "100", "--probe-timeout", "1x"], None, "--probe-timeout <DURATION>", 2),
        ("pve-restore", vec!["--dry-run", "--vmid", "100", "--wait-lock", "later"], None, "--wait-lock <DURATION>", 2),
        ("pve-restore", vec!["--dry-run", "--vmid", "100", "--drill-history-keep", "0"], None, "--drill-history-keep <DURATION|N>", 2),
        ("pve-restore", vec!["--all", "--rto-target", "4 hours-ish"], None, "--rto-target <DURATION>", 2),
    ];
    let cases: Vec<Refused> = cases
        .into_iter()
        .map(|(tool, args, env, flag, want)| {
            let value = env.map_or(args[args.len() - 1], |(_, v)| v);
            Refused {
                tool,
                args,
                env,
                want,
                says: format!("error: invalid value '{value}' for '{flag}'"),
            }
        })
        .collect();
    let hard = refused_before_anything_runs(&sim, &cases);
    report(
        "bad_durations_and_sizes_are_usage_errors_naming_the_flag",
        cases.len(),
        &hard,
        &[],
    );
}
