//! Re-planning a running day. Events (an urgent visit, a clinician running late, a patient not at
//! home, a clinician going off sick) change the problem; what is done or under way stays exactly
//! where it is, each clinician carries on from where they are, and the rest is planned again
//! starting from the previous order, with a cost for handing a visit to another clinician.

use std::collections::HashMap;

use doorstep_domain::ValidationError;
use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Round, Stop, StopKind};
use crate::planner::{self, DayState, Key};
use crate::validate::{DAY_MINUTES, LAST_TIME};
use crate::{Budget, Clock, Location, Problem, RoutingError, Visit};

/// Something that happened during the day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// A new visit came in (typically immediate, after the duty GP's triage).
    UrgentVisit {
        /// When it came in.
        at: Clock,
        /// The visit.
        visit: Visit,
    },
    /// A clinician reports running late: they are free `minutes` later than planned.
    ClinicianLate {
        /// When they reported it.
        at: Clock,
        /// Who.
        clinician: String,
        /// By how much.
        minutes: u32,
    },
    /// The clinician arrived and the patient was not at home; the visit is closed for today.
    PatientNotAtHome {
        /// When the clinician left the door.
        at: Clock,
        /// The visit.
        visit: String,
    },
    /// A clinician stops working for the rest of the day.
    ClinicianOffSick {
        /// From when.
        at: Clock,
        /// Who.
        clinician: String,
    },
}

impl Event {
    fn at(&self) -> Clock {
        match self {
            Event::UrgentVisit { at, .. }
            | Event::ClinicianLate { at, .. }
            | Event::PatientNotAtHome { at, .. }
            | Event::ClinicianOffSick { at, .. } => *at,
        }
    }
}

/// Where a stop of the previous plan is.
fn stop_location(problem: &Problem, kind: StopKind, id: &str) -> Option<Location> {
    match kind {
        StopKind::Visit => problem
            .visits
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.location),
        StopKind::CareHome => problem
            .care_homes
            .iter()
            .find(|h| h.id == id)
            .map(|h| h.location),
        StopKind::Break => None,
    }
}

/// Minutes of resident `resident` of care home `home` (0 if either is unknown, which only
/// shifts the times later residents are compared with).
fn resident_minutes(problem: &Problem, home: &str, resident: &str) -> u32 {
    problem
        .care_homes
        .iter()
        .find(|h| h.id == home)
        .and_then(|h| h.residents.iter().find(|r| r.id == resident))
        .map_or(0, |r| r.minutes)
}

/// Applies `events` to `problem` and re-plans the rest of the day from `previous`.
///
/// "Now" is the latest event's time. A stop the clinician has already set off for (its arrival
/// minus its travel is before now) is done or under way: it stays in its round, marked `fixed`,
/// with its times; except one they have reached and are waiting at (arrived, not yet started),
/// which is planned again from there, so a clinician idle at a door can take an urgent call.
/// A clinician gone off sick keeps only what they had begun when they went (in a care-home
/// sitting, the reviews begun). A delay puts a clinician that much behind the previous plan
/// from when it was reported, so whether they have set off for a stop is judged on the later
/// times. An urgent visit that breaks a rule is refused naming its event
/// (`events[1].visit.minutes`).
/// The problem is updated in place (the urgent visit added, the absent patient's visit closed,
/// the sick clinician's day ended), so the next re-plan starts from it and the returned plan.
/// On an error it is left exactly as it was, so a caller can correct the events and try
/// again.
pub fn replan(
    problem: &mut Problem,
    previous: &Plan,
    events: &[Event],
    budget: &Budget,
    seed: u64,
) -> Result<Plan, RoutingError> {
    let mut next = problem.clone();
    let plan = apply(&mut next, previous, events, budget, seed)?;
    *problem = next;
    Ok(plan)
}

