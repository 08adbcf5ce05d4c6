//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page("backup-sync", backup_sync::Cli::command());
    let page = std::fs::read_to_string(pvedr_testkit::workspace_root().join("man/backup-sync.1"))
        .expect("man page");
    for word in ["manifest", "sha256", "skipped", "source_volid", "130"] {
        assert!(page.contains(word), "{word} not documented");
    }
}
