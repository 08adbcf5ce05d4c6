//! Why a streamed archive did not arrive whole: a leaf, so the crate's `Error` can wrap it
//! without importing the pipeline.

/// Why a streamed archive did not arrive whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipeError {
    #[error("the archive's sha256 is {got}, its manifest says {expected}: the copy is damaged")]
    Sha256Mismatch { expected: String, got: String },
    #[error("the archive ended after {got} of its {expected} bytes: the copy is truncated")]
    Truncated { expected: u64, got: u64 },
    #[error("reading the archive failed after {at} bytes: {message}")]
    Source { at: u64, message: String },
    #[error("the archive does not decompress ({compression}): {message}")]
    Decompress {
        compression: &'static str,
        message: String,
    },
    #[error(
        "{0}-compressed archives cannot be streamed (no decompressor here): pull the file with `backup-sync pull --to-node` and restore it"
    )]
    Unsupported(String),
    #[error(
        "{host}: streaming a restore needs a shell on the node (qmrestore - and pct restore N - read stdin only from the CLI): use --host (SSH)"
    )]
    NeedsShell { host: String },
}