/// [`replan`] on a copy of the problem that the caller keeps only when this succeeds.
fn apply(
    problem: &mut Problem,
    previous: &Plan,
    events: &[Event],
    budget: &Budget,
    seed: u64,
) -> Result<Plan, RoutingError> {
    let now = events
        .iter()
        .map(Event::at)
        .max()
        .ok_or_else(|| ValidationError::new("events", "a re-plan needs at least one event"))?;
    // Where clinician `id` is in the problem; `field` says where it was named, for the error.
    let clinician_index = |problem: &Problem, id: &str, field: &dyn Fn() -> String| {
        problem
            .clinicians
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| RoutingError::UnknownId {
                field: field(),
                kind: "clinician",
                id: id.to_string(),
            })
    };
    // The event that added each visit past the problem's own, to name it in an error.
    let first_urgent = problem.visits.len();
    let mut urgent_events: Vec<usize> = Vec::new();
    // Per clinician, each delay reported: when, how many seconds, and by which event.
    let mut delays: HashMap<usize, Vec<(Clock, i64, usize)>> = HashMap::new();
    let mut not_home: HashMap<String, Clock> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        match event {
            Event::UrgentVisit { visit, .. } => {
                if problem.visits.iter().any(|v| v.id == visit.id) {
                    return Err(ValidationError::new(
                        format!("events[{i}].visit.id"),
                        format!("visit {} is already in the plan", visit.id),
                    )
                    .into());
                }
                if problem.care_homes.iter().any(|h| h.id == visit.id) {
                    return Err(ValidationError::new(
                        format!("events[{i}].visit.id"),
                        format!("{} is already a care home's id", visit.id),
                    )
                    .into());
                }
                problem.visits.push(visit.clone());
                urgent_events.push(i);
            }
            Event::ClinicianLate {
                at,
                clinician,
                minutes,
            } => {
                let k = clinician_index(problem, clinician, &|| format!("events[{i}].clinician"))?;
                if *minutes > DAY_MINUTES {
                    return Err(ValidationError::new(
                        format!("events[{i}].minutes"),
                        format!("must be at most {DAY_MINUTES} (clinician {clinician})"),
                    )
                    .into());
                }
                delays
                    .entry(k)
                    .or_default()
                    .push((*at, 60 * i64::from(*minutes), i));
            }
            Event::PatientNotAtHome { at, visit } => {
                let v = problem
                    .visits
                    .iter_mut()
                    .find(|v| &v.id == visit)
                    .ok_or_else(|| RoutingError::UnknownId {
                        field: format!("events[{i}].visit"),
                        kind: "visit",
                        id: visit.clone(),
                    })?;
                v.not_at_home = true;
                not_home.insert(visit.clone(), *at);
            }
            Event::ClinicianOffSick { at, clinician } => {
                let k = clinician_index(problem, clinician, &|| format!("events[{i}].clinician"))?;
                problem.clinicians[k].off_from = Some(*at);
            }
        }
    }

    let mut state = DayState::fresh(problem);
    state.warm = vec![Vec::new(); problem.clinicians.len()];
    // Each clinician's previous stops; one added since that plan has none, and starts
    // from their start location no earlier than now, as everyone else carries on from now.
    let mut previous_rounds: Vec<Option<&Round>> = vec![None; problem.clinicians.len()];
    for (j, round) in previous.rounds.iter().enumerate() {
        let k = clinician_index(problem, &round.clinician, &|| {
            format!("previous.rounds[{j}].clinician")
        })?;
        previous_rounds[k] = Some(round);
    }
    state.returned = vec![None; problem.clinicians.len()];
    for (k, round) in previous_rounds.into_iter().enumerate() {
        let clinician = &problem.clinicians[k];
        // Running late, each report in turn: from the report on, the clinician is that much
        // behind the previous plan (the stop under way ends later, the ones after it start
        // later), and not free before the report plus the delay even between stops.
        let mut stops: Vec<Stop> = round.map_or_else(Vec::new, |r| r.stops.clone());
        let mut reports = delays.remove(&k).unwrap_or_default();
        reports.sort_by_key(|&(at, _, _)| at);
        let late_reported = !reports.is_empty();
        let mut held_until = i64::MIN;
        for (reported, delay, i) in reports {
            let shift = |t: &mut Clock| {
                if *t > reported {
                    *t = Clock::from_secs(t.secs() + delay);
                }
            };
            for stop in &mut stops {
                shift(&mut stop.arrival);
                shift(&mut stop.start);
                shift(&mut stop.finish);
            }
            held_until = held_until.max(reported.secs()) + delay;
            let latest = stops.last().map_or(0, |s| s.finish.secs());
            if latest.max(held_until) >= LAST_TIME {
                return Err(ValidationError::new(
                    format!("events[{i}].minutes"),
                    format!(
                        "runs past 48:00, the last time a plan can show (clinician {})",
                        clinician.id
                    ),
                )
                .into());
            }
        }
        // Whether the day went other than the previous round had it: a stop of it planned
        // again, or a patient not at home.
        let mut released = false;
        let mut fixed = Vec::new();
        let mut here = clinician.start;
        let mut free = clinician.shift.start.secs().max(now.secs());
        // Gone off sick by now: only what they had begun before they went stays theirs.
        // A stop they were driving to, or waiting at, goes to someone else.
        let off_at = clinician.off_from.filter(|&o| o <= now);
        for (planned, stop) in round.map_or(&[][..], |r| &r.stops).iter().zip(&stops) {
            let set_off = stop.arrival.secs() - i64::from(stop.travel_seconds);
            // Arrived early and waiting for the stop to begin: the clinician stands there,
            // free, and the stop is planned again with the rest (it stays unless something
            // better comes up, such as an urgent call while they wait for a window).
            let waiting = !stop.fixed && stop.arrival <= now && now < stop.start;
            if waiting {
                here = stop_location(problem, stop.kind, &stop.id).unwrap_or(here);
            }
            let kept = match off_at {
                Some(off) => stop.fixed || stop.start < off,
                None => !waiting && (stop.fixed || set_off < now.secs()),
            };
            released |= !kept;
            // A care-home sitting begun before they went off sick: the reviews begun are
            // theirs, the rest are planned again.
            let (stop, rest) = match off_at {
                Some(off) if kept && !stop.fixed && stop.kind == StopKind::CareHome => {
                    split_sitting(problem, stop, off)
                }
                _ => (stop.clone(), None),
            };
            if let Some(rest) = &rest {
                release(&mut state, problem, k, rest);
                released = true;
            }
            let stop = &stop;
            if kept {
                let loc = stop_location(problem, stop.kind, &stop.id);
                if stop.kind == StopKind::Visit
                    && let Some(&left) = not_home.get(&stop.id)
                {
                    here = loc.unwrap_or(here);
                    free = free.max(left.secs());
                    released = true;
                    continue;
                }
                let mut s = stop.clone();
                s.fixed = true;
                here = loc.unwrap_or(here);
                free = s.finish.secs();
                match s.kind {
                    StopKind::Visit => {
                        state.done.insert(Key::Visit(s.id.clone()));
                    }
                    StopKind::CareHome => {
                        for r in &s.residents {
                            state.done.insert(Key::Resident(s.id.clone(), r.clone()));
                        }
                    }
                    StopKind::Break => state.break_done[k] = true,
                }
                fixed.push(s);
            } else {
                // As the previous plan had it: the time a patient was told.
                release(&mut state, problem, k, planned);
            }
        }
        free = free.max(held_until);
        // Every stop done as planned and the drive back begun: they are back at their end
        // location when the previous plan had them back, and that drive is part of the day
        // so far.
        if let (Some(round), Some(last), false) = (round, fixed.last(), released)
            && last.finish <= now
            && !late_reported
        {
            let drive = (round.back.secs() - last.finish.secs()).max(0);
            here = clinician.end.unwrap_or(clinician.start);
            free = free.max(round.back.secs());
            state.returned[k] = Some((round.back, drive as u32));
        }
        free = free.max(now.secs());
        let off = clinician.off_from.is_some_and(|o| o <= now);
        state.avail[k] = (!off).then_some((here, free));
        state.fixed[k] = fixed;
    }
    planner::solve_from(problem, &state, budget, seed).map_err(|e| match e {
        RoutingError::Invalid(mut e) => {
            e.field = event_path(&e.field, first_urgent, &urgent_events).unwrap_or(e.field);
            RoutingError::Invalid(e)
        }
        e => e,
    })
}

