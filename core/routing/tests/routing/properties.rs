//! Random days checked by an oracle of their own. Each case builds a small day (one to four
//! clinicians with shifts, breaks, skills, overtime allowances and sometimes a sick note; up to
//! a dozen visits with zero to two windows, skills, urgencies, pins and absent patients; up to
//! two care homes), plans it, and replays every round with its own great-circle travel: every
//! time the plan shows must be one the clinician can keep, every visit and resident must be
//! accounted for exactly once, the summary must add up, and every reason must be true. The
//! strongest check is the last: an oracle tries each visit left out in every position of
//! every round that may take it, and a place where it fits without making anyone late or
//! keeping anyone past their shift would make the plan's reason false.

use doorstep_routing::{
    Break, Budget, CareHome, Clinician, Clock, Location, Plan, Problem, Reason, Resident, Round,
    StopKind, Travel, Urgency, Visit, Window, plan, plan::weights,
};
use proptest::prelude::*;
use proptest::sample::subsequence;

/// Where the generated days are: around a Dorset town.
const CENTRE: Location = Location {
    lat: 50.74,
    lon: -1.90,
};

const SKILLS: [&str; 4] = ["paramedic", "prescriber", "catheter-care", "pharmacist"];

/// A point within about 8 km of the centre.
fn place() -> impl Strategy<Value = Location> {
    (-8.0..8.0f64, -8.0..8.0f64).prop_map(|(n, e)| Location {
        lat: CENTRE.lat + n / 111.2,
        lon: CENTRE.lon + e / 70.0,
    })
}

fn window(start_min: u32, len_min: u32) -> Window {
    Window {
        start: Clock(start_min * 60),
        end: Clock((start_min + len_min) * 60),
    }
}

/// Zero, one or two windows (the second after the first) between 07:00 and about 20:00.
fn windows() -> impl Strategy<Value = Vec<Window>> {
    (0usize..3, 420u32..900, 15u32..240, 0u32..180, 15u32..180).prop_map(|(n, a, la, gap, lb)| {
        let first = window(a, la);
        let second = window(a + la + gap, lb);
        [first, second].into_iter().take(n).collect()
    })
}

fn skills(most: usize) -> impl Strategy<Value = Vec<String>> {
    subsequence(SKILLS.to_vec(), 0..=most).prop_map(|s| s.into_iter().map(String::from).collect())
}

fn urgency() -> impl Strategy<Value = Urgency> {
    prop_oneof![
        1 => Just(Urgency::Immediate),
        2 => Just(Urgency::SameDay),
        5 => Just(Urgency::Routine),
    ]
}

fn clinician() -> impl Strategy<Value = Clinician> {
    (
        (place(), prop::option::weighted(0.25, place())),
        (420u32..660, 240u32..600),
        prop::option::weighted(0.5, (600u32..900, 60u32..240, 10u32..60)),
        skills(3),
        0u32..=60,
        prop::option::weighted(0.15, 0u32..600),
    )
        .prop_map(|((start, end), (from, len), brk, skills, ot, off)| {
            let shift = window(from, len);
            Clinician {
                id: String::new(),
                start,
                end,
                shift,
                // A break the shift can hold (validation refuses any other).
                break_: brk.and_then(|(a, l, m)| {
                    let w = window(a.max(from), l);
                    (w.start.secs() + 60 * i64::from(m) <= shift.end.secs()).then_some(Break {
                        window: w,
                        minutes: m,
                    })
                }),
                skills,
                max_overtime_minutes: ot,
                off_from: off.map(|m| Clock((from + m) * 60)),
            }
        })
}

fn visit() -> impl Strategy<Value = Visit> {
    (
        place(),
        windows(),
        5u32..=60,
        prop_oneof![3 => Just(Vec::new()), 2 => skills(1), 1 => Just(vec!["wound-care".to_string()])],
        urgency(),
        0u32..10,
        prop::option::weighted(0.1, 0usize..5),
        prop::bool::weighted(0.08),
    )
        .prop_map(
            |(location, windows, minutes, skills, urgency, days_overdue, pin, not_at_home)| Visit {
                id: String::new(),
                location,
                windows,
                minutes,
                skills,
                urgency,
                days_overdue,
                // Index 4 is never a clinician of the day: a pin to someone not working.
                pinned_to: pin.map(|k| format!("c{k}")),
                not_at_home,
            },
        )
}

