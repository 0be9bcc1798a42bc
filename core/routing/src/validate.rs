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

use crate::{Budget, Location, Problem, RoutingError, Window};

/// Longest anything can take, in minutes: a day. A visit, a review, an allowance of overtime
/// or a reported delay longer than this is a typing error, not a plan to make.
pub(crate) const DAY_MINUTES: u32 = 24 * 60;

/// The first second a plan cannot show: times read and print as `HH:MM:SS` up to 47:59:59, so
/// that a day's work may run past midnight and a plan still reads back for a re-plan.
pub(crate) const LAST_TIME: i64 = 48 * 3600;

/// Longest break, in minutes (as the domain's shifts allow).
const LONGEST_BREAK: u32 = 120;

/// Fastest average road speed the speed model accepts, km/h.
const FASTEST_KMH: f64 = 200.0;

/// Slowest average speed the speed model accepts, km/h: slower than anyone walks. A speed
/// near zero would make travel times no clock can hold.
const SLOWEST_KMH: f64 = 1.0;

/// Largest ratio of road distance to great-circle distance the speed model accepts.
const LARGEST_DETOUR: f64 = 5.0;

/// Longest parking allowance per trip, in minutes.
const LONGEST_PARKING: f64 = 120.0;

/// Most visits and care homes one problem may hold together. The planner keeps travel times
/// between every two points (the places and the clinicians' start and end points, two copies
/// of 8 bytes a pair) and, per stop and clinician, the best places to put it: at the largest
/// sizes allowed, 2 400 points and 200 clinicians, about 150 MB, and half as much again while
/// the times are worked out. A network's day is a few hundred places and takes a few MB; a
/// day near this bound is for a server.
const MOST_PLACES: usize = 2_000;

/// Most clinicians one problem may hold: a network's whole team several times over.
const MOST_CLINICIANS: usize = 200;

/// Most residents due at one care home: more than the largest homes have beds.
const MOST_RESIDENTS: usize = 500;

/// Most visits and residents due one problem may hold together: each is planned as a stop of
/// its own, and the search keeps lists of every stop's nearest others, so the count must be
/// bounded as places are. Ten times a busy network's day.
const MOST_STOPS: usize = 5_000;

/// Most iterations a budget may ask for: at a few thousand a second, years of search. A larger
/// number is a mistake, and would overflow the search's own counts.
const MOST_ITERATIONS: u64 = 1_000_000_000;

/// A budget must end: with neither a time limit nor a number of iterations the search would
/// run until the device stopped it. A time limit over a day is a mistake (and one near
/// `Duration::MAX` would overflow the clock).
pub(crate) fn budget(budget: &Budget) -> Result<(), RoutingError> {
    if budget.time_limit.is_none() && budget.iterations.is_none() {
        return invalid(
            "budget".into(),
            "needs a time limit, a number of iterations or both".into(),
        );
    }
    if budget
        .time_limit
        .is_some_and(|t| t.as_secs() >= 60 * u64::from(DAY_MINUTES))
    {
        return invalid("budget.time_limit".into(), "must be less than a day".into());
    }
    if budget.iterations.is_some_and(|n| n > MOST_ITERATIONS) {
        return invalid(
            "budget.iterations".into(),
            format!("must be at most {MOST_ITERATIONS}"),
        );
    }
    Ok(())
}

