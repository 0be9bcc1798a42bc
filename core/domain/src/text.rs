//! Free text and identifiers, bounded and cleaned.
//!
//! Clinical notes are typed on phones with gloves on and pasted from other
//! systems; bounding them keeps a stuck key or a pasted document from filling
//! the device or the outbox, and refusing control characters keeps what the GP
//! record receives printable. Identifiers are short slugs that are safe in
//! URLs, file names and log lines.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Longest free-text field we accept, in characters (about four pages).
pub const MAX_FREE_TEXT: usize = 10_000;

/// Longest short label (a name, a reason line, a medicine), in characters.
pub const MAX_SHORT_TEXT: usize = 200;

/// Multi-line clinical free text; may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FreeText(String);

impl FreeText {
    /// Trims the ends and checks the length and characters.
    pub fn parse(field: &str, input: &str) -> Result<Self, ValidationError> {
        let text = input.trim();
        if text.chars().count() > MAX_FREE_TEXT {
            return Err(ValidationError::new(
                field,
                format!("longer than {MAX_FREE_TEXT} characters"),
            ));
        }
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        {
            return Err(ValidationError::new(field, "contains control characters"));
        }
        refuse_direction_controls(field, text, OVERRIDES)?;
        Ok(Self(text.to_owned()))
    }

    /// The cleaned text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The overrides of the Unicode bidirectional algorithm, which show the
/// characters after them in the order they set, whatever they are: a dose
/// stored as `Morphine \u{202E}gm 01` displays as "Morphine 10 mg".
const OVERRIDES: &[char] = &['\u{202D}', '\u{202E}'];

/// The overrides, and the embeddings and isolates, which reorder whole runs
/// of text (`5 mg` and `twice daily` can show in either order).
const EVERY_DIRECTION_CONTROL: &[char] = &[
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}',
];

/// Refuses the invisible characters of `refused` that make text display in
/// another order than it is stored: what the GP record files must read as it
/// says. A label (a medicine, a dose) may hold none of them. Free text may
/// hold embeddings and isolates, which text pasted from a document mixing
/// English with a right-to-left script carries, but no override.
fn refuse_direction_controls(
    field: &str,
    text: &str,
    refused: &[char],
) -> Result<(), ValidationError> {
    if text.chars().any(|c| refused.contains(&c)) {
        return Err(ValidationError::new(
            field,
            "contains characters that change the direction text is shown in",
        ));
    }
    Ok(())
}

impl TryFrom<String> for FreeText {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("", &value)
    }
}

impl From<FreeText> for String {
    fn from(value: FreeText) -> Self {
        value.0
    }
}

/// A required one-line label: non-empty, single line, at most
/// [`MAX_SHORT_TEXT`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShortText(String);

impl ShortText {
    /// Trims the ends and checks it is a non-empty single line.
    pub fn parse(field: &str, input: &str) -> Result<Self, ValidationError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        if text.chars().count() > MAX_SHORT_TEXT {
            return Err(ValidationError::new(
                field,
                format!("longer than {MAX_SHORT_TEXT} characters"),
            ));
        }
        if text
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(ValidationError::new(
                field,
                "must be a single line without control characters",
            ));
        }
        refuse_direction_controls(field, text, EVERY_DIRECTION_CONTROL)?;
        Ok(Self(text.to_owned()))
    }

    /// The cleaned text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ShortText {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("", &value)
    }
}

