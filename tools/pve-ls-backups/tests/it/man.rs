//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_names(
        "pve-ls-backups",
        pve_ls_backups::Cli::command(),
        &[
            "volid",
            "vmid",
            "subtype",
            "ctime",
            "protected",
            "verification",
            "log_status",
            "used_fraction",
            "prune_backups",
        ],
    );
}
