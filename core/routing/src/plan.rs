//! The answer: each clinician's round with its times, every visit left out with the true reason
//! why, and the objective broken into its terms. Serialised as documented in
//! `docs/plan-schema.md`; the CLI prints it and the app renders it.

use serde::{Deserialize, Serialize};

use crate::{Clock, Location};

/// The weights of the objective, lexicographic in effect: each term outweighs any realistic
/// amount of the terms after it. Units are cost per second or per visit.
///
/// | term | weight | so that |
/// |---|---|---|
/// | unserved immediate visit | 10^13 each | nothing else ever justifies leaving one out |
/// | unserved same-day visit | 10^12 each | worth more than 10 hours of lateness |
/// | lateness | 10^7 per second | one second late costs as much as deferring ten routine visits not yet overdue |
/// | unserved routine visit | 10^6 + 10^5 per day overdue (capped at 30 days) | outweighs 5 days of travel |
/// | travel | 2 per second | |
/// | overtime | 1 per second | only breaks ties between equal travel |
/// | moving a visit to another clinician when re-planning | 1 200 | about 10 minutes of travel |
/// | re-planned visit starting over an hour later than planned | 1 per second past the hour | an hour: half an hour's travel |
///
/// Overtime is also capped by each clinician's `max_overtime_minutes`: no plan works past the
/// cap (the search prices it as lateness, and what it leaves past the cap is taken out).
pub mod weights {
    /// Leaving an immediate visit out.
    pub const UNSERVED_IMMEDIATE: i64 = 10_000_000_000_000;
    /// Leaving a same-day visit out.
    pub const UNSERVED_SAME_DAY: i64 = 1_000_000_000_000;
    /// Per second of lateness.
    pub const LATENESS: i64 = 10_000_000;
    /// Leaving a routine visit out, before overdue days.
    pub const UNSERVED_ROUTINE: i64 = 1_000_000;
    /// Per overdue day of a routine visit left out.
    pub const OVERDUE_DAY: i64 = 100_000;
    /// Overdue days counted at most.
    pub const OVERDUE_CAP: u32 = 30;
    /// Per second of travel.
    pub const TRAVEL: i64 = 2;
    /// Per second of overtime.
    pub const OVERTIME: i64 = 1;
    /// Per visit given to another clinician on a re-plan.
    pub const REASSIGN: i64 = 1_200;
    /// Per second a visit starts beyond [`DELAY_GRACE`] later than it was planned, on a
    /// re-plan: patients and carers were told a time.
    pub const DELAY: i64 = 1;
    /// How much later than planned a re-planned visit may start at no cost, seconds.
    pub const DELAY_GRACE: i64 = 3_600;
}

/// A planned day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// One round per clinician, in the problem's order (empty rounds included).
    pub rounds: Vec<Round>,
    /// Every visit or resident not planned, with why.
    pub unplanned: Vec<Unplanned>,
    /// The objective, term by term.
    pub summary: Summary,
}

/// One clinician's round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Round {
    /// The clinician.
    pub clinician: String,
    /// When they leave their start (or became available again on a re-plan).
    pub depart: Clock,
    /// When they are back at their end location.
    pub back: Clock,
    /// Stops in order.
    pub stops: Vec<Stop>,
    /// Travel seconds on the round: its stops' travel, the drive back, and
    /// `unlisted_travel_seconds`.
    pub travel_seconds: u32,
    /// Seconds already driven that no stop of the round shows, and counted in `travel_seconds`
    /// so that the day's travel is what was driven: to a door where the patient was not at
    /// home, to a door the clinician was waiting at when a re-plan put that visit back into
    /// the planning, and back to their end location before being sent out again. Only a
    /// re-plan has any; a plan without the field reads as none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unlisted_travel_seconds: u32,
    /// Seconds back after the shift end.
    pub overtime_seconds: u32,
    /// On a re-plan, where and when the clinician was free for the work after the fixed
    /// stops: the next re-plan starts them from here when nothing after those stops has begun
    /// (at a door whose patient was not at home, at their end location after driving back).
    /// Absent where that is their start location at the start of their shift, as in every
    /// fresh plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_from: Option<FreeFrom>,
}

/// Where and when a clinician is free on a re-plan (see [`Round::free_from`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeFrom {
    /// Where they are.
    pub location: Location,
    /// From when.
    pub at: Clock,
}

/// Whether `n` is zero, to leave a field that is out of a fresh plan's JSON.
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What happens at a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopKind {
    /// A home visit.
    Visit,
    /// A care-home visit serving the listed residents.
    CareHome,
    /// The clinician's break.
    Break,
}

