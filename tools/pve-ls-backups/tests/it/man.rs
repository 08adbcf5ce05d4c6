//! The man page is current and complete.

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_of::<pve_ls_backups::Cli>(&[
        "volid",
        "vmid",
        "subtype",
        "ctime",
        "protected",
        "verification",
        "log_status",
        "used_fraction",
        "prune_backups",
    ]);
}
