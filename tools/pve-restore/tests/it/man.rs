//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page("pve-restore", pve_restore::Cli::command());
    let page = std::fs::read_to_string(pvedr_testkit::workspace_root().join("man/pve-restore.1"))
        .expect("man page");
    for word in ["SAFETY", "safety_point", "way_back", "keep-all=1"] {
        assert!(page.contains(word), "{word} not documented");
    }
}
