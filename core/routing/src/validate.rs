//! The rules a problem must meet before it is planned. A value no real day can have (a shift
//! that ends before it starts, a visit of no minutes, a latitude of 500, a speed of zero) would
//! otherwise be planned as if it were true and give a plan that looks valid and is not, so it
//! is refused with a message that names the item, the field and the rule. Messages carry
//! identifiers only: never a location, and never a value from a patient's record.
//!
//! Some things that look wrong are real and are planned, with a reason: a visit pinned to a
//! clinician not on today's list, a skill nobody has, a window no shift covers.

use std::collections::{HashMap, HashSet};

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

/// Why `problem` cannot be planned, if it cannot.
pub(crate) fn problem(problem: &Problem) -> Result<(), RoutingError> {
    let mut clinicians = HashSet::new();
    for c in &problem.clinicians {
        let item = || format!("clinician {}", c.id);
        id(&c.id, "clinician")?;
        if !clinicians.insert(c.id.as_str()) {
            return invalid(format!("clinician id {} repeated", c.id));
        }
        location(c.start, item, "start")?;
        if let Some(end) = c.end {
            location(end, item, "end")?;
        }
        if c.shift.end <= c.shift.start {
            return invalid(format!("{}: shift must end after it starts", item()));
        }
        if c.max_overtime_minutes > DAY_MINUTES {
            return invalid(format!(
                "{}: max_overtime_minutes must be at most {DAY_MINUTES}",
                item()
            ));
        }
        if let Some(b) = &c.break_ {
            window(&b.window, item, "break window")?;
            if b.minutes == 0 || b.minutes > LONGEST_BREAK {
                return invalid(format!(
                    "{}: break minutes must be between 1 and {LONGEST_BREAK}",
                    item()
                ));
            }
            let earliest = b.window.start.max(c.shift.start).secs();
            if b.window.end < c.shift.start
                || earliest + 60 * i64::from(b.minutes) > c.shift.end.secs()
            {
                return invalid(format!(
                    "{}: the break cannot be taken within the shift",
                    item()
                ));
            }
        }
    }
    let mut stops = HashSet::new();
    for v in &problem.visits {
        place("visit", &v.id, v.location, &v.windows, &mut stops)?;
        duration(v.minutes, || format!("visit {}", v.id))?;
    }
    for h in &problem.care_homes {
        place("care home", &h.id, h.location, &h.windows, &mut stops)?;
        let item = || format!("care home {}", h.id);
        let mut residents = HashSet::new();
        for r in &h.residents {
            let resident = || format!("care home {} resident {}", h.id, r.id);
            if r.id.trim().is_empty() {
                return invalid(format!("{}: a resident has an empty id", item()));
            }
            if !residents.insert(r.id.as_str()) {
                return invalid(format!("{}: repeated in the home", resident()));
            }
            duration(r.minutes, resident)?;
        }
    }
    travel(problem)
}

/// A place a clinician goes (a visit or a care home): its id, unique among all such places
/// (`seen`), its location and its windows.
fn place<'p>(
    what: &str,
    name: &'p str,
    at: Location,
    windows: &[Window],
    seen: &mut HashSet<&'p str>,
) -> Result<(), RoutingError> {
    let item = || format!("{what} {name}");
    id(name, what)?;
    if !seen.insert(name) {
        return invalid(format!("{what} id {name} repeated"));
    }
    location(at, item, "location")?;
    for w in windows {
        window(w, item, "window")?;
    }
    Ok(())
}

/// The speed model and the supplied matrix.
fn travel(problem: &Problem) -> Result<(), RoutingError> {
    let t = &problem.travel;
    if !(t.speed_kmh.is_finite() && t.speed_kmh > 0.0 && t.speed_kmh <= FASTEST_KMH) {
        return invalid(format!(
            "travel: speed_kmh must be above 0 and at most {FASTEST_KMH}"
        ));
    }
    if !(t.detour_factor.is_finite() && (1.0..=LARGEST_DETOUR).contains(&t.detour_factor)) {
        return invalid(format!(
            "travel: detour_factor must be between 1 and {LARGEST_DETOUR} (road over straight-line distance)"
        ));
    }
    if !(t.parking_minutes.is_finite() && (0.0..=LONGEST_PARKING).contains(&t.parking_minutes)) {
        return invalid(format!(
            "travel: parking_minutes must be between 0 and {LONGEST_PARKING}"
        ));
    }
    if let Some(m) = &t.matrix {
        if m.seconds.len() != m.points.len() || m.seconds.iter().any(|r| r.len() != m.points.len())
        {
            return invalid("travel matrix must be square over its points".into());
        }
        // A place is found in the matrix by its coordinates: a repeated point would leave
        // which row holds its times to chance. (Adding 0.0 makes -0.0 and 0.0, which compare
        // equal, one key.)
        let mut seen = HashMap::with_capacity(m.points.len());
        for (i, &p) in m.points.iter().enumerate() {
            location(p, || "travel matrix".into(), &format!("point {i}"))?;
            let key = ((p.lat + 0.0).to_bits(), (p.lon + 0.0).to_bits());
            if let Some(j) = seen.insert(key, i) {
                return invalid(format!(
                    "travel matrix: point {i} repeats point {j} (each place once)"
                ));
            }
        }
        // (From a point to itself there is no travel, whatever the matrix says.)
        for (i, row) in m.seconds.iter().enumerate() {
            if let Some(j) = row.iter().position(|&t| t > 60 * DAY_MINUTES) {
                return invalid(format!(
                    "travel matrix: seconds[{i}][{j}] is over a day ({} s at most)",
                    60 * DAY_MINUTES
                ));
            }
        }
    }
    Ok(())
}

fn invalid(message: String) -> Result<(), RoutingError> {
    Err(RoutingError::Invalid(message))
}

/// An identifier must say something: the plan and every re-plan event refer to items by it.
fn id(id: &str, what: &str) -> Result<(), RoutingError> {
    if id.trim().is_empty() {
        return invalid(format!("a {what} has an empty id"));
    }
    Ok(())
}

/// WGS84 degrees, finite and in range. The message leaves the coordinates out: they are where
/// a patient lives.
fn location(l: Location, item: impl Fn() -> String, field: &str) -> Result<(), RoutingError> {
    let ok = l.lat.is_finite()
        && l.lon.is_finite()
        && (-90.0..=90.0).contains(&l.lat)
        && (-180.0..=180.0).contains(&l.lon);
    if !ok {
        return invalid(format!(
            "{}: {field} is not a latitude (-90 to 90) and longitude (-180 to 180) in degrees",
            item()
        ));
    }
    Ok(())
}

fn window(w: &Window, item: impl Fn() -> String, what: &str) -> Result<(), RoutingError> {
    if w.end < w.start {
        return invalid(format!("{}: {what} ends before it starts", item()));
    }
    Ok(())
}

/// How long a visit or a review takes: at least a minute, at most a day.
fn duration(minutes: u32, item: impl Fn() -> String) -> Result<(), RoutingError> {
    if minutes == 0 || minutes > DAY_MINUTES {
        return invalid(format!(
            "{}: minutes must be between 1 and {DAY_MINUTES}",
            item()
        ));
    }
    Ok(())
}
