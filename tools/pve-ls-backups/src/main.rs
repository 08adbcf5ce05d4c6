use std::process::ExitCode;

fn main() -> ExitCode {
    pvedr::cli::main(
        "pve-ls-backups",
        pvedr::ExitScheme::Standard,
        pve_ls_backups::run,
    )
}
