//! Structured medication reviews for care-home residents.
//!
//! A clinical pharmacist reviews each resident's medicines, records the
//! problems found (citing a STOPP/START v3 criterion where one applies) and the
//! actions agreed, each with whoever must act on it. The review travels in the
//! same [`RecordVersion`] envelope as a visit record, so it is append-only and
//! amendable in the same way.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::network::CareHomeId;
use crate::record::{RecordVersion, TaskOwner, Validate, at_most};
use crate::text::{FreeText, ShortText};
use crate::{NhsNumber, ValidationError};

/// Which list of the STOPP/START tool a criterion belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CriterionList {
    /// Screening Tool of Older Persons' Prescriptions: potentially
    /// inappropriate medicines.
    #[serde(rename = "STOPP")]
    Stopp,
    /// Screening Tool to Alert to Right Treatment: potential omissions.
    #[serde(rename = "START")]
    Start,
}

/// A STOPP/START version 3 (O'Mahony et al., 2023) criterion id such as
/// `STOPP B7` or `START A1`: the list, a section letter and a number.
///
/// The shape is checked here; membership in the published list (133 STOPP,
/// 57 START criteria) is not, because the list is not ours to redistribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoppStartCriterion {
    list: CriterionList,
    section: char,
    number: u8,
}

impl StoppStartCriterion {
    /// Parses `STOPP B7` / `START A1` (space optional, case-insensitive).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let bad = || {
            ValidationError::new(
                "criterion",
                "must look like STOPP B7 or START A1 (STOPP/START v3)",
            )
        };
        let upper = input.trim().to_ascii_uppercase();
        let (list, rest) = if let Some(rest) = upper.strip_prefix("STOPP") {
            (CriterionList::Stopp, rest)
        } else if let Some(rest) = upper.strip_prefix("START") {
            (CriterionList::Start, rest)
        } else {
            return Err(bad());
        };
        let rest = rest.trim_start();
        let mut chars = rest.chars();
        let section = chars.next().ok_or_else(bad)?;
        let digits = chars.as_str();
        // Digits only: `u8`'s parser would also take a sign (`STOPP B+7`).
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let number: u8 = digits.parse().map_err(|_| bad())?;
        if !section.is_ascii_uppercase() || !(1..=40).contains(&number) {
            return Err(bad());
        }
        Ok(Self {
            list,
            section,
            number,
        })
    }

    /// STOPP or START.
    pub fn list(&self) -> CriterionList {
        self.list
    }
}

impl fmt::Display for StoppStartCriterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = match self.list {
            CriterionList::Stopp => "STOPP",
            CriterionList::Start => "START",
        };
        write!(f, "{list} {}{}", self.section, self.number)
    }
}

impl TryFrom<String> for StoppStartCriterion {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).map_err(|e| e.inside("criterion"))
    }
}

impl From<StoppStartCriterion> for String {
    fn from(value: StoppStartCriterion) -> Self {
        value.to_string()
    }
}

/// A medicine looked at in the review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MedicineReviewed {
    /// Name (dm+d description where known).
    pub name: ShortText,
    /// Dose and frequency as prescribed.
    pub dose: ShortText,
    /// What it is for, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indication: Option<ShortText>,
}

/// A prescribing problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// What the problem is.
    pub description: ShortText,
    /// The medicine concerned, when there is one (an omission has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medicine: Option<ShortText>,
    /// The STOPP/START criterion it meets, where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criterion: Option<StoppStartCriterion>,
}

/// What to do about a medicine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Stop (deprescribe) it.
    Stop,
    /// Reduce the dose.
    Reduce,
    /// Switch to another medicine.
    Switch,
    /// Start a new medicine.
    Start,
    /// Monitor (bloods, levels, symptoms).
    Monitor,
    /// Refer to someone else.
    Refer,
}

impl ActionKind {
    /// True when the action changes a specific medicine and must name it.
    pub fn needs_medicine(self) -> bool {
        matches!(self, Self::Stop | Self::Reduce | Self::Switch | Self::Start)
    }
}

