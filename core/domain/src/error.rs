//! The validation error shared by every parser in the domain.
//!
//! It carries the field's name and a reason written for the person who must fix
//! the input. By construction it never carries the offending value: error text
//! travels to logs, to practice systems and to the shell's screen, and must not
//! leak a patient's identity or clinical values.

use std::fmt;

/// A value that was refused, with the field it came from and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub struct ValidationError {
    /// Dotted path of the field that failed, e.g. `observations[0].pulse`.
    pub field: String,
    /// Why the value was refused, without repeating the value.
    pub reason: String,
}

impl ValidationError {
    /// Makes an error for `field`, explaining `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path with the enclosing field, so a nested error
    /// says exactly where in a record the problem is.
    #[must_use]
    pub fn within(self, parent: &str) -> Self {
        let field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        Self { field, ..self }
    }

    /// Like [`ValidationError::within`], but an empty parent leaves the field
    /// as it is (the error is already at the top level).
    #[must_use]
    pub fn within_path(self, parent: &str) -> Self {
        if parent.is_empty() {
            self
        } else {
            self.within(parent)
        }
    }

    /// The same error as seen from inside the value it names as `own`. A type
    /// checked on its own names itself (`nhs_number: must be exactly ten
    /// digits`, `shift.end: ...`); read from JSON, where the path already
    /// names the field it fills (`content.patient`), it reports only what
    /// lies within it, or the path would name a key the JSON does not have
    /// (`content.patient.nhs_number`).
    #[must_use]
    pub fn inside(self, own: &str) -> Self {
        let field = if self.field == own {
            String::new()
        } else {
            match self.field.strip_prefix(own) {
                Some(rest) if rest.starts_with('.') => rest[1..].to_owned(),
                _ => self.field,
            }
        };
        Self { field, ..self }
    }

    /// Like [`ValidationError::within`] for an element of a list.
    #[must_use]
    pub fn at_index(self, parent: &str, index: usize) -> Self {
        self.within(&format!("{parent}[{index}]"))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_read_like_the_json_they_came_from() {
        let e = ValidationError::new("pulse", "out of range")
            .at_index("observations", 2)
            .within("record");
        assert_eq!(e.field, "record.observations[2].pulse");
        assert_eq!(e.to_string(), "record.observations[2].pulse: out of range");
    }
}
