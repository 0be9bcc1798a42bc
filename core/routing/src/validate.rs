//! The rules a problem must meet before it is planned. A value no real day can have (a shift
//! that ends before it starts, a visit of no minutes, a latitude of 500, a speed of zero) would
//! otherwise be planned as if it were true and give a plan that looks valid and is not, so it
//! is refused with the domain's [`ValidationError`]: the JSON path of the field (as in
//! `visits[3].minutes`, so the shell or the CLI can point at it), and a reason that states the
//! rule and names the item by its id. Errors carry identifiers only: never a location, and
//! never a value from a patient's record.
//!
//! Some things that look wrong are real and are planned, with a reason: a visit pinned to a
//! clinician not on today's list, a skill nobody has, a window no shift covers.

use std::collections::{HashMap, HashSet};

use doorstep_domain::ValidationError;

use crate::{Location, Problem, RoutingError, Window};

/// Longest anything can take, in minutes: a day. A visit, a review, an allowance of overtime
/// or a reported delay longer than this is a typing error, not a plan to make.
pub(crate) const DAY_MINUTES: u32 = 24 * 60;

/// Longest break, in minutes (as the domain's shifts allow).
const LONGEST_BREAK: u32 = 120;

/// Fastest average road speed the speed model accepts, km/h.
const FASTEST_KMH: f64 = 200.0;

/// Largest ratio of road distance to great-circle distance the speed model accepts.
const LARGEST_DETOUR: f64 = 5.0;

/// Longest parking allowance per trip, in minutes.
const LONGEST_PARKING: f64 = 120.0;

/// Most visits and care homes one problem may hold together. The planner keeps travel times
/// between every two places (twice, 16 bytes a pair), so 2 000 places take about 64 MB: as much
/// as a phone should give one plan. A network's day is a few hundred.
const MOST_PLACES: usize = 2_000;

/// Most clinicians one problem may hold: a network's whole team several times over.
const MOST_CLINICIANS: usize = 200;

/// Most residents due at one care home: more than the largest homes have beds.
const MOST_RESIDENTS: usize = 500;

/// Why `problem` cannot be planned, if it cannot.
pub(crate) fn problem(problem: &Problem) -> Result<(), RoutingError> {
    size(problem)?;
    let mut clinicians = HashSet::new();
    for (i, c) in problem.clinicians.iter().enumerate() {
        let at = format!("clinicians[{i}]");
        let who = format!("clinician {}", c.id);
        id(&c.id, &at)?;
        if !clinicians.insert(c.id.as_str()) {
            return invalid(format!("{at}.id"), format!("{who} is repeated"));
        }
        location(c.start, &format!("{at}.start"), &who)?;
        if let Some(end) = c.end {
            location(end, &format!("{at}.end"), &who)?;
        }
        if c.shift.end <= c.shift.start {
            return invalid(
                format!("{at}.shift"),
                format!("must end after it starts ({who})"),
            );
        }
        if c.max_overtime_minutes > DAY_MINUTES {
            return invalid(
                format!("{at}.max_overtime_minutes"),
                format!("must be at most {DAY_MINUTES} ({who})"),
            );
        }
        if let Some(b) = &c.break_ {
            let field = format!("{at}.break");
            window(&b.window, &format!("{field}.window"), &who)?;
            if b.minutes == 0 || b.minutes > LONGEST_BREAK {
                return invalid(
                    format!("{field}.minutes"),
                    format!("must be between 1 and {LONGEST_BREAK} ({who})"),
                );
            }
            let earliest = b.window.start.max(c.shift.start).secs();
            if b.window.end < c.shift.start
                || earliest + 60 * i64::from(b.minutes) > c.shift.end.secs()
            {
                return invalid(field, format!("cannot be taken within the shift ({who})"));
            }
        }
    }
    let mut stops = HashSet::new();
    for (i, v) in problem.visits.iter().enumerate() {
        let at = format!("visits[{i}]");
        let who = format!("visit {}", v.id);
        place(&at, &who, &v.id, v.location, &v.windows, &mut stops)?;
        duration(v.minutes, &format!("{at}.minutes"), &who)?;
    }
    for (i, h) in problem.care_homes.iter().enumerate() {
        let at = format!("care_homes[{i}]");
        let who = format!("care home {}", h.id);
        place(&at, &who, &h.id, h.location, &h.windows, &mut stops)?;
        let mut residents = HashSet::new();
        for (j, r) in h.residents.iter().enumerate() {
            let at = format!("{at}.residents[{j}]");
            let resident = format!("resident {} of {who}", r.id);
            if r.id.trim().is_empty() {
                return invalid(format!("{at}.id"), format!("must not be empty ({who})"));
            }
            if !residents.insert(r.id.as_str()) {
                return invalid(format!("{at}.id"), format!("{resident} is repeated"));
            }
            duration(r.minutes, &format!("{at}.minutes"), &resident)?;
        }
    }
    travel(problem)
}

