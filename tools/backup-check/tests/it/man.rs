//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_names(
        "backup-check",
        backup_check::Cli::command(),
        &[
            "CHECKS",
            "freshness",
            "coverage",
            "integrity",
            "pvedr_backup_storage_used_ratio",
            "UNKNOWN",
        ],
    );
}
