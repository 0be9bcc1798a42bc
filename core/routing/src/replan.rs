//! Re-planning a running day. Events (an urgent visit, a clinician running late, a patient not at
//! home, a clinician going off sick) change the problem; what is done or under way stays exactly
//! where it is, each clinician carries on from where they are, and the rest is planned again
//! starting from the previous order, with a cost for handing a visit to another clinician.

use std::collections::HashMap;

use doorstep_domain::ValidationError;
use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Round, Stop, StopKind};
use crate::planner::{self, DayState, Key, Returned};
use crate::validate::{DAY_MINUTES, LAST_TIME};
use crate::{Budget, Clinician, Clock, Location, Problem, RoutingError, Visit, Window};

/// Something that happened during the day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
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
    // The event that says when "now" is, to name when the day runs out.
    let latest = events.iter().rposition(|e| e.at() == now).unwrap_or(0);
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
    // A plan this library made has one round a clinician and each stop once; one that
    // does not (edited by hand, or joined from two) would plan a visit twice.
    let mut planned = std::collections::HashSet::new();
    let twice = |field: String, what: &str| {
        Err(RoutingError::Invalid(ValidationError::new(
            field,
            format!("{what} is in the previous plan already: each is planned once"),
        )))
    };
    for (j, round) in previous.rounds.iter().enumerate() {
        let k = clinician_index(problem, &round.clinician, &|| {
            format!("previous.rounds[{j}].clinician")
        })?;
        if previous_rounds[k].is_some() {
            return twice(
                format!("previous.rounds[{j}].clinician"),
                "this clinician's round",
            );
        }
        previous_rounds[k] = Some(round);
        if let Some(f) = round.free_from {
            crate::validate::check_location(
                &format!("previous.rounds[{j}].free_from.location"),
                f.location,
            )?;
            let clinician = &problem.clinicians[k];
            let end = clinician.end.unwrap_or(clinician.start);
            if f.at.secs() + planner::travel_matrix(problem, &[f.location, end])[1] >= LAST_TIME {
                return Err(no_time_to_drive_back(
                    format!("previous.rounds[{j}].free_from.at"),
                    clinician,
                ));
            }
        }
        for (i, stop) in round.stops.iter().enumerate() {
            let keys = match stop.kind {
                StopKind::Visit => vec![Key::Visit(stop.id.clone())],
                StopKind::CareHome => (stop.residents.iter())
                    .map(|r| Key::Resident(stop.id.clone(), r.clone()))
                    .collect(),
                StopKind::Break => vec![Key::Break(round.clinician.clone())],
            };
            if !keys.into_iter().all(|key| planned.insert(key)) {
                return twice(format!("previous.rounds[{j}].stops[{i}]"), "this stop");
            }
        }
    }
    state.returned = vec![None; problem.clinicians.len()];
    state.unlisted = vec![0; problem.clinicians.len()];
    state.departed = vec![None; problem.clinicians.len()];
    state.last_free = vec![None; problem.clinicians.len()];
    for (k, round) in previous_rounds.into_iter().enumerate() {
        let clinician = &problem.clinicians[k];
        // Running late, each report in turn: from the report on, the clinician is that much
        // behind the previous plan (the stop under way ends later, the ones after it start
        // later), and not free before the report plus the delay even between stops.
        let planned: &[Stop] = round.map_or(&[], |r| &r.stops);
        let mut reports = delays.remove(&k).unwrap_or_default();
        reports.sort_by_key(|&(at, _, _)| at);
        let mut stops: Vec<Stop> = planned.to_vec();
        let mut held_until = i64::MIN;
        // Where the round ends up before the drive back: its last stop with a place.
        let last_place = planned
            .iter()
            .rev()
            .find_map(|s| stop_location(problem, s.kind, &s.id))
            .unwrap_or(clinician.start);
        let end = clinician.end.unwrap_or(clinician.start);
        let drive_back = planner::travel_matrix(problem, &[last_place, end])[1];
        for (n, &(reported, delay, i)) in reports.iter().enumerate() {
            for (stop, was) in stops.iter_mut().zip(planned) {
                for t in [&mut stop.arrival, &mut stop.start, &mut stop.finish] {
                    if *t > reported {
                        *t = Clock::from_secs(t.secs() + delay);
                    }
                }
                if stop.finish != was.finish {
                    stop.waiting_seconds = (stop.start.secs() - stop.arrival.secs()).max(0) as u32;
                    stop.late_seconds = lateness(problem, clinician, was, &reports[..=n]);
                }
            }
            held_until = held_until.max(reported.secs()) + delay;
            let latest = stops.last().map_or(0, |s| s.finish.secs());
            // On the way back as the plan before had them, that much later.
            let back = round.map_or(0, |r| behind(r.back.secs(), &reports[..=n]));
            // Every stop done by the report: on the way back, or back, with no drive after
            // being free again (one kept at a door where nobody answered is checked once
            // every event is read, below).
            let after_stops = if latest <= reported.secs() {
                held_until
            } else {
                latest.max(held_until) + drive_back
            };
            if after_stops.max(back) >= LAST_TIME {
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
        // Driving done that no stop kept will show: what the previous plan already carried,
        // and below, each door reached whose visit leaves the round.
        let mut unlisted = round.map_or(0, |r| r.unlisted_travel_seconds);
        // Gone off sick by now: only what they had begun before they went stays theirs.
        // A stop they were driving to, or waiting at, goes to someone else.
        let off_at = clinician.off_from.filter(|&o| o <= now);
        // Past the previous plan's fixed stops the clinician was free where it says (a door
        // whose patient was not at home, their end location after driving back), unless one
        // of those stops went otherwise (a patient not at home after all).
        let boundary = planned.iter().take_while(|s| s.fixed).count();
        let resume = round
            .and_then(|r| r.free_from)
            .map(|f| (f.location, behind(f.at.secs(), &reports)));
        // When they were free where the previous plan had them, if that still holds.
        let mut resumed = None;
        for (i, (was, stop)) in planned.iter().zip(&stops).enumerate() {
            if i == boundary
                && !released
                && let Some((at, from)) = resume
            {
                (here, free) = (at, from);
                resumed = Some(from);
            }
            let set_off = stop.arrival.secs() - i64::from(stop.travel_seconds);
            // Arrived early and waiting for the stop to begin: the clinician stands there,
            // free, and the stop is planned again with the rest (it stays unless something
            // better comes up, such as an urgent call while they wait for a window).
            let waiting = !stop.fixed && stop.arrival <= now && now < stop.start;
            if waiting {
                here = stop_location(problem, stop.kind, &stop.id).unwrap_or(here);
                unlisted += stop.travel_seconds;
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
                    split_sitting(problem, was, stop, off, &reports)
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
                    // They leave the door when reported, but not before they reach it: a
                    // report that comes ahead (a carer phoning while the clinician drives
                    // there) frees them on arrival, not back in time.
                    here = loc.unwrap_or(here);
                    free = free.max(left.secs()).max(stop.arrival.secs());
                    unlisted += stop.travel_seconds;
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
                release(&mut state, problem, k, was);
            }
        }
        if boundary == planned.len()
            && !released
            && let Some((at, from)) = resume
        {
            (here, free) = (at, from);
            resumed = Some(from);
        }
        // Gone off sick after that, on the way to what came next: the day ends no earlier
        // than the plan before had them free (back at their end location, or leaving a door
        // nobody answered), whose drive their travel already holds. Gone before then (still
        // driving to that door), it ends when they went.
        if let Some(off) = off_at {
            state.last_free[k] = resumed.filter(|&free| free <= off.secs());
        }
        free = free.max(held_until);
        // Every stop done as planned and the drive back begun: they are back at their end
        // location when the previous plan had them back, and that drive is part of the day
        // so far, as that plan counted it. A round with no stop to show but driving it
        // carried had them drive back from the last door they reached, at once.
        // One gone off sick after setting off back drives back all the same.
        let done = match fixed.last() {
            Some(last) => last.finish <= now,
            None => planned.is_empty() && round.is_some_and(|r| r.unlisted_travel_seconds > 0),
        };
        if let (Some(round), true, false) = (round, done, released)
            && clinician
                .off_from
                .is_none_or(|off| off > fixed.last().map_or(round.depart, |last| last.finish))
        {
            // The travel the previous round counted beyond its stops and what it carried
            // unlisted: the drive back.
            let stops_travel: u32 = planned.iter().map(|s| s.travel_seconds).sum();
            let drive = round
                .travel_seconds
                .saturating_sub(stops_travel)
                .saturating_sub(round.unlisted_travel_seconds);
            // A delay reported on the way back puts the return that much later.
            let back = Clock::from_secs(behind(round.back.secs(), &reports));
            let back = fixed.last().map_or(back, |last| back.max(last.finish));
            here = clinician.end.unwrap_or(clinician.start);
            free = free.max(back.secs());
            state.returned[k] = Some(Returned { back, drive });
        }
        free = free.max(now.secs());
        let off = clinician.off_from.is_some_and(|o| o <= now);
        state.avail[k] = (!off).then_some((here, free));
        // Out (a stop kept, or a door reached) and not on the way back: whatever else they
        // are given, they drive back from where and when they are free, which a plan must be
        // able to show. Checked here, where the day's events have all been read: a delay
        // keeping them at a door where nobody answered is still to be driven back from.
        let out = !fixed.is_empty() || unlisted > 0;
        if out
            && state.returned[k].is_none()
            && let Some((at, from)) = state.avail[k]
            && from + planner::travel_matrix(problem, &[at, end])[1] >= LAST_TIME
        {
            let field = match reports.last() {
                Some(&(_, _, i)) => format!("events[{i}].minutes"),
                None => format!("events[{latest}].at"),
            };
            return Err(no_time_to_drive_back(field, clinician));
        }
        state.fixed[k] = fixed;
        state.unlisted[k] = unlisted;
        state.departed[k] = round.map(|r| r.depart);
    }
    planner::solve_from(problem, &state, budget, seed).map_err(|e| match e {
        RoutingError::Invalid(mut e) => {
            e.field = event_path(&e.field, first_urgent, &urgent_events).unwrap_or(e.field);
            RoutingError::Invalid(e)
        }
        e => e,
    })
}

/// The refusal of a re-plan (named by `field`) that leaves `clinician` free only too late to
/// drive back before 48:00, which no plan can show.
fn no_time_to_drive_back(field: String, clinician: &Clinician) -> RoutingError {
    ValidationError::new(
        field,
        format!(
            "leaves no time to drive back before 48:00, the last time a plan can show \
             (clinician {})",
            clinician.id
        ),
    )
    .into()
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

/// `t`, later by every delay reported before it (each report shifts what is still to come,
/// in turn).
fn behind(t: i64, reports: &[(Clock, i64, usize)]) -> i64 {
    reports.iter().fold(
        t,
        |t, &(at, delay, _)| if t > at.secs() { t + delay } else { t },
    )
}

/// When each review of the care-home sitting `planned` starts and ends: one after another
/// from the sitting's start, each later by the delays reported before it.
fn reviews(problem: &Problem, planned: &Stop, reports: &[(Clock, i64, usize)]) -> Vec<(i64, i64)> {
    let mut at = planned.start.secs();
    planned
        .residents
        .iter()
        .map(|r| {
            let start = at;
            at += 60 * i64::from(resident_minutes(problem, &planned.id, r));
            (behind(start, reports), behind(at, reports))
        })
        .collect()
}

/// Seconds a fixed stop starting at `t` is late: none inside a window or before the first,
/// else past the end of the last window that closed before it. A delay can push a stop under
/// way past one window and short of the next; the clinician starts when they get there, late
/// for the window they missed (the planner, free to choose, would have waited for the next).
fn late_at(windows: &[Window], t: i64) -> i64 {
    if windows
        .iter()
        .any(|w| (w.start.secs()..=w.end.secs()).contains(&t))
    {
        return 0;
    }
    windows
        .iter()
        .map(|w| w.end.secs())
        .filter(|&end| end < t)
        .max()
        .map_or(0, |end| t - end)
}

/// The lateness of stop `planned` once the delays `reports` have put it later.
fn lateness(
    problem: &Problem,
    clinician: &Clinician,
    planned: &Stop,
    reports: &[(Clock, i64, usize)],
) -> u32 {
    let late = match planned.kind {
        StopKind::Visit => problem
            .visits
            .iter()
            .find(|v| v.id == planned.id)
            .map_or(0, |v| {
                late_at(&v.windows, behind(planned.start.secs(), reports))
            }),
        StopKind::CareHome => problem
            .care_homes
            .iter()
            .find(|h| h.id == planned.id)
            .map_or(0, |h| {
                reviews(problem, planned, reports)
                    .iter()
                    .map(|&(start, _)| late_at(&h.windows, start))
                    .sum()
            }),
        StopKind::Break => clinician.break_.as_ref().map_or(0, |b| {
            late_at(&[b.window], behind(planned.start.secs(), reports))
        }),
    };
    late as u32
}

/// A care-home sitting cut where its clinician went off sick at `off`: the reviews begun
/// before then (one under way included), as `stop` shows them after any delay, and, when any
/// were not, the rest as the previous plan had them (`planned`), to plan again.
fn split_sitting(
    problem: &Problem,
    planned: &Stop,
    stop: &Stop,
    off: Clock,
    reports: &[(Clock, i64, usize)],
) -> (Stop, Option<Stop>) {
    let times = reviews(problem, planned, reports);
    let begun = times
        .iter()
        .take_while(|&&(start, _)| start < off.secs())
        .count();
    if begun == times.len() {
        return (stop.clone(), None);
    }
    let windows = problem
        .care_homes
        .iter()
        .find(|h| h.id == stop.id)
        .map_or(&[][..], |h| &h.windows);
    let mut kept = stop.clone();
    kept.residents.truncate(begun);
    kept.finish = Clock::from_secs(times[begun - 1].1);
    kept.late_seconds = times[..begun]
        .iter()
        .map(|&(start, _)| late_at(windows, start))
        .sum::<i64>() as u32;
    let planned_times = reviews(problem, planned, &[]);
    let mut rest = planned.clone();
    rest.residents.drain(..begun);
    rest.start = Clock::from_secs(planned_times[begun].0);
    (kept, Some(rest))
}

/// `visits[n].rest` as the path of the urgent-visit event that added visit `n`
/// (`events[i].visit.rest`), when it was one of those events' visits.
fn event_path(field: &str, first_urgent: usize, urgent_events: &[usize]) -> Option<String> {
    let (n, rest) = field.strip_prefix("visits[")?.split_once(']')?;
    let event = urgent_events.get(n.parse::<usize>().ok()?.checked_sub(first_urgent)?)?;
    Some(format!("events[{event}].visit{rest}"))
}
