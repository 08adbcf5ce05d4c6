//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page("minio-rebuild", minio_rebuild::Cli::command());
    let page = std::fs::read_to_string(pvedr_testkit::workspace_root().join("man/minio-rebuild.1"))
        .expect("man page");
    for word in [
        "STEPS",
        "verify-backends",
        "/minio/health/ready",
        "AWS_ENDPOINT_URL_S3",
        "lineage",
    ] {
        assert!(page.contains(word), "{word} not documented");
    }
}
