//! Many read-only commands in one round trip: a small `sh` script runs them in parallel
//! (at most [`PARALLEL`] at a time), then prints each one's exit status, standard output and
//! standard error, framed by byte counts so no output can be mistaken for a frame.

use std::time::Duration;

use super::{CommandOutput, RemoteCommand};

/// How many commands run at once on the node (each pvesh is a Perl process of ~100 MB).
const PARALLEL: usize = 8;
const FRAME: &str = "@pvedr-batch@";

/// Exit status of a command stopped by coreutils `timeout`.
pub const TIMED_OUT: i32 = 124;

/// How many rounds of [`PARALLEL`] commands a batch of `n` takes.
pub fn waves(n: usize) -> u32 {
    u32::try_from(n.div_ceil(PARALLEL).max(1)).unwrap_or(u32::MAX)
}

/// The longest any command of the batch may take: its own bound, else `each`.
pub fn longest(cmds: &[RemoteCommand], each: Duration) -> Duration {
    cmds.iter()
        .map(|c| c.timeout.unwrap_or(each))
        .max()
        .unwrap_or(each)
}

/// The script; each command is stopped after its own bound, else `each` (coreutils
/// `timeout`, where the node has it).
pub fn script(cmds: &[RemoteCommand], each: Duration) -> String {
    let mut s = String::from("d=$(mktemp -d) || exit 97\ntrap 'rm -rf \"$d\"' EXIT\n");
    s.push_str("if command -v timeout >/dev/null 2>&1; then t=\"timeout -k 5\"; else t=; fi\n");
    for (i, c) in cmds.iter().enumerate() {
        let secs = c.timeout.unwrap_or(each).as_secs().max(1);
        s.push_str(&format!(
            "{{ ${{t:+$t {secs}}} {} </dev/null >\"$d/{i}.o\" 2>\"$d/{i}.e\"; echo $? >\"$d/{i}.s\"; }} &\n",
            c.line()
        ));
        if (i + 1) % PARALLEL == 0 {
            s.push_str("wait\n");
        }
    }
    s.push_str("wait\n");
    s.push_str(&format!(
        "i=0; while [ $i -lt {n} ]; do printf '{FRAME} %s %s %s %s\\n' $i \"$(cat \"$d/$i.s\")\" $(wc -c <\"$d/$i.o\") $(wc -c <\"$d/$i.e\"); cat \"$d/$i.o\" \"$d/$i.e\"; i=$((i+1)); done\n",
        n = cmds.len()
    ));
    s
}

pub fn parse(out: &CommandOutput, n: usize) -> Result<Vec<CommandOutput>, String> {
    if out.status != 0 {
        return Err(format!(
            "the batch shell failed with status {}: {}",
            out.status,
            out.stderr.trim()
        ));
    }
    let buf = &out.stdout;
    let mut pos = 0;
    let mut result = Vec::with_capacity(n);
    for i in 0..n {
        let nl = buf[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("missing frame {i}"))?;
        let header = String::from_utf8_lossy(&buf[pos..pos + nl]).to_string();
        pos += nl + 1;
        let f: Vec<&str> = header.split_whitespace().collect();
        let num = |k: usize| -> Result<usize, String> {
            f.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad frame header '{header}'"))
        };
        if f.first() != Some(&FRAME) || num(1)? != i {
            return Err(format!("bad frame header '{header}'"));
        }
        let status = f
            .get(2)
            .and_then(|v| v.parse::<i32>().ok())
            .ok_or_else(|| format!("bad frame header '{header}'"))?;
        let (no, ne) = (num(3)?, num(4)?);
        if pos + no + ne > buf.len() {
            return Err(format!("frame {i} is truncated"));
        }
        let stdout = buf[pos..pos + no].to_vec();
        let mut stderr = String::from_utf8_lossy(&buf[pos + no..pos + no + ne]).into_owned();
        if status == TIMED_OUT && stderr.trim().is_empty() {
            // Under a run's deadline the bound may be that deadline's rest, not the flag's.
            let bound = if crate::deadline::left().is_some() {
                "--command-timeout, cut to end within the run's --timeout"
            } else {
                "--command-timeout"
            };
            stderr = format!("no answer within the command timeout ({bound}); stopped");
        }
        pos += no + ne;
        result.push(CommandOutput {
            status,
            stdout,
            stderr,
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn runs_in_parallel_and_keeps_outputs_apart() {
        let mut cmds: Vec<RemoteCommand> = (0..10)
            .map(|i| {
                RemoteCommand::read([
                    "sh",
                    "-c",
                    &format!(
                        "printf 'out {i}\\n@pvedr-batch@ 99'; echo err{i} >&2; exit {}",
                        i % 3
                    ),
                ])
            })
            .collect();
        cmds.push(RemoteCommand::read(["printf", "%s", "it's"]));
        let out = Command::new("sh")
            .arg("-c")
            .arg(script(&cmds, Duration::from_secs(60)))
            .output()
            .expect("sh");
        let o = CommandOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        };
        let parsed = parse(&o, cmds.len()).expect("parse");
        for (i, p) in parsed.iter().take(10).enumerate() {
            assert_eq!(p.status, (i % 3) as i32);
            assert_eq!(p.stdout, format!("out {i}\n@pvedr-batch@ 99").into_bytes());
            assert_eq!(p.stderr, format!("err{i}\n"));
        }
        assert_eq!(parsed[10].stdout, b"it's");
    }
}
