//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_names(
        "backup-prune",
        backup_prune::Cli::command(),
        &["mark", "reason", "renamed", "SAFETY", "keep\\-weekly"],
    );
}
