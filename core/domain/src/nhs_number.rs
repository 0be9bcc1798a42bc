//! NHS numbers: ten digits whose last is a Modulus 11 check digit.
//!
//! The check catches almost every single-digit typo and transposition, which is
//! the commonest way a visit gets attached to the wrong patient. The synthetic
//! demo data draws only from the `999` range that NHS England reserves for
//! testing, so no demo record can ever match a real person.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A checked NHS number. Its `Debug` form is redacted so that a stray `{:?}`
/// in a log line cannot leak it; use [`NhsNumber::as_str`] when the digits are
/// really needed (display to the clinician, FHIR identifiers).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NhsNumber(String);

/// Weights the first nine digits carry in the Modulus 11 sum.
const WEIGHTS: [u32; 9] = [10, 9, 8, 7, 6, 5, 4, 3, 2];

impl NhsNumber {
    /// Parses ten digits, allowing the spaces or hyphens people type between
    /// the 3-3-4 groups, and checks the check digit.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let input = input.trim();
        // `943 476 5919` or `943-476-5919`: one kind of separator, between
        // the groups only, or none.
        let grouped = input.len() == 12
            && matches!(input.as_bytes()[3], b' ' | b'-')
            && input.as_bytes()[7] == input.as_bytes()[3];
        let digits: String = if grouped {
            [&input[..3], &input[4..7], &input[8..]].concat()
        } else {
            input.to_owned()
        };
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new(
                "nhs_number",
                "must be exactly ten digits",
            ));
        }
        if one_digit_repeated(&digits) {
            return Err(ValidationError::new(
                "nhs_number",
                "is one digit ten times, what is typed when the number is not known: \
                 leave it out instead",
            ));
        }
        let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        match check_digit(&values[..9]) {
            Some(check) if check == values[9] => Ok(Self(digits)),
            _ => Err(ValidationError::new(
                "nhs_number",
                "check digit does not match (Modulus 11)",
            )),
        }
    }

    /// Builds the NHS number whose first nine digits are `stem`, if a valid
    /// check digit exists for it (one stem in eleven has none). Used by the
    /// demo generator to mint numbers in the test range.
    pub fn from_stem(stem: u32) -> Option<Self> {
        if stem > 999_999_999 {
            return None;
        }
        let text = format!("{stem:09}");
        let values: Vec<u32> = text.bytes().map(|b| u32::from(b - b'0')).collect();
        check_digit(&values)
            .map(|check| format!("{text}{check}"))
            .filter(|digits| !one_digit_repeated(digits))
            .map(Self)
    }

    /// The ten digits with no separators.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for numbers in the `999` range reserved for test data.
    pub fn is_test_range(&self) -> bool {
        self.0.starts_with("999")
    }

    /// The 3-3-4 grouping clinicians read aloud and write on forms.
    pub fn formatted(&self) -> String {
        format!("{} {} {}", &self.0[..3], &self.0[3..6], &self.0[6..])
    }
}

/// Whether `digits` is one digit repeated (`0000000000`, `4444444444`): each of
/// these passes Modulus 11 (ten equal digits sum to a multiple of 11 plus the
/// digit itself), and they are what people type for a number they do not know.
/// Taken as real, every unknown patient would share one record.
fn one_digit_repeated(digits: &str) -> bool {
    digits.bytes().all(|b| Some(b) == digits.bytes().next())
}

/// The check digit for nine digits, or `None` when the remainder makes it 10,
/// which no issued number can have.
fn check_digit(nine: &[u32]) -> Option<u32> {
    let sum: u32 = nine.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        d => Some(d),
    }
}

impl TryFrom<String> for NhsNumber {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).map_err(|e| e.inside("nhs_number"))
    }
}

impl From<NhsNumber> for String {
    fn from(value: NhsNumber) -> Self {
        value.0
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_a_number_with_a_correct_check_digit() {
        // 943 476 5919 is the worked example in the NHS Data Dictionary.
        let n = NhsNumber::parse("943 476 5919").unwrap();
        assert_eq!(n.as_str(), "9434765919");
        assert_eq!(n.formatted(), "943 476 5919");
        assert!(!n.is_test_range());
    }

    #[test]
    fn accepts_hyphens_between_groups() {
        assert!(NhsNumber::parse("943-476-5919").is_ok());
    }

    #[test]
    fn refuses_separators_anywhere_but_between_the_groups() {
        for bad in [
            "9-4-3-4-7-6-5-9-1-9",
            "9434 765919",
            "943 476-5919",
            "94 34 76 59 19",
        ] {
            let e = NhsNumber::parse(bad).unwrap_err();
            assert_eq!(e.reason, "must be exactly ten digits", "{bad}");
        }
        assert!(NhsNumber::parse(" 943 476 5919 ").is_ok());
    }

    #[test]
    fn refuses_a_wrong_check_digit_without_echoing_it() {
        let e = NhsNumber::parse("9434765918").unwrap_err();
        assert_eq!(e.field, "nhs_number");
        assert!(e.reason.contains("check digit"));
        assert!(!e.to_string().contains("943"));
    }

    #[test]
    fn refuses_wrong_length_and_letters() {
        for bad in ["", "123456789", "12345678901", "94347659A9"] {
            let e = NhsNumber::parse(bad).unwrap_err();
            assert_eq!(e.reason, "must be exactly ten digits");
        }
    }

    #[test]
    fn refuses_a_stem_whose_check_digit_would_be_ten() {
        // 000000006: sum = 6*2 = 12, remainder 1, check 10: never issued.
        assert!(NhsNumber::from_stem(6).is_none());
        assert!(NhsNumber::parse("0000000060").is_err());
    }

    #[test]
    fn refuses_one_digit_repeated_although_each_passes_modulus_11() {
        for d in 0..10u8 {
            let digits = String::from(char::from(b'0' + d)).repeat(10);
            let e = NhsNumber::parse(&digits).unwrap_err();
            assert!(e.reason.contains("one digit ten times"), "{digits}: {e}");
        }
        assert!(NhsNumber::from_stem(999_999_999).is_none());
    }

    #[test]
    fn debug_output_is_redacted() {
        let n = NhsNumber::parse("9434765919").unwrap();
        assert_eq!(format!("{n:?}"), "NhsNumber(<redacted>)");
    }

    #[test]
    fn serde_form_is_the_bare_digits_and_is_checked() {
        let n = NhsNumber::parse("943 476 5919").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"9434765919\"");
        assert!(serde_json::from_str::<NhsNumber>("\"9434765918\"").is_err());
    }

    proptest! {
        #[test]
        fn every_minted_number_parses_and_any_single_digit_change_is_caught(
            stem in 999_000_000u32..=999_999_999, pos in 0usize..10, delta in 1u8..10
        ) {
            if let Some(n) = NhsNumber::from_stem(stem) {
                prop_assert!(n.is_test_range());
                prop_assert_eq!(NhsNumber::parse(n.as_str()).unwrap(), n.clone());
                let mut bytes = n.as_str().as_bytes().to_vec();
                bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
                let changed = String::from_utf8(bytes).unwrap();
                prop_assert!(NhsNumber::parse(&changed).is_err());
            }
        }
    }
}
