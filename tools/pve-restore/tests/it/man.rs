//! The man page is current and complete.

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_of::<pve_restore::Cli>(&[
        "SAFETY",
        "safety_point",
        "way_back",
        "keep-all=1",
    ]);
}
