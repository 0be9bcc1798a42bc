//! The network's organisation: practices, clinicians, their skills and shifts.
//!
//! A primary care network is six or so practices sharing one home-visiting
//! service. Every token, query and record is scoped by the [`NetworkId`], so it
//! is a type of its own rather than a string that could be mixed up with
//! another identifier.

use std::fmt;

use jiff::civil::Time;
use serde::{Deserialize, Serialize};

use crate::text::{ShortText, Slug};
use crate::{Location, ValidationError};

/// Identifies a primary care network; the unit of data isolation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkId(pub Slug);

/// Identifies a clinician within the service (a staff number or login).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClinicianId(pub Slug);

/// Identifies one installed device (phone or iPad), so an amendment says where
/// it was made and a revoked device can be told apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(pub Slug);

/// Identifies a care home within the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CareHomeId(pub Slug);

macro_rules! slug_id_parse {
    ($($t:ident),*) => {$(
        impl $t {
            /// Checks the identifier's shape (see [`Slug`]).
            pub fn parse(input: &str) -> Result<Self, ValidationError> {
                Slug::parse("", input).map(Self)
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.0.as_str())
            }
        }
    )*};
}
slug_id_parse!(NetworkId, ClinicianId, DeviceId, CareHomeId);

/// An Organisation Data Service code, as NHS England issues them: a GP
/// practice is one letter and five digits (`J81001`); other organisations
/// have 3–10 upper-case letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OdsCode(String);

impl OdsCode {
    /// Checks the code's shape.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let ok = (3..=10).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(ValidationError::new(
                "ods_code",
                "must be 3-10 upper-case letters or digits",
            ))
        }
    }

    /// True for the letter-and-five-digits shape of a GP practice.
    pub fn is_gp_practice(&self) -> bool {
        let b = self.0.as_bytes();
        b.len() == 6 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OdsCode {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).map_err(|e| e.inside("ods_code"))
    }
}

impl From<OdsCode> for String {
    fn from(value: OdsCode) -> Self {
        value.0
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A network: its practices share the home-visiting service and its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The isolation key.
    pub id: NetworkId,
    /// Display name, e.g. "East Dorset PCN".
    pub name: ShortText,
    /// Member practices; every patient is registered at one of them.
    pub practices: Vec<Practice>,
}

/// A GP practice: a depot that rounds start and end at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Practice {
    /// The practice's ODS code, also its FHIR Organization identifier.
    pub ods_code: OdsCode,
    /// Display name.
    pub name: ShortText,
    /// Where its building is.
    pub location: Location,
}

/// What a clinician is, which decides the screens and the work they get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Community paramedic doing acute home visits.
    Paramedic,
    /// Clinical pharmacist doing structured medication reviews.
    ClinicalPharmacist,
    /// Advanced nurse practitioner.
    AdvancedNursePractitioner,
    /// A GP doing home visits.
    GeneralPractitioner,
    /// Any other registered clinician the service employs.
    OtherClinician,
}

/// A capability a visit may require and a clinician may have, e.g.
/// `paramedic`, `prescriber`, `pharmacist`, `catheter-care`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Skill(pub Slug);

impl Skill {
    /// Checks the skill's shape (see [`Slug`]).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        Slug::parse("skill", input).map(Self)
    }

    /// The skill's name.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A working day: start and end times, and an optional break that must be
/// taken somewhere inside a window. Home-visiting shifts do not cross
/// midnight, so the end must follow the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawShift", into = "RawShift")]
pub struct Shift {
    start: Time,
    end: Time,
    break_window: Option<BreakWindow>,
}

/// A break of `minutes` that starts between `earliest` and `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakWindow {
    /// Earliest start of the break.
    pub earliest: Time,
    /// Latest start of the break.
    pub latest: Time,
    /// Length of the break in minutes.
    pub minutes: u16,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShift {
    start: Time,
    end: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    break_window: Option<BreakWindow>,
}

impl Shift {
    /// Checks the shift is a real day's work with its break inside it.
    pub fn new(
        start: Time,
        end: Time,
        break_window: Option<BreakWindow>,
    ) -> Result<Self, ValidationError> {
        if end <= start {
            return Err(ValidationError::new("shift.end", "must be after the start"));
        }
        if let Some(b) = break_window {
            if b.latest < b.earliest {
                return Err(ValidationError::new(
                    "shift.break_window.latest",
                    "must not be before the earliest start",
                ));
            }
            if b.earliest < start || b.latest > end {
                return Err(ValidationError::new(
                    "shift.break_window",
                    "must lie inside the shift",
                ));
            }
            if b.minutes == 0 || b.minutes > 120 {
                return Err(ValidationError::new(
                    "shift.break_window.minutes",
                    "must be between 1 and 120",
                ));
            }
            // Started as early as it may be, the break must end by the end of
            // the shift, or it can never be taken (the planner refuses such a
            // day whole).
            let ends = b
                .earliest
                .checked_add(jiff::SignedDuration::from_mins(i64::from(b.minutes)));
            if ends.is_err() || ends.is_ok_and(|ends| ends > end) {
                return Err(ValidationError::new(
                    "shift.break_window",
                    "cannot be taken before the shift ends",
                ));
            }
        }
        Ok(Self {
            start,
            end,
            break_window,
        })
    }

