//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_complete() {
    pvedr_testkit::assert_man_page_names(
        "tfstate-versions",
        tfstate_versions::Cli::command(),
        &[
            "RESTORE OPTIONS",
            "tfstate_version",
            "AWS_ENDPOINT_URL_S3",
            "lineage",
        ],
    );
}
