//! Visit requests: what a practice asks the service to do after the duty GP
//! has triaged a call.
//!
//! The urgency decides how the optimiser treats the request: an immediate
//! visit must be served as early as possible, a same-day visit today inside its
//! window, and a routine visit within a number of days (deferring it costs more
//! the more overdue it gets).

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::network::{ClinicianId, OdsCode, Skill};
use crate::text::ShortText;
use crate::{NhsNumber, ValidationError};

/// Identifies a visit request across the endpoint and every device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VisitRequestId(pub Uuid);

/// A window of the day in which a visit may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWindow", into = "RawWindow")]
pub struct TimeWindow {
    start: Time,
    end: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    start: Time,
    end: Time,
}

impl TimeWindow {
    /// Checks that the window is not empty.
    pub fn new(start: Time, end: Time) -> Result<Self, ValidationError> {
        if end <= start {
            return Err(ValidationError::new(
                "time_window.end",
                "must be after the start",
            ));
        }
        Ok(Self { start, end })
    }

    /// Earliest start.
    pub fn start(&self) -> Time {
        self.start
    }

    /// Latest start.
    pub fn end(&self) -> Time {
        self.end
    }
}

impl TryFrom<RawWindow> for TimeWindow {
    type Error = ValidationError;
    fn try_from(raw: RawWindow) -> Result<Self, Self::Error> {
        Self::new(raw.start, raw.end).map_err(|e| e.inside("time_window"))
    }
}

impl From<TimeWindow> for RawWindow {
    fn from(w: TimeWindow) -> Self {
        Self {
            start: w.start,
            end: w.end,
        }
    }
}

/// How soon the visit must happen, as the duty GP triaged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "UrgencyFields")]
pub enum Urgency {
    /// Must be served, as early as possible.
    Immediate,
    /// Must be served today unless impossible.
    SameDay,
    /// May wait until `due_by`; deferring beyond it is penalised by how
    /// overdue it is.
    Routine {
        /// Last day it should happen.
        due_by: Date,
    },
}

/// An urgency as written: its kind and the one field a kind has, read where
/// it stands, so that a refusal names `urgency.due_by` (read straight as
/// the tagged enum, serde names only `urgency`), and an immediate or
/// same-day urgency given a `due_by` is refused rather than read without it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrgencyFields {
    kind: UrgencyKind,
    due_by: Option<Date>,
}

/// The kinds of [`Urgency`], as written in its `kind`.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum UrgencyKind {
    Immediate,
    SameDay,
    Routine,
}

impl TryFrom<UrgencyFields> for Urgency {
    type Error = ValidationError;
    fn try_from(f: UrgencyFields) -> Result<Self, Self::Error> {
        match (f.kind, f.due_by) {
            (UrgencyKind::Immediate, None) => Ok(Urgency::Immediate),
            (UrgencyKind::SameDay, None) => Ok(Urgency::SameDay),
            (UrgencyKind::Routine, Some(due_by)) => Ok(Urgency::Routine { due_by }),
            (UrgencyKind::Routine, None) => Err(ValidationError::new(
                "due_by",
                "is required for an urgency of kind routine",
            )),
            (UrgencyKind::Immediate | UrgencyKind::SameDay, Some(_)) => Err(ValidationError::new(
                "due_by",
                "is part of a routine urgency only",
            )),
        }
    }
}

/// A request for a home visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitRequest {
    /// The request's identifier.
    pub id: VisitRequestId,
    /// The patient to visit.
    pub patient: NhsNumber,
    /// The practice that asked.
    pub practice: OdsCode,
    /// Why, in a line (shown in the round list).
    pub reason: ShortText,
    /// How soon.
    pub urgency: Urgency,
    /// Skills the visiting clinician must have.
    pub required_skills: Vec<Skill>,
    /// Windows in which the visit may start; empty means any time in a shift.
    pub time_windows: Vec<TimeWindow>,
    /// Expected time on site, in minutes.
    pub expected_minutes: u16,
    /// When the request was made.
    pub requested_at: Timestamp,
    /// The duty GP who triaged it.
    pub triaged_by: ClinicianId,
}

/// Most time windows a visit request may give: a day split into more is not
/// a patient's availability.
pub const MAX_TIME_WINDOWS: usize = 8;

/// Most skills a visit request may require.
pub const MAX_REQUIRED_SKILLS: usize = 16;

