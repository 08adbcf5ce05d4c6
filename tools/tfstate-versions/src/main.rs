use std::process::ExitCode;

fn main() -> ExitCode {
    pvedr::cli::main(
        "tfstate-versions",
        pvedr::ExitScheme::Standard,
        tfstate_versions::run,
    )
}
