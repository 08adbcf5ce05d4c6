//! The committed man page is what the binary generates, and it documents every flag, the
//! record fields and the exit codes.

use assert_cmd::Command;
use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    let out = Command::cargo_bin("pve-ls-backups")
        .expect("binary")
        .arg("--generate-man")
        .output()
        .expect("run");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf8");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../man/pve-ls-backups.1");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == committed,
        "man/pve-ls-backups.1 is out of date: run `make man`"
    );
    for arg in pve_ls_backups::Cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(generated.contains(&roff), "--{long} is not documented");
        }
    }
    for section in [".SH \"RECORDS\"", ".SH \"EXIT STATUS\"", ".SH \"EXAMPLES\""] {
        assert!(generated.contains(section), "missing {section}");
    }
    for field in [
        "volid",
        "vmid",
        "subtype",
        "ctime",
        "protected",
        "verification",
        "log_status",
    ] {
        assert!(
            generated.contains(field),
            "record field {field} not documented"
        );
    }
}