fn care_home() -> impl Strategy<Value = CareHome> {
    (
        place(),
        prop::collection::vec(windows(), 1).prop_map(|mut w| w.remove(0)),
        prop_oneof![Just(Vec::new()), Just(vec!["pharmacist".to_string()])],
        prop::collection::vec((10u32..=30, urgency(), 0u32..6), 1..=6),
    )
        .prop_map(|(location, windows, skills, residents)| CareHome {
            id: String::new(),
            location,
            windows,
            skills,
            residents: residents
                .into_iter()
                .enumerate()
                .map(|(r, (minutes, urgency, days_overdue))| Resident {
                    id: format!("r{r}"),
                    minutes,
                    urgency,
                    days_overdue,
                })
                .collect(),
        })
}

fn day() -> impl Strategy<Value = Problem> {
    (
        prop::collection::vec(clinician(), 1..=4),
        prop::collection::vec(visit(), 0..=12),
        prop::collection::vec(care_home(), 0..=2),
        (15.0..60.0f64, 1.0..2.0f64, 0.0..5.0f64),
    )
        .prop_map(
            |(mut clinicians, mut visits, mut care_homes, (speed, detour, parking))| {
                for (k, c) in clinicians.iter_mut().enumerate() {
                    c.id = format!("c{k}");
                }
                for (i, v) in visits.iter_mut().enumerate() {
                    v.id = format!("v{i}");
                }
                for (h, home) in care_homes.iter_mut().enumerate() {
                    home.id = format!("home{h}");
                }
                Problem {
                    clinicians,
                    visits,
                    care_homes,
                    travel: Travel {
                        speed_kmh: speed,
                        detour_factor: detour,
                        parking_minutes: parking,
                        matrix: None,
                    },
                }
            },
        )
}

/// Travel seconds between two places by the documented speed model, worked out here.
fn travel(p: &Problem, a: Location, b: Location) -> i64 {
    if a == b {
        return 0;
    }
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.lon - a.lon).to_radians() / 2.0).sin().powi(2);
    let metres = 2.0 * 6_371_000.0 * h.sqrt().asin() * p.travel.detour_factor;
    (metres / (p.travel.speed_kmh / 3.6) + p.travel.parking_minutes * 60.0).round() as i64
}

/// One unit of work as the oracle replays it: a visit, one resident's review, or a break.
#[derive(Clone, Debug)]
struct Job {
    at: Option<Location>,
    seconds: i64,
    /// Sorted windows, seconds; empty means any time.
    windows: Vec<(i64, i64)>,
}

/// A job's replayed times.
#[derive(Clone, Copy, Debug)]
struct Timed {
    arrival: i64,
    start: i64,
    finish: i64,
    late: i64,
    travel: i64,
}

/// Replays `jobs` for clinician `c` leaving at `depart`: arrive, wait for the first window
/// not yet closed, or start at once and count lateness past the last; a break has no place of
/// its own, so travel resumes from the last place visited. Returns the times, when the
/// clinician is back, and the round's travel.
fn replay(p: &Problem, c: &Clinician, depart: i64, jobs: &[Job]) -> (Vec<Timed>, i64, i64) {
    let (mut t, mut here, mut total) = (depart, c.start, 0);
    let mut out = Vec::new();
    for j in jobs {
        let tr = j.at.map_or(0, |l| travel(p, here, l));
        let arrival = t + tr;
        let (start, late) = match j.windows.iter().find(|w| w.1 >= arrival) {
            Some(w) => (arrival.max(w.0), 0),
            None if j.windows.is_empty() => (arrival, 0),
            None => (arrival, arrival - j.windows.last().unwrap().1),
        };
        out.push(Timed {
            arrival,
            start,
            finish: start + j.seconds,
            late,
            travel: tr,
        });
        total += tr;
        t = start + j.seconds;
        here = j.at.unwrap_or(here);
    }
    let back_travel = travel(p, here, c.end.unwrap_or(c.start));
    (out, t + back_travel, total + back_travel)
}

