//! Why a key or a copy could not be used: a leaf, so the crate's `Error` can wrap it without
//! importing the encryption.

#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// A recipient that is not an X25519 public key (the value is not echoed: it may be a
    /// secret key given by mistake).
    #[error("{0}")]
    Recipient(String),
    #[error("{path}: {message}")]
    KeyFile { path: String, message: String },
    #[error(
        "{path} is open to group or others (mode {mode:04o}); an age identity is a secret key: chmod 600 {path}"
    )]
    Exposed { path: String, mode: u32 },
    /// The copy's file key is wrapped for none of the identities.
    #[error(
        "encrypted to other recipients than the --age-identity file holds (its public keys: {0}); not decrypted"
    )]
    OtherRecipients(String),
    /// Not an age file, or cut or changed (the STREAM's tags do not match).
    #[error("not a whole age file: {0}")]
    Damaged(String),
}
