//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page("pve-ls-backups", pve_ls_backups::Cli::command());
    let page =
        std::fs::read_to_string(pvedr_testkit::workspace_root().join("man/pve-ls-backups.1"))
            .expect("man page");
    for field in [
        "volid",
        "vmid",
        "subtype",
        "ctime",
        "protected",
        "verification",
        "log_status",
        "used_fraction",
        "prune_backups",
    ] {
        assert!(page.contains(field), "record field {field} not documented");
    }
}
