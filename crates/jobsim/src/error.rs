//! Errors of the simulator's own life cycle (not API errors, which are JSON replies).

/// Starting or configuring the simulator failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `jobsim.toml` is not valid.
    #[error("invalid jobsim config: {0}")]
    Config(String),
    /// A file-system operation on the sandbox failed.
    #[error("sandbox i/o error: {0}")]
    Io(String),
    /// A non-loopback listen address with no `[[app]]` to check callers against: any app
    /// code and secret would be accepted from any machine that reaches it.
    #[error(
        "refusing to listen on {addr}: other machines can reach it, and with no [[app]] in jobsim.toml any credentials are accepted; register apps, or listen on 127.0.0.1"
    )]
    Exposed {
        /// The requested address.
        addr: std::net::SocketAddr,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The requested address.
        addr: std::net::SocketAddr,
        /// The OS error.
        message: String,
    },
}
