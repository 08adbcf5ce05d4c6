//! Shell completions from the same clap definition as `--help` and the man page
//! (`<tool> --generate-completions bash|zsh|fish`).

use std::io::Write;

use clap_complete::Shell;

use crate::error::{Error, Result};

/// Writes the completion script of `cmd` for `shell` (`bash`, `zsh`, `fish`).
pub fn render_completions(mut cmd: clap::Command, shell: &str, out: &mut dyn Write) -> Result<()> {
    let sh = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => {
            return Err(Error::usage(format!(
                "--generate-completions: unknown shell '{}' (bash, zsh, fish)",
                other.escape_debug()
            )));
        }
    };
    let name = cmd.get_name().to_string();
    // clap_complete panics when its writer fails (`| head`): render into memory first.
    let mut script = Vec::new();
    clap_complete::generate(sh, &mut cmd, name, &mut script);
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to standard output", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_for_three_shells_and_a_clear_error_for_others() {
        let cmd = || clap::Command::new("tool").arg(clap::Arg::new("keep").long("keep"));
        for sh in ["bash", "zsh", "fish"] {
            let mut out = Vec::new();
            render_completions(cmd(), sh, &mut out).expect("renders");
            assert!(String::from_utf8_lossy(&out).contains("keep"), "{sh}");
        }
        assert!(render_completions(cmd(), "tcsh", &mut Vec::new()).is_err());
    }
}
