//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page("backup-check", backup_check::Cli::command());
    let page = std::fs::read_to_string(pvedr_testkit::workspace_root().join("man/backup-check.1"))
        .expect("man page");
    for word in [
        "CHECKS",
        "freshness",
        "coverage",
        "integrity",
        "pvedr_backup_storage_used_ratio",
        "UNKNOWN",
    ] {
        assert!(page.contains(word), "{word} not documented");
    }
}