/// Puts a stop of the previous plan back to be planned again: each key with the clinician it
/// was with and the time it was to start (residents one after another from the sitting's
/// start; a break has no such time, it may move freely), in the previous order.
fn release(state: &mut DayState, problem: &Problem, k: usize, stop: &Stop) {
    let keys: Vec<(Key, Option<i64>)> = match stop.kind {
        StopKind::Visit => vec![(Key::Visit(stop.id.clone()), Some(stop.start.secs()))],
        StopKind::CareHome => {
            let mut at = stop.start.secs();
            stop.residents
                .iter()
                .map(|r| {
                    let start = at;
                    at += 60 * i64::from(resident_minutes(problem, &stop.id, r));
                    (Key::Resident(stop.id.clone(), r.clone()), Some(start))
                })
                .collect()
        }
        StopKind::Break => vec![(Key::Break(problem.clinicians[k].id.clone()), None)],
    };
    for (key, start) in keys {
        state.home.insert(key.clone(), k);
        if let Some(start) = start {
            state.was.insert(key.clone(), start);
        }
        state.warm[k].push(key);
    }
}

/// A care-home sitting cut where its clinician went off sick at `off`: the reviews begun
/// before then (one under way included), and, when any were not, the rest as a sitting of
/// their own to plan again. A review's lateness is counted past the home's last window, as
/// the planner counts it.
fn split_sitting(problem: &Problem, stop: &Stop, off: Clock) -> (Stop, Option<Stop>) {
    let last_end = problem
        .care_homes
        .iter()
        .find(|h| h.id == stop.id)
        .and_then(|h| h.windows.last())
        .map(|w| w.end.secs());
    let late = |start: i64| last_end.map_or(0, |end| (start - end).max(0));
    let mut at = stop.start.secs();
    let mut begun = 0;
    let mut late_begun = 0;
    for r in &stop.residents {
        if at >= off.secs() {
            break;
        }
        late_begun += late(at);
        at += 60 * i64::from(resident_minutes(problem, &stop.id, r));
        begun += 1;
    }
    if begun == stop.residents.len() {
        return (stop.clone(), None);
    }
    let mut kept = stop.clone();
    kept.residents.truncate(begun);
    kept.finish = Clock::from_secs(at);
    kept.late_seconds = late_begun as u32;
    let mut rest = stop.clone();
    rest.residents.drain(..begun);
    rest.start = Clock::from_secs(at);
    (kept, Some(rest))
}

/// `visits[n].rest` as the path of the urgent-visit event that added visit `n`
/// (`events[i].visit.rest`), when it was one of those events' visits.
fn event_path(field: &str, first_urgent: usize, urgent_events: &[usize]) -> Option<String> {
    let (n, rest) = field.strip_prefix("visits[")?.split_once(']')?;
    let event = urgent_events.get(n.parse::<usize>().ok()?.checked_sub(first_urgent)?)?;
    Some(format!("events[{event}].visit{rest}"))
}