/// Why `problem` cannot be planned, if it cannot.
pub(crate) fn problem(problem: &Problem) -> Result<(), RoutingError> {
    size(problem)?;
    let mut clinicians = HashSet::new();
    let mut skills = HashMap::new();
    for (i, c) in problem.clinicians.iter().enumerate() {
        let item = Item::new("clinicians", i, "clinician", &c.id);
        item.id()?;
        if !clinicians.insert(c.id.as_str()) {
            return item.refuse("id", "is repeated");
        }
        item.skills(&c.skills, &mut skills)?;
        item.location("start", c.start)?;
        if let Some(end) = c.end {
            item.location("end", end)?;
        }
        if c.shift.end <= c.shift.start {
            return item.refuse("shift", "must end after it starts");
        }
        if c.max_overtime_minutes > DAY_MINUTES {
            return item.refuse(
                "max_overtime_minutes",
                &format!("must be at most {DAY_MINUTES}"),
            );
        }
        // Every time a plan shows must read back as a time of day (a re-plan reads the plan).
        if c.shift.end.secs() + 60 * i64::from(c.max_overtime_minutes) >= LAST_TIME {
            return item.refuse(
                "max_overtime_minutes",
                "with the shift's end, must end before 48:00, the last time a plan can show",
            );
        }
        if let Some(b) = &c.break_ {
            item.window("break.window", &b.window)?;
            if b.minutes == 0 || b.minutes > LONGEST_BREAK {
                return item.refuse(
                    "break.minutes",
                    &format!("must be between 1 and {LONGEST_BREAK}"),
                );
            }
            let earliest = b.window.start.max(c.shift.start).secs();
            if b.window.end < c.shift.start
                || earliest + 60 * i64::from(b.minutes) > c.shift.end.secs()
            {
                return item.refuse("break", "cannot be taken within the shift");
            }
        }
    }
    let mut stops = HashSet::new();
    for (i, v) in problem.visits.iter().enumerate() {
        let item = Item::new("visits", i, "visit", &v.id);
        item.place(v.location, &v.windows, &mut stops)?;
        item.duration("minutes", v.minutes)?;
        item.skills(&v.skills, &mut skills)?;
    }
    for (i, h) in problem.care_homes.iter().enumerate() {
        let home = Item::new("care_homes", i, "care home", &h.id);
        home.place(h.location, &h.windows, &mut stops)?;
        home.skills(&h.skills, &mut skills)?;
        let mut residents = HashSet::new();
        for (j, r) in h.residents.iter().enumerate() {
            let item = home.resident(j, &r.id);
            item.id()?;
            if !residents.insert(r.id.as_str()) {
                return item.refuse("id", "is repeated");
            }
            item.duration("minutes", r.minutes)?;
        }
    }
    travel(problem)
}

/// One item of a problem's lists, as an error names it: its JSON path and, for the reader, its
/// kind and id. The text is written only when something is refused, so checking a day that
/// passes formats nothing (a re-plan checks the day again within its millisecond).
struct Item<'a> {
    list: &'a str,
    index: usize,
    /// The enclosing care home, for a resident.
    within: Option<(&'a str, usize, &'a str)>,
    kind: &'a str,
    id: &'a str,
}

impl<'a> Item<'a> {
    fn new(list: &'a str, index: usize, kind: &'a str, id: &'a str) -> Self {
        Self {
            list,
            index,
            within: None,
            kind,
            id,
        }
    }

