//! `--terraform-dir`: the store really comes back through `terraform apply
//! -target=module.minio`. The test's module is a `terraform_data` whose `local-exec`
//! provisioner starts a moto S3 server on loopback (no provider can be downloaded here).

use std::path::{Path, PathBuf};
use std::time::Duration;

use pvedr_testkit::s3::{HungTerraform, still_running, venv_bin, wait_bounded};

use crate::common::{free_port, run, statuses, steps, tool};

/// Kills the server the provisioner started (its pid is in `pidfile`), however the test ends.
struct Started {
    pidfile: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile) {
            let pid = pid.trim();
            if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
                // The shell's own kill: no procps needed.
                let _ = std::process::Command::new("sh")
                    .args(["-c", &format!("kill {pid}")])
                    .status();
            }
        }
    }
}

fn deploy_dir(dir: &Path, port: u16, pidfile: &Path) {
    let module = dir.join("minio");
    std::fs::create_dir_all(&module).expect("module dir");
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "module \"minio\" {{\n  source  = \"./minio\"\n  server  = \"{}\"\n  port    = {port}\n  pidfile = \"{}\"\n}}\n",
            venv_bin("moto_server", "PVEDR_MOTO_SERVER").display(),
            pidfile.display()
        ),
    )
    .expect("main.tf");
    std::fs::write(
        module.join("main.tf"),
        r#"variable "server" { type = string }
variable "port" { type = number }
variable "pidfile" { type = string }

# Plays the MinIO container: starts an S3 server on loopback, in its own session, its
# output away from Terraform's pipes.
resource "terraform_data" "server" {
  input = var.port
  provisioner "local-exec" {
    command = "setsid '${var.server}' -H 127.0.0.1 -p ${var.port} </dev/null >/dev/null 2>&1 & echo $! > '${var.pidfile}'"
  }
}
"#,
    )
    .expect("module");
}

#[test]
fn reprovision_brings_the_store_back_with_terraform() {
    let port = free_port();
    let ep = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tmp");
    let pidfile = dir.path().join("server.pid");
    let _started = Started {
        pidfile: pidfile.clone(),
    };
    deploy_dir(dir.path(), port, &pidfile);
    let rebuild = |extra: &[&str]| {
        let mut c = tool(&ep);
        c.args(["--env", "prod", "--wait", "60s", "--terraform-dir"])
            .arg(dir.path())
            .args(extra);
        c
    };
    // A dry run shows the plan and applies nothing.
    let out = run(&mut rebuild(&["--dry-run"]), 0);
    let s = steps(&out);
    assert_eq!(statuses(&s, "health"), ["skipped"]);
    assert_eq!(statuses(&s, "reprovision"), ["planned"]);
    let m = s[1]["message"].as_str().unwrap_or("");
    assert!(m.contains("Plan: 1 to add"), "{m}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("module.minio.terraform_data.server"));
    assert!(!pidfile.exists(), "nothing applied");
    // The real run applies module.minio, waits for the server, and rebuilds.
    let out = run(&mut rebuild(&["--yes"]), 0);
    let s = steps(&out);
    assert_eq!(statuses(&s, "reprovision"), ["changed"], "{s:?}");
    assert_eq!(statuses(&s, "wait"), ["ok"]);
    assert_eq!(statuses(&s, "buckets"), ["changed"]);
    assert!(pidfile.exists(), "the provisioner ran");
    // Healthy now: a rerun leaves Terraform alone.
    let out = run(&mut rebuild(&["--yes"]), 0);
    let s = steps(&out);
    assert_eq!(statuses(&s, "reprovision"), ["skipped"]);
    assert!(s.iter().all(|r| r["status"] != "changed"), "{s:?}");
}

/// `minio-rebuild` reprovisioning an unreachable store with a Terraform that hangs in `plan`.
fn hung_rebuild(tf: &HungTerraform, extra: &[&str]) -> std::process::Child {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("main.tf"), "").expect("main.tf");
    let ep = format!("http://127.0.0.1:{}", free_port());
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("minio-rebuild"))
        .envs(crate::common::env())
        .args(["--endpoint", &ep, "--env", "prod", "--wait", "1s", "--yes"])
        .arg("--terraform-dir")
        .arg(dir.path())
        .arg("--terraform-bin")
        .arg(tf.bin())
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // The directory outlives the run: the child reads it.
    std::mem::forget(dir);
    child
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status();
}

/// The message of the failed `reprovision` step.
fn reprovision_failed(out: &std::process::Output) -> String {
    let s = steps(out);
    let r = s
        .iter()
        .find(|r| r["step"] == "reprovision")
        .expect("record");
    assert_eq!(r["status"], "failed", "{r}");
    r["message"].as_str().unwrap_or("").to_string()
}

/// The rebuild `child` ends with `code` (within 30 s), having asked the hung Terraform
/// (`hung`) to stop with SIGINT, and Terraform is gone: the failed reprovision's message
/// and stderr.
fn stopped(
    tf: &HungTerraform,
    child: std::process::Child,
    hung: u32,
    code: i32,
) -> (String, String) {
    let out = wait_bounded(child, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(tf.got_sigint(), "terraform was not asked to stop (SIGINT)");
    assert!(!still_running(hung), "terraform outlived the tool");
    (reprovision_failed(&out), err)
}

/// A rebuild whose `terraform init` hangs (ignoring SIGINT when `deaf`), once it hangs:
/// the Terraform, the tool's process and the pids of both.
fn hung_init(deaf: bool) -> (HungTerraform, std::process::Child, u32, u32) {
    let tf = HungTerraform::new(&["init"], deaf);
    let child = hung_rebuild(&tf, &[]);
    let (tool, hung) = (child.id(), tf.started());
    (tf, child, tool, hung)
}

#[test]
fn a_signal_stops_a_hung_terraform_and_says_what_it_left() {
    let (tf, child, tool, hung) = hung_init(false);
    signal(tool, "-TERM");
    let (m, err) = stopped(&tf, child, hung, 130);
    assert!(m.contains("interrupted") && m.contains("lock"), "{m}");
    assert!(err.contains("asked to stop (SIGINT), it stopped"), "{err}");
}

#[test]
fn a_second_signal_kills_a_terraform_that_ignores_the_first() {
    let (tf, child, tool, hung) = hung_init(true);
    signal(tool, "-INT");
    // Forwarded, and ignored: the tool waits out its grace; a second signal ends it now.
    tf.wait_sigint();
    signal(tool, "-INT");
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!still_running(hung), "terraform outlived the tool");
}

#[test]
fn a_terraform_past_its_timeout_is_stopped() {
    let tf = HungTerraform::new(&["init"], false);
    let child = hung_rebuild(&tf, &["--terraform-timeout", "1s"]);
    let hung = tf.started();
    let (m, _) = stopped(&tf, child, hung, 1);
    assert!(m.contains("did not finish within 1s"), "{m}");
}
