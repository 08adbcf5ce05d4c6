//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_names(
        "pve-restore",
        pve_restore::Cli::command(),
        &["SAFETY", "safety_point", "way_back", "keep-all=1"],
    );
}
