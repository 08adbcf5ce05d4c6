//! The man page is current and complete.

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_of::<backup_prune::Cli>(&[
        "mark",
        "reason",
        "renamed",
        "SAFETY",
        "keep\\-weekly",
    ]);
}
