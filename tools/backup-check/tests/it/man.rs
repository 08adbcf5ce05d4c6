//! The man page is current and complete.

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_of::<backup_check::Cli>(&[
        "CHECKS",
        "freshness",
        "coverage",
        "integrity",
        "pvedr_backup_storage_used_ratio",
        "UNKNOWN",
    ]);
}
