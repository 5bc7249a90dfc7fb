//! Errors a generator reports. Each names the attribute at fault, so the Nix
//! error a user sees points at what to fix.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// An attribute has the wrong Nix type.
    #[error("attribute '{attr}' must be {expected}, but it is {found}")]
    WrongType {
        attr: String,
        expected: String,
        found: &'static str,
    },
    /// A required attribute is absent.
    #[error("attribute '{attr}' is required: {why}")]
    Missing { attr: String, why: String },
    /// An attribute the generator does not know (typo protection).
    #[error("unknown parameter '{attr}'{hint}")]
    Unknown { attr: String, hint: String },
    /// A value of the right type that is still not acceptable.
    #[error("attribute '{attr}': {msg}")]
    Invalid { attr: String, msg: String },
    /// A problem with the processes model as a whole.
    #[error("{0}")]
    Model(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(attr: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            attr: attr.into(),
            msg: msg.into(),
        }
    }

    /// Prefixes the attribute path, e.g. `environment` + `PORT` → `environment.PORT`.
    pub fn within(self, parent: &str) -> Self {
        let join = |a: String| {
            if a.is_empty() {
                parent.to_string()
            } else if a.starts_with('[') {
                format!("{parent}{a}")
            } else {
                format!("{parent}.{a}")
            }
        };
        match self {
            Error::WrongType {
                attr,
                expected,
                found,
            } => Error::WrongType {
                attr: join(attr),
                expected,
                found,
            },
            Error::Missing { attr, why } => Error::Missing {
                attr: join(attr),
                why,
            },
            Error::Unknown { attr, hint } => Error::Unknown {
                attr: join(attr),
                hint,
            },
            Error::Invalid { attr, msg } => Error::Invalid {
                attr: join(attr),
                msg,
            },
            m @ Error::Model(_) => m,
        }
    }
}