    /// The resident at `index` of this care home.
    fn resident(&self, index: usize, id: &'a str) -> Item<'a> {
        Item {
            list: "residents",
            index,
            within: Some((self.list, self.index, self.id)),
            kind: "resident",
            id,
        }
    }

    /// Refuses `field` of this item for `rule`.
    fn refuse(&self, field: &str, rule: &str) -> Result<(), RoutingError> {
        let (path, who) = match self.within {
            Some((list, index, home)) => (
                format!("{list}[{index}].{}[{}]", self.list, self.index),
                format!("{} {} of care home {home}", self.kind, self.id),
            ),
            None => (
                format!("{}[{}]", self.list, self.index),
                format!("{} {}", self.kind, self.id),
            ),
        };
        let who = if self.id.trim().is_empty() {
            format!("a {} with no id", self.kind)
        } else {
            who
        };
        invalid(format!("{path}.{field}"), format!("{rule} ({who})"))
    }

    /// An identifier must say something: the plan and every re-plan event refer to items by it.
    fn id(&self) -> Result<(), RoutingError> {
        if self.id.trim().is_empty() {
            return self.refuse("id", "must not be empty");
        }
        Ok(())
    }

    /// A place a clinician goes (a visit or a care home): its id, unique among all such
    /// places (`seen`), its location and its windows.
    fn place(
        &self,
        at: Location,
        windows: &[Window],
        seen: &mut HashSet<&'a str>,
    ) -> Result<(), RoutingError> {
        self.id()?;
        if !seen.insert(self.id) {
            return self.refuse(
                "id",
                "is repeated: visits and care homes share one set of ids",
            );
        }
        self.location("location", at)?;
        if let Some(k) = windows.iter().position(|w| w.end < w.start) {
            return self.refuse(&format!("windows[{k}]"), BACKWARDS);
        }
        // The planner counts lateness from the window a stop is served in; two that share
        // time would leave which one that is to their order.
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&k| (windows[k].start, windows[k].end));
        for pair in order.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            if windows[later].start < windows[earlier].end {
                return self.refuse(
                    &format!("windows[{later}]"),
                    &format!("overlaps windows[{earlier}]: give each time once, as one window"),
                );
            }
        }
        Ok(())
    }

    /// Skills are matched exactly, so each must be written one way across the day: a visit
    /// needing `Paramedic` that only `paramedic`s could do would be left out as needing a skill
    /// nobody has, and the coordinator would not see why. `seen` holds each skill met so far,
    /// by its letters in lower case without surrounding spaces, as first written.
    fn skills(
        &self,
        skills: &'a [String],
        seen: &mut HashMap<String, &'a str>,
    ) -> Result<(), RoutingError> {
        for (j, skill) in skills.iter().enumerate() {
            let field = || format!("skills[{j}]");
            if skill.trim().is_empty() {
                return self.refuse(&field(), "must not be empty");
            }
            let first = *seen.entry(skill.trim().to_lowercase()).or_insert(skill);
            if first != skill {
                return self.refuse(
                    &field(),
                    &format!(
                        "is written \"{first}\" elsewhere in this day: a skill must be written \
                         one way, as it is matched exactly"
                    ),
                );
            }
        }
        Ok(())
    }

    fn location(&self, field: &str, at: Location) -> Result<(), RoutingError> {
        if !in_range(at) {
            return self.refuse(field, NOT_A_LOCATION);
        }
        Ok(())
    }

    fn window(&self, field: &str, w: &Window) -> Result<(), RoutingError> {
        if w.end < w.start {
            return self.refuse(field, BACKWARDS);
        }
        Ok(())
    }

    /// How long a visit or a review takes: at least a minute, at most a day.
    fn duration(&self, field: &str, minutes: u32) -> Result<(), RoutingError> {
        if minutes == 0 || minutes > DAY_MINUTES {
            return self.refuse(field, &format!("must be between 1 and {DAY_MINUTES}"));
        }
        Ok(())
    }
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
    let stops = problem.visits.len()
        + problem
            .care_homes
            .iter()
            .map(|h| h.residents.len())
            .sum::<usize>();
    if stops > MOST_STOPS {
        return invalid(
            "care_homes".into(),
            format!(
                "at most {MOST_STOPS} visits and residents due together can be planned at once (this day has {stops})"
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

/// The speed model and the supplied matrix.
fn travel(problem: &Problem) -> Result<(), RoutingError> {
    let t = &problem.travel;
    if !(t.speed_kmh.is_finite() && (SLOWEST_KMH..=FASTEST_KMH).contains(&t.speed_kmh)) {
        return invalid(
            "travel.speed_kmh".into(),
            format!("must be between {SLOWEST_KMH} and {FASTEST_KMH}"),
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
            let at = || format!("travel.matrix.points[{i}]");
            if !in_range(p) {
                return invalid(at(), NOT_A_LOCATION.into());
            }
            let key = ((p.lat + 0.0).to_bits(), (p.lon + 0.0).to_bits());
            if let Some(j) = seen.insert(key, i) {
                return invalid(at(), format!("repeats point {j} (each place once)"));
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

/// Why a window is refused.
const BACKWARDS: &str = "ends before it starts";

/// Why a location is refused. It leaves the coordinates out: they are where a patient lives.
const NOT_A_LOCATION: &str = "is not a latitude (-90 to 90) and longitude (-180 to 180) in degrees";

/// Refuses a place that is not WGS84 degrees in range, naming `field`; for what a caller hands
/// back rather than the problem (a previous plan's `free_from`).
pub(crate) fn check_location(field: &str, at: Location) -> Result<(), RoutingError> {
    if in_range(at) {
        Ok(())
    } else {
        Err(ValidationError::new(field, NOT_A_LOCATION).into())
    }
}

/// WGS84 degrees, finite and in range.
fn in_range(l: Location) -> bool {
    l.lat.is_finite()
        && l.lon.is_finite()
        && (-90.0..=90.0).contains(&l.lat)
        && (-180.0..=180.0).contains(&l.lon)
}
