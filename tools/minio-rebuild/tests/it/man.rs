//! The man page is current and complete.

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_of::<minio_rebuild::Cli>(&[
        "STEPS",
        "verify-backends",
        "/minio/health/ready",
        "AWS_ENDPOINT_URL_S3",
        "lineage",
    ]);
}