impl VisitRequest {
    /// Checks what the field types cannot: a plausible duration, windows
    /// that do not overlap, dates in the years a record may name, and lists
    /// bounded (a practice system's request is planned on a phone).
    pub fn validate(&self) -> Result<(), ValidationError> {
        crate::record::plausible_instant("requested_at", self.requested_at)?;
        if let Urgency::Routine { due_by } = self.urgency {
            crate::record::plausible_date("urgency.due_by", due_by)?;
        }
        crate::record::at_most("time_windows", &self.time_windows, MAX_TIME_WINDOWS)?;
        crate::record::at_most(
            "required_skills",
            &self.required_skills,
            MAX_REQUIRED_SKILLS,
        )?;
        if !(5..=240).contains(&self.expected_minutes) {
            return Err(ValidationError::new(
                "expected_minutes",
                "must be between 5 and 240",
            ));
        }
        let mut windows = self.time_windows.clone();
        windows.sort_by_key(TimeWindow::start);
        if windows.windows(2).any(|w| w[1].start < w[0].end) {
            return Err(ValidationError::new("time_windows", "must not overlap"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::time;

    fn request() -> VisitRequest {
        VisitRequest {
            id: VisitRequestId(Uuid::nil()),
            patient: NhsNumber::parse("9434765919").unwrap(),
            practice: OdsCode::parse("J81001").unwrap(),
            reason: ShortText::parse("reason", "Fall, no injury apparent").unwrap(),
            urgency: Urgency::SameDay,
            required_skills: vec![Skill::parse("paramedic").unwrap()],
            time_windows: vec![TimeWindow::new(time(9, 0, 0, 0), time(12, 0, 0, 0)).unwrap()],
            expected_minutes: 45,
            requested_at: "2026-11-24T08:15:00Z".parse().unwrap(),
            triaged_by: ClinicianId::parse("dr-duty").unwrap(),
        }
    }

    #[test]
    fn a_window_must_not_be_empty() {
        assert!(TimeWindow::new(time(12, 0, 0, 0), time(12, 0, 0, 0)).is_err());
        assert!(serde_json::from_str::<TimeWindow>(r#"{"start":"13:00","end":"09:00"}"#).is_err());
    }

    #[test]
    fn duration_must_be_plausible() {
        let mut r = request();
        assert!(r.validate().is_ok());
        r.expected_minutes = 0;
        assert_eq!(r.validate().unwrap_err().field, "expected_minutes");
        r.expected_minutes = 600;
        assert!(r.validate().is_err());
    }

    #[test]
    fn a_routine_request_may_be_overdue_when_it_is_made() {
        // An annual review that fell due last month, asked for today: the planner
        // weighs how overdue it is.
        let mut r = request();
        r.urgency = Urgency::Routine {
            due_by: jiff::civil::date(2026, 10, 24),
        };
        assert!(r.validate().is_ok());
    }

    #[test]
    fn dates_and_lists_are_bounded() {
        let mut r = request();
        r.requested_at = "1970-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(r.validate().unwrap_err().field, "requested_at");
        let mut r = request();
        r.urgency = Urgency::Routine {
            due_by: jiff::civil::date(2126, 11, 30),
        };
        assert_eq!(r.validate().unwrap_err().field, "urgency.due_by");
        let mut r = request();
        r.time_windows = (0..=MAX_TIME_WINDOWS as i8)
            .map(|h| TimeWindow::new(time(h, 0, 0, 0), time(h, 30, 0, 0)).unwrap())
            .collect();
        assert_eq!(r.validate().unwrap_err().field, "time_windows");
        let mut r = request();
        r.required_skills = vec![Skill::parse("paramedic").unwrap(); MAX_REQUIRED_SKILLS + 1];
        assert_eq!(r.validate().unwrap_err().field, "required_skills");
    }

    #[test]
    fn windows_must_not_overlap() {
        let mut r = request();
        r.time_windows
            .push(TimeWindow::new(time(11, 0, 0, 0), time(14, 0, 0, 0)).unwrap());
        assert_eq!(r.validate().unwrap_err().field, "time_windows");
    }

    #[test]
    fn urgency_serde_form_is_tagged() {
        let u = Urgency::Routine {
            due_by: jiff::civil::date(2026, 11, 30),
        };
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"kind":"routine","due_by":"2026-11-30"}"#
        );
    }
}