fn secs(ws: &[Window]) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = ws.iter().map(|w| (w.start.secs(), w.end.secs())).collect();
    v.sort_unstable();
    v
}

fn visit_job(v: &Visit) -> Job {
    Job {
        at: Some(v.location),
        seconds: 60 * i64::from(v.minutes),
        windows: secs(&v.windows),
    }
}

fn resident_job(h: &CareHome, r: &Resident) -> Job {
    Job {
        at: Some(h.location),
        seconds: 60 * i64::from(r.minutes),
        windows: secs(&h.windows),
    }
}

/// A clinician's break as a job.
fn break_job(b: &Break) -> Job {
    Job {
        at: None,
        seconds: 60 * i64::from(b.minutes),
        windows: secs(&[b.window]),
    }
}

/// The jobs of a round as the plan lists them (a care-home stop is its residents in turn). A
/// round with nothing but a break is not shown, but the break is still due: work added to it
/// must leave room for the break.
fn jobs_of(p: &Problem, c: &Clinician, round: &Round) -> Vec<Job> {
    if round.stops.is_empty() {
        return c.break_.iter().map(break_job).collect();
    }
    let mut jobs = Vec::new();
    for s in &round.stops {
        match s.kind {
            StopKind::Visit => {
                jobs.push(visit_job(p.visits.iter().find(|v| v.id == s.id).unwrap()));
            }
            StopKind::CareHome => {
                let h = p.care_homes.iter().find(|h| h.id == s.id).unwrap();
                for id in &s.residents {
                    let r = h.residents.iter().find(|r| &r.id == id).unwrap();
                    jobs.push(resident_job(h, r));
                }
            }
            StopKind::Break => jobs.push(break_job(&c.break_.unwrap())),
        }
    }
    jobs
}

/// When clinician `c` must be back: shift end plus overtime, or when they go off.
fn limit(c: &Clinician) -> i64 {
    let mut l = c.shift.end.secs() + 60 * i64::from(c.max_overtime_minutes);
    if let Some(off) = c.off_from {
        l = l.min(off.secs());
    }
    l
}

fn working(c: &Clinician) -> bool {
    c.shift.start.secs() < limit(c)
}

fn may_take(c: &Clinician, skills: &[String], pin: Option<&str>) -> bool {
    working(c) && skills.iter().all(|s| c.skills.contains(s)) && pin.is_none_or(|p| p == c.id)
}