    /// Start of the shift.
    pub fn start(&self) -> Time {
        self.start
    }

    /// End of the shift.
    pub fn end(&self) -> Time {
        self.end
    }

    /// The break, if one is planned.
    pub fn break_window(&self) -> Option<BreakWindow> {
        self.break_window
    }
}

impl TryFrom<RawShift> for Shift {
    type Error = ValidationError;
    fn try_from(raw: RawShift) -> Result<Self, Self::Error> {
        Self::new(raw.start, raw.end, raw.break_window).map_err(|e| e.inside("shift"))
    }
}

impl From<Shift> for RawShift {
    fn from(s: Shift) -> Self {
        Self {
            start: s.start,
            end: s.end,
            break_window: s.break_window,
        }
    }
}

/// A clinician who does visits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinician {
    /// Their identifier, also the JWT subject on their device.
    pub id: ClinicianId,
    /// Display name.
    pub name: ShortText,
    /// What they are.
    pub role: Role,
    /// What they can do; a visit's required skills must all be here.
    pub skills: Vec<Skill>,
    /// The practice their round starts and ends at.
    pub base_practice: OdsCode,
    /// Today's working hours.
    pub shift: Shift,
}

impl Clinician {
    /// True when the clinician has every skill in `required`.
    pub fn has_skills(&self, required: &[Skill]) -> bool {
        required.iter().all(|s| self.skills.contains(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::time;

    #[test]
    fn ods_codes_are_checked_and_practices_recognised() {
        let c = OdsCode::parse("J81001").unwrap();
        assert!(c.is_gp_practice());
        assert!(!OdsCode::parse("RDZ").unwrap().is_gp_practice());
        assert!(OdsCode::parse("j81001").is_err());
        assert!(OdsCode::parse("AB").is_err());
    }

    #[test]
    fn a_shift_must_end_after_it_starts() {
        let e = Shift::new(time(17, 0, 0, 0), time(8, 0, 0, 0), None).unwrap_err();
        assert_eq!(e.field, "shift.end");
    }

    #[test]
    fn a_break_must_fit_inside_the_shift() {
        // An 08:00-16:00 shift with a break of `minutes` between the two times.
        let shift = |earliest: (i8, i8), latest: (i8, i8), minutes| {
            let b = BreakWindow {
                earliest: time(earliest.0, earliest.1, 0, 0),
                latest: time(latest.0, latest.1, 0, 0),
                minutes,
            };
            Shift::new(time(8, 0, 0, 0), time(16, 0, 0, 0), Some(b))
        };
        let e = shift((7, 0), (13, 0), 30).unwrap_err();
        assert_eq!(e.field, "shift.break_window");
        assert!(shift((13, 0), (12, 0), 30).is_err());
        assert!(shift((12, 0), (13, 0), 0).is_err());
        // Inside the shift, but started at its earliest it would end after it.
        let e = shift((15, 45), (16, 0), 30).unwrap_err();
        assert_eq!(e.reason, "cannot be taken before the shift ends");
        assert!(shift((15, 30), (16, 0), 30).is_ok());
    }

    #[test]
    fn shift_serde_form_is_checked() {
        let ok = r#"{"start":"08:00:00","end":"16:30:00"}"#;
        let s: Shift = serde_json::from_str(ok).unwrap();
        assert_eq!(s.end(), time(16, 30, 0, 0));
        assert!(serde_json::from_str::<Shift>(r#"{"start":"16:00","end":"08:00"}"#).is_err());
    }

    #[test]
    fn skills_must_all_be_held() {
        let c = Clinician {
            id: ClinicianId::parse("para-1").unwrap(),
            name: ShortText::parse("name", "A Paramedic").unwrap(),
            role: Role::Paramedic,
            skills: vec![Skill::parse("paramedic").unwrap()],
            base_practice: OdsCode::parse("J81001").unwrap(),
            shift: Shift::new(time(8, 0, 0, 0), time(16, 0, 0, 0), None).unwrap(),
        };
        assert!(c.has_skills(&[Skill::parse("paramedic").unwrap()]));
        assert!(!c.has_skills(&[Skill::parse("prescriber").unwrap()]));
    }
}