/// One stop of a round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// What kind of stop.
    pub kind: StopKind,
    /// The visit's or care home's id (empty for a break).
    pub id: String,
    /// Residents reviewed, for a care-home stop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub residents: Vec<String>,
    /// Arrival.
    pub arrival: Clock,
    /// Start of service.
    pub start: Clock,
    /// End of service.
    pub finish: Clock,
    /// Seconds spent waiting for the window to open.
    pub waiting_seconds: u32,
    /// Seconds started after the window's end.
    pub late_seconds: u32,
    /// Seconds of travel from the previous stop.
    pub travel_seconds: u32,
    /// Done or under way when the plan was made; a re-plan never moves it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed: bool,
}

/// A visit (or resident) left out of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unplanned {
    /// The visit's id, or the resident's id for a care-home review.
    pub id: String,
    /// The care home, for a resident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub care_home: Option<String>,
    /// Why it is not planned.
    pub reason: Reason,
}

/// Why a visit is not planned: the binding constraint found by trying it in every position of
/// every round that could take it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// Nobody is working (no clinician listed, or every one off; on a re-plan, also every one
    /// free again only past their shift's end and overtime), so nothing could be tried.
    NoClinicianWorking,
    /// No working clinician has all the skills it needs.
    NoSkilledClinician {
        /// Required skills that no working clinician has (empty: each is held by someone, but
        /// never all by one person).
        missing: Vec<String>,
    },
    /// It is pinned to a clinician who is not working.
    PinnedClinicianUnavailable {
        /// That clinician.
        clinician: String,
    },
    /// It is pinned to a working clinician who lacks skills it needs (someone else may hold
    /// them: the pin, not the team, is what stands in the way).
    PinnedClinicianLacksSkills {
        /// That clinician.
        clinician: String,
        /// The skills it needs that they lack.
        missing: Vec<String>,
    },
    /// Even with nothing else to do, no suitable clinician could start it within its window
    /// and be back before their shift (plus allowed overtime) ends.
    OutsideEveryShift,
    /// Every place it could go would make an immediate visit late, or start one more than
    /// five minutes after the soonest anyone could (immediate means as soon as possible).
    WouldMakeImmediateLate {
        /// The immediate visit (or resident's review) that would be late at the best position.
        visit: String,
        /// The resident's care home, when it is a review: resident ids are unique only within
        /// their home.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        care_home: Option<String>,
    },
    /// Every place it could go would make another visit late.
    WouldMakeVisitLate {
        /// The visit (or resident's review) that would be late at the best position.
        visit: String,
        /// The resident's care home, when it is a review (as for an immediate one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        care_home: Option<String>,
    },
    /// Every place it could go would push a clinician's break out of its window (the break
    /// is the only thing it would make late there).
    WouldDelayBreak {
        /// The clinician whose break it would push at the best position.
        clinician: String,
    },
    /// Every suitable clinician is busy throughout its window.
    NoRoomInWindow,
    /// Every place it could go would keep the clinician beyond shift end plus allowed overtime.
    WouldExceedShift {
        /// The clinician at the best position.
        clinician: String,
    },
    /// The care home's visit today is full; this resident's review is deferred (the home is
    /// split across days).
    CareHomeVisitFull,
    /// The patient was not at home.
    PatientNotAtHome,
}

/// The objective's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Immediate and same-day visits not planned.
    pub unserved_urgent: u32,
    /// Total lateness, seconds.
    pub late_seconds: u64,
    /// Routine visits and residents not planned.
    pub unserved_routine: u32,
    /// Total travel, seconds.
    pub travel_seconds: u64,
    /// Total overtime, seconds.
    pub overtime_seconds: u64,
    /// On a re-plan, visits and residents now with another clinician.
    #[serde(default)]
    pub reassigned: u32,
    /// On a re-plan, seconds by which visits start later than planned, beyond the hour's grace.
    #[serde(default)]
    pub moved_later_seconds: u64,
    /// Seconds immediate visits (and reviews) start more than five minutes after the soonest
    /// any clinician who may take them could, beyond any lateness past their window: how long
    /// urgent patients wait on other work. The planner weighs it as lateness, so a coordinator
    /// sees what a plan trades for it, and `cost` ranks plans as the planner does.
    #[serde(default)]
    pub immediate_delay_seconds: u64,
    /// The weighted sum (see [`weights`]); lower is better.
    pub cost: i64,
}
