//! Patients and the care homes some of them live in.
//!
//! A patient's summary is what the clinician reads in the car before knocking:
//! who they are, where they live, what must not be missed (a DNACPR decision,
//! a ReSPECT plan, allergies, a prescribed SpO2 target) and what they take.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::network::{CareHomeId, OdsCode};
use crate::text::{FreeText, ShortText};
use crate::{Location, NhsNumber, ValidationError};

/// A UK postcode, normalised to upper case with one space before the inward
/// code (`BH21 1AA`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Postcode(String);

impl Postcode {
    /// Checks the outward/inward shape: outward 2–4 characters starting with a
    /// letter, inward a digit and two letters.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let compact: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let bad = || ValidationError::new("postcode", "is not a UK postcode");
        if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
            return Err(bad());
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        let inward_ok = {
            let b = inward.as_bytes();
            b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()
        };
        let outward_ok = outward.as_bytes()[0].is_ascii_alphabetic()
            && outward.bytes().all(|b| b.is_ascii_alphanumeric())
            && outward.bytes().any(|b| b.is_ascii_digit());
        if inward_ok && outward_ok {
            Ok(Self(format!("{outward} {inward}")))
        } else {
            Err(bad())
        }
    }

    /// The normalised postcode.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Postcode {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).map_err(|e| e.inside("postcode"))
    }
}

impl From<Postcode> for String {
    fn from(value: Postcode) -> Self {
        value.0
    }
}

/// A postal address and where it is on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street lines, first to last.
    pub lines: Vec<ShortText>,
    /// Post town.
    pub town: ShortText,
    /// Postcode.
    pub postcode: Postcode,
    /// Geocoded position, used for routing.
    pub location: Location,
}

/// A person's name as the GP record holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonName {
    /// Given name(s).
    pub given: ShortText,
    /// Family name.
    pub family: ShortText,
}

/// A prescription of the 88–92 % SpO2 target, which is what allows NEWS2
/// Scale 2 to be used for this patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale2Prescription {
    /// Who prescribed it (name and role as written in the record).
    pub prescribed_by: ShortText,
    /// When it was prescribed.
    pub prescribed_on: Date,
}

/// Flags a clinician must see before anything else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFlags {
    /// A DNACPR decision is recorded.
    pub dnacpr: bool,
    /// A ReSPECT plan exists.
    pub respect_plan: bool,
    /// A prescribed SpO2 target of 88–92 %, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spo2_scale2: Option<Scale2Prescription>,
}

/// A registered patient with the summary a visiting clinician needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    /// The patient's NHS number: their identity across every system.
    pub nhs_number: NhsNumber,
    /// Their name.
    pub name: PersonName,
    /// Date of birth.
    pub date_of_birth: Date,
    /// Home address (the care home's, for a resident).
    pub address: Address,
    /// The practice they are registered with.
    pub registered_practice: OdsCode,
    /// The care home they live in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub care_home: Option<CareHomeId>,
    /// True when they cannot leave home without help: the service's patients.
    pub housebound: bool,
    /// DNACPR, ReSPECT, SpO2 target.
    pub flags: KeyFlags,
    /// Recorded allergies and intolerances, as text.
    pub allergies: Vec<ShortText>,
    /// Current medicines, one line each.
    pub medicines: Vec<ShortText>,
    /// Anything else the visiting clinician should know (access, keysafe, pets).
    #[serde(default)]
    pub notes: FreeText,
}

/// Most entries in a patient's allergy or medicine list, or address lines: far
/// past any real summary, and what keeps a summary's size bounded.
pub const MAX_PATIENT_LIST: usize = 200;

/// The earliest birth year a living patient can have.
pub const EARLIEST_BIRTH_YEAR: i16 = 1890;

impl Patient {
    /// Checks what holds whatever the date: a birth year a living patient can
    /// have, and lists bounded. A pulled summary is checked so, not against
    /// the device's date, which may be wrong.
    pub fn check_bounds(&self) -> Result<(), ValidationError> {
        if self.date_of_birth.year() < EARLIEST_BIRTH_YEAR {
            return Err(ValidationError::new(
                "date_of_birth",
                format!("must be in {EARLIEST_BIRTH_YEAR} or later"),
            ));
        }
        crate::record::at_most("address.lines", &self.address.lines, MAX_PATIENT_LIST)?;
        crate::record::at_most("allergies", &self.allergies, MAX_PATIENT_LIST)?;
        crate::record::at_most("medicines", &self.medicines, MAX_PATIENT_LIST)
    }

    /// Checks what the field types cannot: [`Self::check_bounds`], and a
    /// birth date that is not in the future relative to `today`.
    pub fn validate(&self, today: Date) -> Result<(), ValidationError> {
        self.check_bounds()?;
        if self.date_of_birth > today {
            return Err(ValidationError::new(
                "date_of_birth",
                "must not be in the future",
            ));
        }
        Ok(())
    }
}

/// A care-home resident due a structured medication review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resident {
    /// The resident's NHS number (their patient record holds the rest).
    pub nhs_number: NhsNumber,
    /// When their next review is due.
    pub review_due: Date,
}

/// A care home: one location, many residents. A pharmacist's visit serves
/// several residents at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CareHome {
    /// Identifier within the network.
    pub id: CareHomeId,
    /// Display name.
    pub name: ShortText,
    /// Where it is.
    pub location: Location,
    /// The practice that is aligned to the home.
    pub aligned_practice: OdsCode,
    /// Residents and their review due dates.
    pub residents: Vec<Resident>,
}

impl CareHome {
    /// Residents whose review is due on or before `day`, earliest first: the
    /// list the pharmacist works through.
    pub fn due_for_review(&self, day: Date) -> Vec<&Resident> {
        let mut due: Vec<&Resident> = self
            .residents
            .iter()
            .filter(|r| r.review_due <= day)
            .collect();
        due.sort_by_key(|r| r.review_due);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn postcodes_are_normalised() {
        assert_eq!(Postcode::parse("bh211aa").unwrap().as_str(), "BH21 1AA");
        assert_eq!(Postcode::parse(" BH22 9EL ").unwrap().as_str(), "BH22 9EL");
        assert_eq!(Postcode::parse("W1A 0AX").unwrap().as_str(), "W1A 0AX");
    }

    #[test]
    fn refuses_what_is_not_a_postcode() {
        for bad in ["", "BH21", "123 4AA", "BH21 AAA", "BH21-1AA", "ÄH21 1AA"] {
            assert_eq!(Postcode::parse(bad).unwrap_err().field, "postcode", "{bad}");
        }
    }

    #[test]
    fn care_home_lists_due_residents_earliest_first() {
        let r = |stem: u32, d| Resident {
            nhs_number: NhsNumber::from_stem(stem).unwrap(),
            review_due: d,
        };
        let home = CareHome {
            id: CareHomeId::parse("the-elms").unwrap(),
            name: ShortText::parse("name", "The Elms").unwrap(),
            location: Location::new(50.8, -1.9).unwrap(),
            aligned_practice: OdsCode::parse("J81001").unwrap(),
            residents: vec![
                r(999_000_001, date(2026, 12, 1)),
                r(999_000_002, date(2026, 11, 20)),
                r(999_000_003, date(2026, 11, 1)),
            ],
        };
        let due = home.due_for_review(date(2026, 11, 24));
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].review_due, date(2026, 11, 1));
    }
}