/// Checks `out` against `p`; the first broken rule as an error.
fn check(p: &Problem, out: &Plan) -> Result<(), String> {
    if out.rounds.len() != p.clinicians.len() {
        return Err("one round per clinician".into());
    }
    // Every visit and resident exactly once: in a stop or left out.
    for v in &p.visits {
        let shown = out
            .rounds
            .iter()
            .flat_map(|r| &r.stops)
            .filter(|s| s.kind == StopKind::Visit && s.id == v.id)
            .count()
            + out
                .unplanned
                .iter()
                .filter(|u| u.care_home.is_none() && u.id == v.id)
                .count();
        if shown != 1 {
            return Err(format!("visit {} shown {shown} times", v.id));
        }
        let absent = out
            .unplanned
            .iter()
            .any(|u| u.id == v.id && u.reason == Reason::PatientNotAtHome);
        if absent != v.not_at_home {
            return Err(format!("visit {}: not at home is {}", v.id, v.not_at_home));
        }
    }
    for h in &p.care_homes {
        for r in &h.residents {
            let shown = out
                .rounds
                .iter()
                .flat_map(|r| &r.stops)
                .filter(|s| s.kind == StopKind::CareHome && s.id == h.id)
                .flat_map(|s| &s.residents)
                .filter(|&id| id == &r.id)
                .count()
                + out
                    .unplanned
                    .iter()
                    .filter(|u| u.care_home.as_deref() == Some(&h.id) && u.id == r.id)
                    .count();
            if shown != 1 {
                return Err(format!("resident {} of {} shown {shown} times", r.id, h.id));
            }
        }
    }
    let (mut travel_sum, mut late_sum, mut overtime_sum) = (0u64, 0u64, 0u64);
    for (c, round) in p.clinicians.iter().zip(&out.rounds) {
        if round.clinician != c.id {
            return Err(format!("round of {} listed as {}", c.id, round.clinician));
        }
        travel_sum += u64::from(round.travel_seconds);
        overtime_sum += u64::from(round.overtime_seconds);
        if round.stops.is_empty() {
            if round.travel_seconds != 0 || round.overtime_seconds != 0 {
                return Err(format!("{}: an empty round travels", c.id));
            }
            continue;
        }
        if !working(c) {
            return Err(format!("{} is not working but has a round", c.id));
        }
        if round.depart != c.shift.start {
            return Err(format!(
                "{} leaves at {} not at shift start",
                c.id, round.depart
            ));
        }
        // Skills and pins.
        for s in &round.stops {
            let (need, pin): (&[String], Option<&str>) = match s.kind {
                StopKind::Visit => {
                    let v = p.visits.iter().find(|v| v.id == s.id).unwrap();
                    (&v.skills, v.pinned_to.as_deref())
                }
                StopKind::CareHome => (
                    &p.care_homes.iter().find(|h| h.id == s.id).unwrap().skills,
                    None,
                ),
                StopKind::Break => (&[], None),
            };
            if !may_take(c, need, pin) {
                return Err(format!("{} may not do {}", c.id, s.id));
            }
        }
        let breaks = round
            .stops
            .iter()
            .filter(|s| s.kind == StopKind::Break)
            .count();
        // A break is due when the clinician can take it and be back before they stop.
        let due = c.break_.is_some_and(|b| {
            b.window.start.max(c.shift.start).secs()
                + 60 * i64::from(b.minutes)
                + travel(p, c.start, c.end.unwrap_or(c.start))
                <= limit(c)
        });
        if breaks != usize::from(due) {
            return Err(format!("{} takes {breaks} breaks", c.id));
        }
        // Every time shown is the oracle's.
        let jobs = jobs_of(p, c, round);
        let (timed, back, travel) = replay(p, c, round.depart.secs(), &jobs);
        let mut k = 0;
        for s in &round.stops {
            let n = s.residents.len().max(1);
            let first = timed[k];
            let last = timed[k + n - 1];
            let late: i64 = timed[k..k + n].iter().map(|t| t.late).sum();
            let shown = (
                s.arrival.secs(),
                s.start.secs(),
                s.finish.secs(),
                i64::from(s.late_seconds),
                i64::from(s.travel_seconds),
                i64::from(s.waiting_seconds),
            );
            let oracle = (
                first.arrival,
                first.start,
                last.finish,
                late,
                first.travel,
                first.start - first.arrival,
            );
            if shown != oracle {
                return Err(format!(
                    "{} stop {}: shown (arrival, start, finish, late, travel, waiting) {shown:?}, replayed {oracle:?}",
                    c.id, s.id
                ));
            }
            if timed[k + 1..k + n].iter().any(|t| t.travel != 0) {
                return Err(format!("{} stop {}: a care-home stop moves", c.id, s.id));
            }
            late_sum += u64::try_from(late).unwrap();
            k += n;
        }
        let shift_end = c
            .off_from
            .map_or(c.shift.end, |off| off.min(c.shift.end))
            .secs();
        let shown = (
            round.back.secs(),
            i64::from(round.travel_seconds),
            i64::from(round.overtime_seconds),
        );
        let oracle = (back, travel, (back - shift_end).max(0));
        if back > limit(c) {
            return Err(format!("{} back {} past limit {}", c.id, back, limit(c)));
        }
        if shown != oracle {
            return Err(format!(
                "{}: shown (back, travel, overtime) {shown:?}, replayed {oracle:?}",
                c.id
            ));
        }
    }
    // The summary adds up.
    let s = &out.summary;
    if (s.travel_seconds, s.late_seconds, s.overtime_seconds)
        != (travel_sum, late_sum, overtime_sum)
    {
        return Err(format!("summary {s:?} does not add up"));
    }
    let mut urgent = 0;
    let mut routine = 0;
    let mut prizes = 0i64;
    for u in out
        .unplanned
        .iter()
        .filter(|u| u.reason != Reason::PatientNotAtHome)
    {
        let (urgency, overdue) = match &u.care_home {
            None => {
                let v = p.visits.iter().find(|v| v.id == u.id).unwrap();
                (v.urgency, v.days_overdue)
            }
            Some(h) => {
                let h = p.care_homes.iter().find(|x| &x.id == h).unwrap();
                let r = h.residents.iter().find(|r| r.id == u.id).unwrap();
                (r.urgency, r.days_overdue)
            }
        };
        prizes += match urgency {
            Urgency::Immediate => weights::UNSERVED_IMMEDIATE,
            Urgency::SameDay => weights::UNSERVED_SAME_DAY,
            Urgency::Routine => {
                weights::UNSERVED_ROUTINE
                    + weights::OVERDUE_DAY * i64::from(overdue.min(weights::OVERDUE_CAP))
            }
        };
        if urgency == Urgency::Routine {
            routine += 1;
        } else {
            urgent += 1;
        }
    }
    let cost = prizes
        + weights::LATENESS * late_sum as i64
        + weights::TRAVEL * travel_sum as i64
        + weights::OVERTIME * overtime_sum as i64;
    if (s.unserved_urgent, s.unserved_routine, s.cost) != (urgent, routine, cost) {
        return Err(format!(
            "summary {s:?}: expected {urgent} urgent, {routine} routine unserved, cost {cost}"
        ));
    }
    for u in &out.unplanned {
        reason_is_true(p, out, u)?;
    }
    Ok(())
}