/// An action agreed in the review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewAction {
    /// What to do.
    pub kind: ActionKind,
    /// The medicine it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medicine: Option<ShortText>,
    /// Detail: new dose, what to monitor, who to refer to.
    pub detail: ShortText,
    /// Who must act.
    pub owner: TaskOwner,
    /// Index of the problem in [`MedicationReview::problems`] it addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses_problem: Option<usize>,
}

/// Most medicines one review looks at. Care-home residents take eight or so
/// on average and rarely over thirty; the bound keeps one record, and so one
/// push, small (see [`crate::record::MAX_RECORD_JSON_BYTES`]).
pub const MAX_MEDICINES_REVIEWED: usize = 100;

/// Most prescribing problems one review records (a few per medicine at
/// most); bounded for the same reason as [`MAX_MEDICINES_REVIEWED`].
pub const MAX_PROBLEMS: usize = 100;

/// Most actions one review agrees; bounded for the same reason as
/// [`MAX_MEDICINES_REVIEWED`].
pub const MAX_ACTIONS: usize = 100;

/// A structured medication review of one care-home resident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MedicationReview {
    /// The resident.
    pub resident: NhsNumber,
    /// Their care home.
    pub care_home: CareHomeId,
    /// The day of the review.
    pub reviewed_on: Date,
    /// Medicines looked at; at most [`MAX_MEDICINES_REVIEWED`].
    pub medicines_reviewed: Vec<MedicineReviewed>,
    /// Problems found; at most [`MAX_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// Actions agreed; at most [`MAX_ACTIONS`].
    pub actions: Vec<ReviewAction>,
    /// What the resident (or family) and pharmacist decided together, and why.
    pub shared_decision_notes: FreeText,
    /// When to review again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_on: Option<Date>,
}

/// A medication review version: stored, synced and filed like a visit record.
pub type MedicationReviewRecord = RecordVersion<MedicationReview>;

impl crate::record::WrittenContent for MedicationReview {
    fn check_written_at(&self, written_at: jiff::Timestamp) -> Result<(), ValidationError> {
        if self.reviewed_on > crate::record::latest_uk_day(written_at) {
            return Err(ValidationError::new(
                "reviewed_on",
                "is after the day this version was written: check the date typed, or the \
                 device's clock",
            ));
        }
        Ok(())
    }
}

impl Validate for MedicationReview {
    fn validate(&self) -> Result<(), ValidationError> {
        at_most(
            "medicines_reviewed",
            &self.medicines_reviewed,
            MAX_MEDICINES_REVIEWED,
        )?;
        at_most("problems", &self.problems, MAX_PROBLEMS)?;
        at_most("actions", &self.actions, MAX_ACTIONS)?;
        let reviewed = |name: &ShortText| {
            self.medicines_reviewed
                .iter()
                .any(|m| m.name.as_str().eq_ignore_ascii_case(name.as_str()))
        };
        for (i, action) in self.actions.iter().enumerate() {
            let at = |e: ValidationError| e.at_index("actions", i);
            match (&action.medicine, action.kind.needs_medicine()) {
                (None, true) => {
                    return Err(at(ValidationError::new(
                        "medicine",
                        "this action must name the medicine it changes",
                    )));
                }
                (Some(m), true) if action.kind != ActionKind::Start && !reviewed(m) => {
                    return Err(at(ValidationError::new(
                        "medicine",
                        "must be one of the medicines reviewed",
                    )));
                }
                _ => {}
            }
            if let Some(p) = action.addresses_problem
                && p >= self.problems.len()
            {
                return Err(at(ValidationError::new(
                    "addresses_problem",
                    "points at no recorded problem",
                )));
            }
        }
        crate::record::plausible_date("reviewed_on", self.reviewed_on)?;
        if let Some(follow_up) = self.follow_up_on {
            crate::record::plausible_date("follow_up_on", follow_up)?;
        }
        if let Some(follow_up) = self.follow_up_on
            && follow_up <= self.reviewed_on
        {
            return Err(ValidationError::new(
                "follow_up_on",
                "must be after the review",
            ));
        }
        Ok(())
    }
}
