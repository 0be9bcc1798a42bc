//! The problem a coordinator (or the app) hands the optimiser: clinicians with their shifts and
//! skills, visits with their windows and urgency, care homes with residents due a review, and
//! how travel time is known. These are the optimiser's own types, kept apart from the domain
//! crate so the optimiser can be tested and benchmarked alone; the app maps domain records onto
//! them. All of them read and write as the JSON documented in `docs/plan-schema.md`, and a
//! field the schema does not know is refused rather than ignored: a misspelt `windows` or
//! `pinned_to` would otherwise plan the visit as if it had none.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Clock;

/// A point on the map, in WGS84 degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Latitude, degrees north.
    pub lat: f64,
    /// Longitude, degrees east.
    pub lon: f64,
}

/// A span of the day within which something may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Earliest start.
    pub start: Clock,
    /// Latest start; starting later is lateness.
    pub end: Clock,
}

/// A clinician's working day, which makes them one vehicle of the round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinician {
    /// Stable identifier, echoed in the plan.
    pub id: String,
    /// Where the day starts (base practice or home).
    pub start: Location,
    /// Where the day ends; the start when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Location>,
    /// Working hours: leave no earlier than `start`, be back by `end`.
    pub shift: Window,
    /// A break to be taken somewhere on the round, if any.
    #[serde(rename = "break", default, skip_serializing_if = "Option::is_none")]
    pub break_: Option<Break>,
    /// What the clinician can do (`paramedic`, `prescriber`, `pharmacist`, ...).
    #[serde(default)]
    pub skills: Vec<String>,
    /// How long past the shift end the clinician may be planned to work.
    #[serde(default = "default_overtime")]
    pub max_overtime_minutes: u32,
    /// Off (sick) from this time: nothing is planned for them after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_from: Option<Clock>,
}

fn default_overtime() -> u32 {
    30
}

/// A break: `minutes` long, starting within `window`, wherever the clinician is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Break {
    /// When the break may start.
    pub window: Window,
    /// Its length.
    pub minutes: u32,
}

/// How urgent a visit is; the first three terms of the objective follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    /// Must be served today, within its window (the window's end is the response target).
    Immediate,
    /// Must be served today unless that is impossible.
    SameDay,
    /// May be deferred, at a cost that grows with how overdue it is.
    #[default]
    Routine,
}

/// A home visit to one patient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    /// Stable identifier, echoed in the plan.
    pub id: String,
    /// Where the patient is.
    pub location: Location,
    /// When the visit may start; any time when empty. With several windows the visit starts in
    /// one of them.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// Expected length of the visit.
    pub minutes: u32,
    /// Skills the clinician must all have.
    #[serde(default)]
    pub skills: Vec<String>,
    /// How urgent it is.
    #[serde(default)]
    pub urgency: Urgency,
    /// Days past its due date (routine visits only): deferring it again costs more.
    #[serde(default)]
    pub days_overdue: u32,
    /// Only this clinician may do it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_to: Option<String>,
    /// The patient was found not at home; the visit is closed for today.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_at_home: bool,
}

/// One resident of a care home due a review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resident {
    /// Stable identifier, echoed in the plan.
    pub id: String,
    /// Length of this resident's review.
    pub minutes: u32,
    /// How urgent the review is.
    #[serde(default)]
    pub urgency: Urgency,
    /// Days past due.
    #[serde(default)]
    pub days_overdue: u32,
}

/// A care home: one location, many residents. A visit there serves several residents and lasts
/// as long as their reviews together; residents that do not fit today are deferred, which splits
/// the home across days.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CareHome {
    /// Stable identifier, echoed in the plan.
    pub id: String,
    /// Where the home is.
    pub location: Location,
    /// When the home receives visits; any time when empty.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// Skills the reviewing clinician must have (typically `pharmacist`).
    #[serde(default)]
    pub skills: Vec<String>,
    /// Residents due a review.
    pub residents: Vec<Resident>,
}

/// How travel time between two points is known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Travel {
    /// Average road speed, km/h.
    #[serde(default = "default_speed")]
    pub speed_kmh: f64,
    /// Road distance over great-circle distance.
    #[serde(default = "default_detour")]
    pub detour_factor: f64,
    /// Added to every trip between different places (parking, walking to the door).
    #[serde(default = "default_parking")]
    pub parking_minutes: f64,
    /// Road travel times supplied by the endpoint; they override the speed model for the points
    /// they cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<TravelMatrix>,
}

fn default_speed() -> f64 {
    30.0
}
fn default_detour() -> f64 {
    1.3
}
fn default_parking() -> f64 {
    2.0
}

impl Default for Travel {
    fn default() -> Self {
        Self {
            speed_kmh: default_speed(),
            detour_factor: default_detour(),
            parking_minutes: default_parking(),
            matrix: None,
        }
    }
}

/// Travel times between listed points, in seconds: `seconds[i][j]` from `points[i]` to
/// `points[j]`. A location matches a point when its coordinates are equal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravelMatrix {
    /// The points the matrix covers.
    pub points: Vec<Location>,
    /// Travel seconds, row-major by origin.
    pub seconds: Vec<Vec<u32>>,
}

/// Everything needed to plan one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Who is working.
    pub clinicians: Vec<Clinician>,
    /// Visits to place.
    #[serde(default)]
    pub visits: Vec<Visit>,
    /// Care homes with residents due a review.
    #[serde(default)]
    pub care_homes: Vec<CareHome>,
    /// How travel time is known.
    #[serde(default)]
    pub travel: Travel,
}

/// How long the optimiser may search: wall-clock time, a number of iterations, or both
/// (whichever comes first). The same seed and iteration count always give the same answer;
/// a time limit trades that for a fixed response time (the final polish may take a twentieth
/// more, and explaining what is left out follows the search). Whatever the budget, the first
/// solution is improved through two whole passes of the moves (to a local optimum if the
/// budget allows) before the plan is made, so a budget too short for that (a few milliseconds
/// for a network's day) is overrun rather than answered with a plan
/// that leaves out visits, urgent ones included, that any finished descent fits in. A budget
/// with neither limit is refused (the search would never stop), and so is a time limit of a
/// day or more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Stop after this much wall-clock time.
    pub time_limit: Option<Duration>,
    /// Stop after this many genetic iterations (each one child improved by local search).
    pub iterations: Option<u64>,
}

impl Budget {
    /// Search for `d` of wall-clock time.
    pub fn time(d: Duration) -> Self {
        Self {
            time_limit: Some(d),
            iterations: None,
        }
    }

    /// Search for exactly `n` iterations: deterministic for a seed, for tests and replays.
    pub fn iterations(n: u64) -> Self {
        Self {
            time_limit: None,
            iterations: Some(n),
        }
    }
}
