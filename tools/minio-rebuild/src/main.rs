use std::process::ExitCode;

fn main() -> ExitCode {
    pvedr::cli::main(
        "minio-rebuild",
        pvedr::ExitScheme::Standard,
        minio_rebuild::run,
    )
}