/// A day no network has, refused before the planner allocates for it: a file of a hundred
/// thousand visits is a mistake, and would otherwise exhaust the device's memory instead of
/// getting an answer.
fn size(problem: &Problem) -> Result<(), RoutingError> {
    let places = problem.visits.len() + problem.care_homes.len();
    if places > MOST_PLACES {
        return invalid(
            "visits".into(),
            format!(
                "at most {MOST_PLACES} visits and care homes together can be planned at once (this day has {places})"
            ),
        );
    }
    if problem.clinicians.len() > MOST_CLINICIANS {
        return invalid(
            "clinicians".into(),
            format!(
                "at most {MOST_CLINICIANS} clinicians can be planned at once (this day has {})",
                problem.clinicians.len()
            ),
        );
    }
    for (i, h) in problem.care_homes.iter().enumerate() {
        if h.residents.len() > MOST_RESIDENTS {
            return invalid(
                format!("care_homes[{i}].residents"),
                format!(
                    "at most {MOST_RESIDENTS} residents of one home can be due (care home {} has {})",
                    h.id,
                    h.residents.len()
                ),
            );
        }
    }
    if let Some(m) = &problem.travel.matrix {
        let most = MOST_PLACES + 2 * MOST_CLINICIANS;
        if m.points.len() > most {
            return invalid(
                "travel.matrix.points".into(),
                format!("at most {most} points (this matrix has {})", m.points.len()),
            );
        }
    }
    Ok(())
}

/// A place a clinician goes (a visit or a care home) at path `at`, known as `who`: its id,
/// unique among all such places (`seen`), its location and its windows.
fn place<'p>(
    at: &str,
    who: &str,
    name: &'p str,
    location_: Location,
    windows: &[Window],
    seen: &mut HashSet<&'p str>,
) -> Result<(), RoutingError> {
    id(name, at)?;
    if !seen.insert(name) {
        return invalid(
            format!("{at}.id"),
            format!("{who} is repeated (visits and care homes share one set of ids)"),
        );
    }
    location(location_, &format!("{at}.location"), who)?;
    for (k, w) in windows.iter().enumerate() {
        window(w, &format!("{at}.windows[{k}]"), who)?;
    }
    Ok(())
}

/// The speed model and the supplied matrix.
fn travel(problem: &Problem) -> Result<(), RoutingError> {
    let t = &problem.travel;
    if !(t.speed_kmh.is_finite() && t.speed_kmh > 0.0 && t.speed_kmh <= FASTEST_KMH) {
        return invalid(
            "travel.speed_kmh".into(),
            format!("must be above 0 and at most {FASTEST_KMH}"),
        );
    }
    if !(t.detour_factor.is_finite() && (1.0..=LARGEST_DETOUR).contains(&t.detour_factor)) {
        return invalid(
            "travel.detour_factor".into(),
            format!("must be between 1 and {LARGEST_DETOUR} (road over straight-line distance)"),
        );
    }
    if !(t.parking_minutes.is_finite() && (0.0..=LONGEST_PARKING).contains(&t.parking_minutes)) {
        return invalid(
            "travel.parking_minutes".into(),
            format!("must be between 0 and {LONGEST_PARKING}"),
        );
    }
    if let Some(m) = &t.matrix {
        if m.seconds.len() != m.points.len() || m.seconds.iter().any(|r| r.len() != m.points.len())
        {
            return invalid(
                "travel.matrix.seconds".into(),
                "must be square, one row and one column for each of the points".into(),
            );
        }
        // A place is found in the matrix by its coordinates: a repeated point would leave
        // which row holds its times to chance. (Adding 0.0 makes -0.0 and 0.0, which compare
        // equal, one key.)
        let mut seen = HashMap::with_capacity(m.points.len());
        for (i, &p) in m.points.iter().enumerate() {
            let at = format!("travel.matrix.points[{i}]");
            location(p, &at, "travel matrix")?;
            let key = ((p.lat + 0.0).to_bits(), (p.lon + 0.0).to_bits());
            if let Some(j) = seen.insert(key, i) {
                return invalid(at, format!("repeats point {j} (each place once)"));
            }
        }
        // (From a point to itself there is no travel, whatever the matrix says.)
        for (i, row) in m.seconds.iter().enumerate() {
            if let Some(j) = row.iter().position(|&t| t > 60 * DAY_MINUTES) {
                return invalid(
                    format!("travel.matrix.seconds[{i}][{j}]"),
                    format!("is over a day ({} s at most)", 60 * DAY_MINUTES),
                );
            }
        }
    }
    Ok(())
}

/// Refuses the field at path `field` for `reason`.
fn invalid(field: String, reason: String) -> Result<(), RoutingError> {
    Err(RoutingError::Invalid(ValidationError::new(field, reason)))
}

/// An identifier must say something: the plan and every re-plan event refer to items by it.
fn id(id: &str, at: &str) -> Result<(), RoutingError> {
    if id.trim().is_empty() {
        return invalid(format!("{at}.id"), "must not be empty".into());
    }
    Ok(())
}

/// WGS84 degrees, finite and in range. The error leaves the coordinates out: they are where
/// a patient lives.
fn location(l: Location, field: &str, who: &str) -> Result<(), RoutingError> {
    let ok = l.lat.is_finite()
        && l.lon.is_finite()
        && (-90.0..=90.0).contains(&l.lat)
        && (-180.0..=180.0).contains(&l.lon);
    if !ok {
        return invalid(
            field.into(),
            format!("is not a latitude (-90 to 90) and longitude (-180 to 180) in degrees ({who})"),
        );
    }
    Ok(())
}

fn window(w: &Window, field: &str, who: &str) -> Result<(), RoutingError> {
    if w.end < w.start {
        return invalid(field.into(), format!("ends before it starts ({who})"));
    }
    Ok(())
}

/// How long a visit or a review takes: at least a minute, at most a day.
fn duration(minutes: u32, field: &str, who: &str) -> Result<(), RoutingError> {
    if minutes == 0 || minutes > DAY_MINUTES {
        return invalid(
            field.into(),
            format!("must be between 1 and {DAY_MINUTES} ({who})"),
        );
    }
    Ok(())
}