/// The job, required skills and pin of an unplanned item.
fn unplanned_job<'p>(
    p: &'p Problem,
    u: &doorstep_routing::Unplanned,
) -> (Job, &'p [String], Option<&'p str>) {
    match &u.care_home {
        None => {
            let v = p.visits.iter().find(|v| v.id == u.id).unwrap();
            (visit_job(v), &v.skills, v.pinned_to.as_deref())
        }
        Some(h) => {
            let h = p.care_homes.iter().find(|x| &x.id == h).unwrap();
            let r = h.residents.iter().find(|r| r.id == u.id).unwrap();
            (resident_job(h, r), &h.skills, None)
        }
    }
}

fn planned(out: &Plan, id: &str) -> bool {
    out.rounds
        .iter()
        .flat_map(|r| &r.stops)
        .any(|s| (s.kind == StopKind::Visit && s.id == id) || s.residents.iter().any(|r| r == id))
}

/// Whether `u`'s reason holds for this plan.
fn reason_is_true(p: &Problem, out: &Plan, u: &doorstep_routing::Unplanned) -> Result<(), String> {
    if u.reason == Reason::PatientNotAtHome {
        return Ok(());
    }
    let (job, need, pin) = unplanned_job(p, u);
    let false_reason = |why: &str| Err(format!("{} left out as {:?}, but {why}", u.id, u.reason));
    let takers: Vec<usize> = (0..p.clinicians.len())
        .filter(|&k| may_take(&p.clinicians[k], need, pin))
        .collect();
    match &u.reason {
        Reason::NoClinicianWorking => {
            if p.clinicians.iter().any(working) {
                return false_reason("someone is working");
            }
            return Ok(());
        }
        Reason::PinnedClinicianUnavailable { clinician } => {
            if pin != Some(clinician.as_str()) {
                return false_reason("it is not pinned to them");
            }
            if p.clinicians
                .iter()
                .any(|c| &c.id == clinician && working(c))
            {
                return false_reason("they are working");
            }
            return Ok(());
        }
        Reason::NoSkilledClinician { missing } => {
            if !takers.is_empty() {
                return false_reason("someone working may do it");
            }
            for s in need {
                let held = p
                    .clinicians
                    .iter()
                    .any(|c| working(c) && c.skills.contains(s));
                if held == missing.contains(s) {
                    return false_reason(&format!("skill {s} is held: {held}"));
                }
            }
            return Ok(());
        }
        Reason::CareHomeVisitFull => {
            if u.care_home.is_none() || !planned_resident_of(out, u.care_home.as_deref()) {
                return false_reason("no other resident of the home is seen");
            }
        }
        Reason::WouldMakeImmediateLate { visit } => {
            if !planned(out, visit) || !is_immediate(p, visit) {
                return false_reason("that visit is not a planned immediate one");
            }
        }
        Reason::WouldMakeVisitLate { visit } => {
            if !planned(out, visit) {
                return false_reason("that visit is not planned");
            }
        }
        Reason::WouldExceedShift { clinician } | Reason::WouldDelayBreak { clinician } => {
            if !takers.iter().any(|&k| &p.clinicians[k].id == clinician) {
                return false_reason("that clinician may not do it");
            }
        }
        Reason::OutsideEveryShift | Reason::NoRoomInWindow | Reason::PatientNotAtHome => {}
    }
    if takers.is_empty() {
        return false_reason("nobody working may do it");
    }
    if u.reason == Reason::OutsideEveryShift {
        for &k in &takers {
            let c = &p.clinicians[k];
            let (timed, back, _) = replay(p, c, c.shift.start.secs(), std::slice::from_ref(&job));
            if timed[0].late == 0 && back <= limit(c) {
                return false_reason(&format!("{} could do it alone", c.id));
            }
        }
        return Ok(());
    }
    // Nowhere must it fit without harm.
    for &k in &takers {
        let c = &p.clinicians[k];
        let round = &out.rounds[k];
        let jobs = jobs_of(p, c, round);
        let (base, base_back, _) = replay(p, c, c.shift.start.secs(), &jobs);
        let base_over = (base_back - limit(c)).max(0);
        for at in 0..=jobs.len() {
            let mut trial = jobs.clone();
            trial.insert(at, job.clone());
            let (timed, back, _) = replay(p, c, c.shift.start.secs(), &trial);
            let harmless = timed[at].late == 0
                && (back - limit(c)).max(0) <= base_over
                && timed
                    .iter()
                    .enumerate()
                    .filter(|&(q, _)| q != at)
                    .all(|(q, t)| t.late <= base[if q < at { q } else { q - 1 }].late);
            if harmless {
                return false_reason(&format!("it fits in {}'s round at position {at}", c.id));
            }
        }
    }
    Ok(())
}

fn planned_resident_of(out: &Plan, home: Option<&str>) -> bool {
    out.rounds
        .iter()
        .flat_map(|r| &r.stops)
        .any(|s| s.kind == StopKind::CareHome && Some(s.id.as_str()) == home)
}

fn is_immediate(p: &Problem, id: &str) -> bool {
    p.visits
        .iter()
        .any(|v| v.id == id && v.urgency == Urgency::Immediate)
        || p.care_homes
            .iter()
            .flat_map(|h| &h.residents)
            .any(|r| r.id == id && r.urgency == Urgency::Immediate)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_plan_of_a_random_day_replays_exactly_and_explains_what_it_leaves_out(
        p in day(), seed in 0u64..1000
    ) {
        let out = plan(&p, &Budget::iterations(8), seed).expect("a valid day plans");
        if let Err(e) = check(&p, &out) {
            return Err(TestCaseError::fail(format!("{e}\nplan: {}", serde_json::to_string(&out).unwrap())));
        }
    }
}
