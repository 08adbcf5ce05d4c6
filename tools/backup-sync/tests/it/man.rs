//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_names(
        "backup-sync",
        backup_sync::Cli::command(),
        &["manifest", "sha256", "skipped", "source_volid", "130"],
    );
}
