//! The man page is current and complete.

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_of::<backup_sync::Cli>(&[
        "manifest",
        "sha256",
        "skipped",
        "source_volid",
        "130",
    ]);
}
