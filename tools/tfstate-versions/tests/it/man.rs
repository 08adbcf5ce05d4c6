//! The man page is current and complete.

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_of::<tfstate_versions::Cli>(&[
        "RESTORE OPTIONS",
        "tfstate_version",
        "AWS_ENDPOINT_URL_S3",
        "lineage",
    ]);
}
