//! Configuration errors: each names the field it is about.

use std::fmt;

use crate::policy::PolicyError;
use crate::schedule::ScheduleError;

/// Why a configuration was refused: one or more [`FieldError`]s, each naming the
/// field (`rotations[2].schedule.interval_days`) and what is wrong with it. Nothing
/// is started from a configuration that has any.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    errors: Vec<FieldError>,
}

impl ConfigError {
    pub(crate) fn new(errors: Vec<FieldError>) -> Self {
        debug_assert!(!errors.is_empty());
        ConfigError { errors }
    }

    pub(crate) fn one(path: impl Into<String>, kind: ConfigErrorKind) -> Self {
        ConfigError::new(vec![FieldError::new(path, kind)])
    }

    /// Every problem found, in file order (at least one).
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// Whether one of the problems is about exactly this field path.
    pub fn names(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.path == path)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// One problem in a configuration: the field's path and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {kind}", if path.is_empty() { "(top level)" } else { path.as_str() })]
pub struct FieldError {
    path: String,
    kind: ConfigErrorKind,
}

impl FieldError {
    pub(crate) fn new(path: impl Into<String>, kind: ConfigErrorKind) -> Self {
        FieldError {
            path: path.into(),
            kind,
        }
    }

    /// The field's path, e.g. `rotations[2].schedule.interval_days` (empty for the
    /// document as a whole).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }
}

/// What is wrong with a field. Messages never contain a secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The document is not valid TOML/JSON or a value has the wrong type.
    #[error("{message}")]
    Syntax {
        /// The parser's message (with line and column for TOML when known).
        message: String,
    },
    /// A field this format does not have (a typo, or a setting of another system).
    #[error("unknown field `{field}`")]
    UnknownField {
        /// The field name as written.
        field: String,
    },
    /// A required field is missing.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field name.
        field: String,
    },
    /// The value is out of range or malformed.
    #[error("{reason}")]
    Invalid {
        /// What is wrong, in operator-readable words.
        reason: String,
    },
    /// The password policy is malformed or impossible to satisfy.
    #[error("{0}")]
    Policy(PolicyError),
    /// The schedule is malformed (bad time zone, cron expression, interval, window).
    #[error("{0}")]
    Schedule(ScheduleError),
    /// Fields that cannot be used together, or one that requires another.
    #[error("{reason}")]
    Contradiction {
        /// What conflicts with what.
        reason: String,
    },
    /// A name that must be unique is used twice.
    #[error("{value:?} is already used by {first}")]
    Duplicate {
        /// The repeated value.
        value: String,
        /// The path of the first use.
        first: String,
    },
    /// A reference to a connection (or host) that is not defined.
    #[error("no {section} named {name:?}")]
    UnknownReference {
        /// The section searched (`connections.ad`, `connections.windows`).
        section: &'static str,
        /// The name given.
        name: String,
    },
    /// A secret (environment variable, file) could not be read. The message names
    /// the variable or file, never its content.
    #[error("{reason}")]
    Secret {
        /// What failed.
        reason: String,
    },
}
