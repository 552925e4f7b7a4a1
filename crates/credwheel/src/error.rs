//! The facade's error type.

use crate::config::ConfigError;
use crate::sink::SinkError;
use crate::state::StateError;

/// Why an operation of [`Credwheel`](crate::Credwheel) failed. Messages are
/// operator-readable and never contain a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid, or a secret it references cannot be read.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The store, sealing or the rotation protocol failed.
    #[error("{0}")]
    State(#[from] StateError),
    /// A connection (Windows host, AD) could not be set up.
    #[error("{what}: {message}")]
    Connection {
        /// Which connection (`connections.ad.corp`).
        what: String,
        /// What failed.
        message: String,
    },
    /// No rotation has this name.
    #[error("no rotation named {0:?}")]
    UnknownRotation(String),
    /// No library has this name.
    #[error("no library named {0:?}")]
    UnknownLibrary(String),
    /// Another process (or task) is running this rotation right now.
    #[error("rotation {0:?} is running elsewhere; try again shortly")]
    Busy(String),
    /// The target refused the rotation, or it ended in a state an operator must
    /// resolve.
    #[error("rotation {rotation:?}: {message}")]
    Rotation {
        /// The rotation.
        rotation: String,
        /// What happened.
        message: String,
    },
    /// A check-in or check-out could not be done.
    #[error("library {library:?}: {message}")]
    Library {
        /// The library.
        library: String,
        /// What is wrong.
        message: String,
    },
    /// Writing the mapped secrets failed (the password itself is safe in the store).
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
}
