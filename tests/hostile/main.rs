//! Hostile-input suite (issue 16, first bullet): tables of hostile values × every place
//! they reach, across the eight tools. Each case runs a built binary against the simulator
//! over a real sshd (or `--dir` dumps / an unreachable S3 endpoint) and asserts: a
//! documented exit code, no panic, a bound (timeout), stderr prefixed with the tool's name,
//! stdout only JSON Lines, and no mutating command in the simulator's `commands.log`.

#![allow(clippy::unwrap_used)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use pvedr_testkit::{SimNode, Sshd, bin};

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

/// A real `backup` record from the simulator, as a JSON object.
fn a_backup_record(sshd: &Sshd) -> serde_json::Value {
    let out = bin("pve-ls-backups")
        .args(sshd.args())
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
        ("pve-restore", vec!["--dry-run"], "--vmid", Some(2)),
        (
            "pve-restore",
            vec!["--dry-run", "--vmid", "100"],
            "--volid",
            None,
        ),
        (
            "pve-restore",
            vec!["--dry-run", "--vmid", "100"],
            "--node",
            None,
        ),
        (
            "pve-restore",
            vec!["--dry-run", "--vmid", "100"],
            "--storage",
            None,
        ),
        (
            "pve-restore",
            vec!["--dry-run", "--vmid", "100"],
            "--date",
            Some(2),
        ),
        (
            "pve-restore",
            vec!["--dry-run", "--vmid", "100"],
            "--snapshot",
            None,
        ),
        (
            "pve-restore",
            vec!["--dry-run", "--vmid", "100", "--start"],
            "--probe",
            Some(2),
        ),
        (
            "pve-snapshot",
            vec!["create", "--dry-run"],
            "--vmid",
            Some(2),
        ),
        (
            "pve-snapshot",
            vec!["create", "--dry-run", "--vmid", "100"],
            "--label",
            Some(2),
        ),
        ("pve-snapshot", vec!["create", "--dry-run"], "--pool", None),
        ("pve-snapshot", vec!["create", "--dry-run"], "--tag", None),
        ("pve-snapshot", vec!["ls"], "--vmid", Some(2)),
        ("backup-prune", vec!["--keep-last", "1"], "--node", None),
    ]
}

#[test]
fn argv_values_over_ssh() {
    let sim = SimNode::demo();
    let sshd = Sshd::start(&sim);
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
    let places: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "tfstate-versions",
            vec!["list", "--endpoint", ep, "--env", "prod"],
            "--bucket",
        ),
        (
            "tfstate-versions",
            vec!["list", "--endpoint", ep, "--bucket", "b"],
            "--env",
        ),
        (
            "tfstate-versions",
            vec!["list", "--endpoint", ep, "--bucket", "b", "--env", "prod"],
            "--key",
        ),
        (
            "tfstate-versions",
            vec!["list", "--endpoint", ep, "--bucket", "b", "--env", "prod"],
            "--workspace",
        ),
        (
            "tfstate-versions",
            vec![
                "show",
                "--endpoint",
                ep,
                "--bucket",
                "b",
                "--env",
                "prod",
                "--",
            ],
            "",
        ),
        ("backup-sync", vec!["ls", "--endpoint", ep], "--to"),
        (
            "minio-rebuild",
            vec!["--dry-run", "--endpoint", ep, "--bucket", "b"],
            "--env",
        ),
        (
            "minio-rebuild",
            vec!["--dry-run", "--endpoint", ep, "--env", "prod"],
            "--bucket",
        ),
    ];
    for (tool, pre, flag) in places {
        for v in argv_values() {
            let mut args: Vec<OsString> = pre.iter().map(|s| os(s)).collect();
            if !flag.is_empty() {
                args.push(os(flag));
            }
            args.push(v);
            cases.push(Case {
                tool,
                args,
                stdin: None,
                env: env.clone(),
                want: None,
                label: format!("s3 {flag}"),
            });
        }
    }
    let (h, s) = run_all(&sim, &cases);
    report("s3_values", cases.len(), &h, &s);
}

/// Records on stdin with a hostile node/storage/volid/vmid, into the tools that act on them.
#[test]
fn hostile_record_fields() {
    let sim = SimNode::demo();
    let sshd = Sshd::start(&sim);
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
            for (tool, pre) in [
                (
                    "backup-prune",
                    vec!["--keep-last", "0", "--apply", "--force"],
                ),
                ("pve-restore", vec!["--dry-run"]),
                ("backup-check", vec![]),
            ] {
                let mut args = ssh_args(&sshd);
                args.extend(pre.iter().map(|s| os(s)));
                cases.push(Case {
                    tool,
                    args,
                    stdin: Some(line.clone()),
                    env: vec![],
                    want: None,
                    label: format!("record {field}={v}"),
                });
            }
            let mut args = vec![os("push")];
            args.extend(ssh_args(&sshd));
            args.extend([
                os("--to"),
                os("s3://b/p"),
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
    let sim = SimNode::demo();
    let sshd = Sshd::start(&sim);
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
        for (tool, pre) in [
            (
                "backup-prune",
                vec!["--keep-last", "1", "--apply", "--force"],
            ),
            ("backup-prune", vec!["--keep-last", "1"]),
            ("pve-restore", vec!["--dry-run"]),
            ("backup-check", vec![]),
        ] {
            let mut args = ssh_args(&sshd);
            args.extend(pre.iter().map(|s| os(s)));
            cases.push(Case {
                tool,
                args,
                stdin: Some(data.clone()),
                env: vec![],
                want: None,
                label: format!("stdin {name}"),
            });
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
    let sim = SimNode::demo();
    let sshd = Sshd::start(&sim);
    let records: Vec<u8> = bin("pve-ls-backups")
        .args(sshd.args())
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
                    vec!["--keep-last", "1", "--apply", "--force"],
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
            sim.write_json(
                "faults.json",
                &serde_json::json!([{"match": needle, "stdout": output, "stderr": "", "exit": 0}]),
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
    sim.write_json("faults.json", &serde_json::json!([]));
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
    let mut a: Vec<OsString> = ["pull", "--endpoint", &ep, "--force", "--to-dir"]
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
    let mut a: Vec<OsString> = ["push", "--endpoint", &ep, "--to", "s3://off/px", "--dir"]
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