impl From<ShortText> for String {
    fn from(value: ShortText) -> Self {
        value.0
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// An identifier: 1–64 characters of lowercase ASCII letters, digits, `-`
/// and `_`, starting with a letter or digit. Used for networks, clinicians,
/// devices, care homes and skills.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    /// Checks the identifier's shape.
    pub fn parse(field: &str, input: &str) -> Result<Self, ValidationError> {
        let ok_len = (1..=64).contains(&input.len());
        let ok_chars = input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        let ok_start = input
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok_len && ok_chars && ok_start {
            Ok(Self(input.to_owned()))
        } else {
            Err(ValidationError::new(
                field,
                "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            ))
        }
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("", &value)
    }
}

impl From<Slug> for String {
    fn from(value: Slug) -> Self {
        value.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Parses JSON into a checked domain type and, when it is refused, reports the
/// JSON path of the offending field and the reason, never the value.
///
/// Every boundary (the CLI, the endpoint, the uniffi surface) uses this so
/// that the same input gets the same error everywhere.
pub fn from_json<T: DeserializeOwned>(input: &str) -> Result<T, ValidationError> {
    let de = &mut serde_json::Deserializer::from_str(input);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut *de);
    let value = result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let reason = scrub(match message.rfind(" at line ") {
            Some(i) => &message[..i],
            None => &message,
        });
        let field = if path == "." { String::new() } else { path };
        if inner.is_syntax() || inner.is_eof() {
            return ValidationError::new(field, format!("not valid JSON: {reason}"));
        }
        // A checked type that refuses itself as a whole reports its own field
        // as `field: reason`; join that onto the path serde found.
        match reason.split_once(": ") {
            Some((own, rest)) if is_field_path(own) => {
                ValidationError::new(own, rest).within_path(&field)
            }
            _ => ValidationError::new(field, reason),
        }
    })?;
    // One value and nothing after it: a file with a second document (or junk) appended is
    // not the one that was meant.
    de.end()
        .map_err(|_| ValidationError::new("", "not valid JSON: text follows the value"))?;
    Ok(value)
}

/// True for text shaped like a field path (`values.spo2_scale`, `a[0].b`).
fn is_field_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.[]".contains(&b))
}

/// Rewrites serde's messages so they keep what was expected but drop the value
/// that was found, which may be a clinical value or an identifier.
///
/// Messages naming a field keep it. Messages of other shapes (the domain's own
/// reasons, and the parsers of dates, times and ids) pass through unless they
/// quote something: the domain's own reasons never do, while jiff, for one,
/// quotes the date it read (as it read it, so not always as it was written)
/// before the junk after it. Those are replaced whole, since what else they say
/// is about the value.
fn scrub(message: &str) -> String {
    let expected = message
        .find(", expected ")
        .map(|i| &message[i + 2..])
        .unwrap_or("");
    if message.starts_with("invalid type") {
        format!("wrong type, {expected}")
    } else if message.starts_with("invalid value") {
        format!("invalid value, {expected}")
    } else if message.starts_with("unknown variant") {
        format!("not one of the allowed values, {expected}")
    } else if message.starts_with("invalid length") {
        format!("wrong number of elements, {expected}")
    } else if ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|shape| message.starts_with(shape))
    {
        // These quote keys, the names of fields, never their values.
        message.to_owned()
    } else if quotes(message) {
        "not a valid value for this field".to_owned()
    } else {
        message.to_owned()
    }
}

/// True when `message` quotes (in `'`, `"` or `` ` ``) two or more characters.
/// One character (a stray letter a parser names, or `'-'` in a rule) tells
/// nothing of a patient; two may begin to.
fn quotes(message: &str) -> bool {
    ['\'', '"', '`'].iter().any(|&quote| {
        message
            .split(quote)
            .skip(1)
            .step_by(2)
            .any(|quoted| quoted.chars().count() >= 2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_after_the_value_is_refused() {
        let e = from_json::<Vec<u32>>("[1, 2] [3]").unwrap_err();
        assert_eq!(e.reason, "not valid JSON: text follows the value");
        assert_eq!(from_json::<Vec<u32>>(" [1, 2]\n").unwrap(), [1, 2]);
    }

    #[test]
    fn free_text_is_trimmed_and_bounded() {
        assert_eq!(
            FreeText::parse("f", "  fell at home \n").unwrap().as_str(),
            "fell at home"
        );
        let long = "x".repeat(MAX_FREE_TEXT + 1);
        assert!(
            FreeText::parse("f", &long)
                .unwrap_err()
                .reason
                .contains("longer")
        );
        assert!(FreeText::parse("f", "a\u{0}b").is_err());
        assert!(FreeText::parse("f", "line one\nline two").is_ok());
    }

    #[test]
    fn short_text_is_one_non_empty_line() {
        assert_eq!(
            ShortText::parse("reason", " ").unwrap_err().reason,
            "must not be empty"
        );
        assert!(ShortText::parse("reason", "a\nb").is_err());
        assert!(ShortText::parse("reason", &"y".repeat(MAX_SHORT_TEXT + 1)).is_err());
    }

    #[test]
    fn slugs_are_url_safe() {
        assert!(Slug::parse("id", "east-dorset_pcn1").is_ok());
        for bad in ["", "Upper", "-lead", "sp ace", &"a".repeat(65)] {
            assert!(Slug::parse("id", bad).is_err(), "{bad}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Vec<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        id: Slug,
    }

    #[test]
    fn from_json_names_the_path_and_not_the_value() {
        let e = from_json::<Outer>(r#"{"inner":[{"id":"ok"},{"id":"SECRET"}]}"#).unwrap_err();
        assert_eq!(e.field, "inner[1].id");
        assert!(!e.reason.contains("SECRET"));
        let e = from_json::<Outer>(r#"{"inner":[{"id":12345}]}"#).unwrap_err();
        assert_eq!(e.field, "inner[0].id");
        assert!(!e.reason.contains("12345"), "{}", e.reason);
        assert!(e.reason.starts_with("wrong type, expected"), "{}", e.reason);
        let e = from_json::<Outer>("{not json").unwrap_err();
        assert!(e.reason.starts_with("not valid JSON"));
    }
}
