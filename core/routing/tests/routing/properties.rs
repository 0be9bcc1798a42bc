//! Random days checked by an oracle of their own. Each case builds a small day (one to four
//! clinicians with shifts, breaks, skills, overtime allowances and sometimes a sick note; up to
//! a dozen visits with zero to two windows, skills, urgencies, pins and absent patients; up to
//! two care homes; sometimes a supplied matrix), plans it (twice: the day read back from its
//! JSON must plan the same for the seed), and replays every round with its own travel: every
//! time the plan shows must be one the clinician can keep, every visit and resident must be
//! accounted for exactly once, the summary must add up, and every reason must be true. The
//! strongest check is the last: an oracle tries each visit left out in every position of
//! every round that may take it, and a place where it fits without making anyone late or
//! keeping anyone past their shift would make the plan's reason false.
//!
//! Re-plans are checked the same way from where each clinician stands, after random events
//! (urgent visits, delays, absent patients, sickness) at a random moment: what was set off for
//! before then (and not merely waited at) must stay exactly as it was, and the stability terms
//! must count what moved.

use std::collections::HashMap;

use doorstep_routing::{
    Break, Budget, CareHome, Clinician, Clock, Event, Location, Plan, Problem, Reason, Resident,
    Round, RoutingError, Stop, StopKind, Travel, TravelMatrix, Urgency, Visit, Window, plan,
    plan::weights, replan,
};
use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::test_runner::RngSeed;

/// `cases` random days. The seed is fixed, so every run (and CI) checks the same days; set
/// `PROPTEST_RNG_SEED` to check others.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if matches!(config.rng_seed, RngSeed::Random) {
        config.rng_seed = RngSeed::Fixed(20_261_124);
    }
    config
}

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
        prop::collection::vec((0usize..16, 0usize..16), 0..3),
        prop::option::weighted(0.3, any::<u64>()),
    )
        .prop_map(
            |(mut clinicians, mut visits, mut care_homes, speed, shared, matrix)| {
                for (k, c) in clinicians.iter_mut().enumerate() {
                    c.id = format!("c{k}");
                }
                for (i, v) in visits.iter_mut().enumerate() {
                    v.id = format!("v{i}");
                }
                for (h, home) in care_homes.iter_mut().enumerate() {
                    home.id = format!("home{h}");
                }
                // A few visits where another is, or where a clinician starts: no travel between.
                for (i, j) in shared {
                    if !visits.is_empty() {
                        let at = match j % 2 {
                            0 => visits[j % visits.len()].location,
                            _ => clinicians[j % clinicians.len()].start,
                        };
                        let i = i % visits.len();
                        visits[i].location = at;
                    }
                }
                let mut p = Problem {
                    clinicians,
                    visits,
                    care_homes,
                    travel: Travel {
                        speed_kmh: speed.0,
                        detour_factor: speed.1,
                        parking_minutes: speed.2,
                        matrix: None,
                    },
                };
                p.travel.matrix = matrix.map(|seed| supplied(&p, seed));
                p
            },
        )
}

/// A supplied matrix over about half the day's places, its times the speed model's scaled by
/// 0.5 to 2 (as roads make some trips quicker and others slower), drawn from `seed`.
fn supplied(p: &Problem, seed: u64) -> TravelMatrix {
    let mix = |x: u64| {
        let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let mut points: Vec<Location> = Vec::new();
    let places = p
        .clinicians
        .iter()
        .flat_map(|c| [Some(c.start), c.end])
        .chain(p.visits.iter().map(|v| Some(v.location)))
        .chain(p.care_homes.iter().map(|h| Some(h.location)))
        .flatten();
    for (i, l) in places.enumerate() {
        if !points.contains(&l) && mix(seed ^ i as u64) % 2 == 0 {
            points.push(l);
        }
    }
    let seconds = points
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            points
                .iter()
                .enumerate()
                .map(|(j, &b)| {
                    let scale = 0.5
                        + 1.5 * (mix(seed ^ ((i as u64) << 32 | j as u64)) % 1000) as f64 / 1000.0;
                    (speed_model(p, a, b) as f64 * scale).round() as u32
                })
                .collect()
        })
        .collect();
    TravelMatrix { points, seconds }
}

/// Travel seconds between two places as documented: none within a place, the supplied
/// matrix's where it lists both, else the speed model.
fn travel(p: &Problem, a: Location, b: Location) -> i64 {
    if a == b {
        return 0;
    }
    if let Some(m) = &p.travel.matrix {
        let at = |l: Location| m.points.iter().position(|&x| x == l);
        if let (Some(i), Some(j)) = (at(a), at(b)) {
            return i64::from(m.seconds[i][j]);
        }
    }
    speed_model(p, a, b)
}

/// Travel seconds between two places by the speed model, worked out here: the haversine on a
/// sphere of the earth's mean radius (GRS80, as `geo` takes it).
fn speed_model(p: &Problem, a: Location, b: Location) -> i64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let h = ((b.lat - a.lat).to_radians() / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.lon - a.lon).to_radians() / 2.0).sin().powi(2);
    let metres = 6_371_008.8 * (2.0 * h.sqrt().asin()) * p.travel.detour_factor;
    (metres / (p.travel.speed_kmh / 3.6) + p.travel.parking_minutes * 60.0).round() as i64
}

/// One unit of work as the oracle replays it: a visit, one resident's review, or a break.
#[derive(Clone, Debug)]
struct Job {
    at: Option<Location>,
    seconds: i64,
    /// Sorted windows, seconds; empty means any time.
    windows: Vec<(i64, i64)>,
    immediate: bool,
    /// What leaving it out costs, by the weights; none for a break, which is never left out.
    prize: Option<i64>,
}

/// What leaving out work of `urgency`, `overdue` days overdue, costs by the documented weights.
fn prize(urgency: Urgency, overdue: u32) -> i64 {
    match urgency {
        Urgency::Immediate => weights::UNSERVED_IMMEDIATE,
        Urgency::SameDay => weights::UNSERVED_SAME_DAY,
        Urgency::Routine => {
            weights::UNSERVED_ROUTINE
                + weights::OVERDUE_DAY * i64::from(overdue.min(weights::OVERDUE_CAP))
        }
    }
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

/// Where and when the part of a clinician's day still to plan begins.
#[derive(Clone, Debug)]
struct Origin {
    at: Location,
    /// When they are free (never before their shift starts).
    time: i64,
    /// Stops at the head of the round that were done or under way.
    fixed: usize,
    /// False once they have gone off sick.
    available: bool,
    /// Their break is among the fixed stops.
    break_taken: bool,
    /// Every stop done and the drive back begun: when they are back, and that drive's seconds.
    returned: Option<(i64, i64)>,
    /// Seconds driven to doors whose visits no fixed stop shows (a patient not at home, a
    /// wait planned again), this re-plan's and every earlier one's.
    unlisted: i64,
    /// Gone off sick after the previous plan had them free past their fixed stops: then.
    last_free: Option<i64>,
}

/// A first plan's origins: everyone at their start when their shift starts.
fn fresh(p: &Problem) -> Vec<Origin> {
    p.clinicians
        .iter()
        .map(|c| Origin {
            at: c.start,
            time: c.shift.start.secs(),
            fixed: 0,
            available: true,
            break_taken: false,
            returned: None,
            unlisted: 0,
            last_free: None,
        })
        .collect()
}

/// Replays `jobs` for clinician `c` from `o`: arrive, wait for the first window not yet
/// closed, or start at once and count lateness past the last; a break has no place of its own,
/// so travel resumes from the last place visited. Returns the times, when the clinician is
/// back, and the travel.
fn replay(p: &Problem, c: &Clinician, o: &Origin, jobs: &[Job]) -> (Vec<Timed>, i64, i64) {
    let (mut t, mut here, mut total) = (o.time, o.at, 0);
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
        immediate: v.urgency == Urgency::Immediate,
        prize: Some(prize(v.urgency, v.days_overdue)),
    }
}

fn resident_job(h: &CareHome, r: &Resident) -> Job {
    Job {
        at: Some(h.location),
        seconds: 60 * i64::from(r.minutes),
        windows: secs(&h.windows),
        immediate: r.urgency == Urgency::Immediate,
        prize: Some(prize(r.urgency, r.days_overdue)),
    }
}

/// A clinician's break as a job.
fn break_job(b: &Break) -> Job {
    Job {
        at: None,
        seconds: 60 * i64::from(b.minutes),
        windows: secs(&[b.window]),
        immediate: false,
        prize: None,
    }
}

/// The jobs of a round after its fixed stops, as the plan lists them (a care-home stop is its
/// residents in turn). A round with nothing but a break is not shown, but the break is still
/// due: work added to it must leave room for the break.
fn jobs_of(p: &Problem, c: &Clinician, o: &Origin, round: &Round) -> Vec<Job> {
    let stops = &round.stops[o.fixed..];
    if stops.is_empty() {
        return c
            .break_
            .iter()
            .filter(|_| due(p, c, o))
            .map(break_job)
            .collect();
    }
    let mut jobs = Vec::new();
    for s in stops {
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

fn working(c: &Clinician, o: &Origin) -> bool {
    o.available && o.time < limit(c)
}

fn may_take(c: &Clinician, o: &Origin, skills: &[String], pin: Option<&str>) -> bool {
    working(c, o) && skills.iter().all(|s| c.skills.contains(s)) && pin.is_none_or(|p| p == c.id)
}

/// Whether the clinician's break is still due: not taken, its window not closed before they are
/// free, and they can take it and still be back before they stop.
fn due(p: &Problem, c: &Clinician, o: &Origin) -> bool {
    !o.break_taken
        && c.break_.is_some_and(|b| {
            let start = b.window.start.secs().max(o.time);
            start <= b.window.end.secs()
                && start + 60 * i64::from(b.minutes) + travel(p, o.at, c.end.unwrap_or(c.start))
                    <= limit(c)
        })
}

/// The skills stop `s` needs and the clinician it is pinned to.
fn needs<'p>(p: &'p Problem, s: &Stop) -> (&'p [String], Option<&'p str>) {
    match s.kind {
        StopKind::Visit => {
            let v = p.visits.iter().find(|v| v.id == s.id).unwrap();
            (&v.skills, v.pinned_to.as_deref())
        }
        StopKind::CareHome => (
            &p.care_homes.iter().find(|h| h.id == s.id).unwrap().skills,
            None,
        ),
        StopKind::Break => (&[], None),
    }
}

/// Seconds immediate job `j`, replayed as `t`, starts past five minutes after the soonest any
/// clinician who may take it, and could do it alone and be back by their limit, could start
/// it (in the first of its windows still open then), beyond its lateness; zero for other
/// jobs, where no window is open by then, and where nobody could do it alone.
fn immediate_delay(
    p: &Problem,
    origins: &[Origin],
    (need, pin): (&[String], Option<&str>),
    j: &Job,
    t: &Timed,
) -> i64 {
    let Some(at) = j.at.filter(|_| j.immediate) else {
        return 0;
    };
    let opens = j.windows.first().map_or(i64::MIN, |w| w.0);
    let Some(soonest) = (p.clinicians.iter().zip(origins))
        .filter(|(c, o)| may_take(c, o, need, pin))
        .filter_map(|(c, o)| {
            let arrival = o.time + travel(p, o.at, at);
            let back = arrival.max(opens) + j.seconds + travel(p, at, c.end.unwrap_or(c.start));
            (back <= limit(c)).then_some(arrival)
        })
        .min()
    else {
        return 0;
    };
    let due = if j.windows.is_empty() {
        soonest + 300
    } else {
        match j.windows.iter().find(|w| w.1 >= soonest) {
            Some(&(open, close)) => close.min(soonest.max(open) + 300),
            None => return 0,
        }
    };
    ((t.start - due).max(0) - t.late).max(0)
}

/// How many times the visit `id`, or resident `id` of `home`, appears in `out`: in a stop or
/// left out.
fn times_shown(out: &Plan, id: &str, home: Option<&str>) -> usize {
    let in_stops = out
        .rounds
        .iter()
        .flat_map(|r| &r.stops)
        .map(|s| match home {
            None => usize::from(s.kind == StopKind::Visit && s.id == id),
            Some(home) if s.kind == StopKind::CareHome && s.id == home => {
                s.residents.iter().filter(|r| *r == id).count()
            }
            Some(_) => 0,
        })
        .sum::<usize>();
    in_stops
        + out
            .unplanned
            .iter()
            .filter(|u| u.care_home.as_deref() == home && u.id == id)
            .count()
}

/// Checks `out` against `p` planned from `origins`; the first broken rule as an error.
fn check(p: &Problem, out: &Plan, origins: &[Origin]) -> Result<(), String> {
    if out.rounds.len() != p.clinicians.len() {
        return Err("one round per clinician".into());
    }
    // Every visit and resident exactly once: in a stop or left out.
    for v in &p.visits {
        let shown = times_shown(out, &v.id, None);
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
            let shown = times_shown(out, &r.id, Some(&h.id));
            if shown != 1 {
                return Err(format!("resident {} of {} shown {shown} times", r.id, h.id));
            }
        }
    }
    let (mut travel_sum, mut late_sum, mut overtime_sum) = (0u64, 0u64, 0u64);
    let mut delay_sum = 0i64;
    for ((c, o), round) in p.clinicians.iter().zip(origins).zip(&out.rounds) {
        if round.clinician != c.id {
            return Err(format!("round of {} listed as {}", c.id, round.clinician));
        }
        travel_sum += u64::from(round.travel_seconds);
        overtime_sum += u64::from(round.overtime_seconds);
        let (done, new) = round.stops.split_at(o.fixed.min(round.stops.len()));
        if done.len() != o.fixed || done.iter().any(|s| !s.fixed) || new.iter().any(|s| s.fixed) {
            return Err(format!(
                "{}: the fixed stops are not the first {}",
                c.id, o.fixed
            ));
        }
        late_sum += done.iter().map(|s| u64::from(s.late_seconds)).sum::<u64>();
        let done_travel: i64 = done
            .iter()
            .map(|s| i64::from(s.travel_seconds))
            .sum::<i64>()
            + o.unlisted
            + o.returned.map_or(0, |(_, drive)| drive);
        // Driving no stop shows: the earlier doors', and the drive back of a clinician sent
        // out again.
        let unlisted = o.unlisted
            + if round.stops.len() > o.fixed.min(round.stops.len()) {
                o.returned.map_or(0, |(_, drive)| drive)
            } else {
                0
            };
        if i64::from(round.unlisted_travel_seconds) != unlisted {
            return Err(format!(
                "{}: shows {} s of travel no stop shows, not {unlisted}",
                c.id, round.unlisted_travel_seconds
            ));
        }
        let shift_end = c
            .off_from
            .map_or(c.shift.end, |off| off.min(c.shift.end))
            .secs();
        if new.is_empty() {
            // No round at all; one on the way back is back when that drive ends; one still
            // out drives back from where and when they are free; one gone off sick ends with
            // their last stop, or when they went off.
            let expected = match (done.last(), o.returned) {
                // Back, or driving back: over only past the shift, even gone off sick.
                (_, Some((back, _))) => (back, done_travel, (back - c.shift.end.secs()).max(0)),
                // Out, or out at a door whose visit left the round, and free: back from there.
                (Some(_), None) | (None, None)
                    if o.available && (!done.is_empty() || o.unlisted > 0) =>
                {
                    let (_, back, travel) = replay(p, c, o, &[]);
                    (back, done_travel + travel, (back - shift_end).max(0))
                }
                // Gone off sick out at a door whose visit left the round, or on the way to it:
                // ends when they went. Either no earlier than where the plan before had them
                // free past those, when they went after that.
                (None, None) if o.unlisted > 0 => {
                    let off = c.off_from.map_or(i64::MIN, Clock::secs);
                    let end = off.max(o.last_free.unwrap_or(i64::MIN));
                    (end, done_travel, 0)
                }
                (None, None) => (c.shift.start.secs(), done_travel, 0),
                (Some(last), None) => {
                    let end = last.finish.secs().max(o.last_free.unwrap_or(i64::MIN));
                    (end, done_travel, 0)
                }
            };
            let shown = (
                round.back.secs(),
                i64::from(round.travel_seconds),
                i64::from(round.overtime_seconds),
            );
            if shown != expected {
                return Err(format!(
                    "{}: a round with no new work shows {shown:?}, not {expected:?}",
                    c.id
                ));
            }
            continue;
        }
        if !working(c, o) {
            return Err(format!("{} is not working but is given work", c.id));
        }
        if done.is_empty() && round.depart.secs() != o.time {
            return Err(format!("{} leaves at {} not when free", c.id, round.depart));
        }
        // Skills and pins.
        let needed: Vec<_> = new.iter().map(|s| needs(p, s)).collect();
        for (s, &(need, pin)) in new.iter().zip(&needed) {
            if !may_take(c, o, need, pin) {
                return Err(format!("{} may not do {}", c.id, s.id));
            }
        }
        let breaks = new.iter().filter(|s| s.kind == StopKind::Break).count();
        if breaks != usize::from(due(p, c, o)) {
            return Err(format!("{} takes {breaks} breaks", c.id));
        }
        // Every time shown is the oracle's.
        let jobs = jobs_of(p, c, o, round);
        let (timed, back, travel) = replay(p, c, o, &jobs);
        let mut k = 0;
        for (i, s) in new.iter().enumerate() {
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
            // A care-home stop is one sitting: each review starts as the one before ends.
            if (k + 1..k + n).any(|q| timed[q].travel != 0 || timed[q].start != timed[q - 1].finish)
            {
                return Err(format!(
                    "{} stop {}: a care-home stop moves or waits",
                    c.id, s.id
                ));
            }
            late_sum += u64::try_from(late).unwrap();
            for q in k..k + n {
                delay_sum += immediate_delay(p, origins, needed[i], &jobs[q], &timed[q]);
            }
            k += n;
        }
        if back > limit(c) {
            return Err(format!("{} back {} past limit {}", c.id, back, limit(c)));
        }
        let shown = (
            round.back.secs(),
            i64::from(round.travel_seconds),
            i64::from(round.overtime_seconds),
        );
        let oracle = (back, done_travel + travel, (back - shift_end).max(0));
        if shown != oracle {
            return Err(format!(
                "{}: shown (back, travel, overtime) {shown:?}, replayed {oracle:?}",
                c.id
            ));
        }
    }
    // The summary adds up.
    let s = &out.summary;
    if (
        s.travel_seconds,
        s.late_seconds,
        s.overtime_seconds,
        s.immediate_delay_seconds,
    ) != (travel_sum, late_sum, overtime_sum, delay_sum as u64)
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
        prizes += prize(urgency, overdue);
        if urgency == Urgency::Routine {
            routine += 1;
        } else {
            urgent += 1;
        }
    }
    let cost = prizes
        + weights::LATENESS * (late_sum as i64 + delay_sum)
        + weights::TRAVEL * travel_sum as i64
        + weights::OVERTIME * overtime_sum as i64
        + weights::REASSIGN * i64::from(s.reassigned)
        + weights::DELAY * s.moved_later_seconds as i64;
    if (s.unserved_urgent, s.unserved_routine, s.cost) != (urgent, routine, cost) {
        return Err(format!(
            "summary {s:?}: expected {urgent} urgent, {routine} routine unserved, cost {cost}"
        ));
    }
    for u in &out.unplanned {
        reason_is_true(p, out, origins, u)?;
    }
    immediate_as_soon_as_possible(p, out, origins)
}

/// Where `job` would start if put at position `at` of `jobs` (clinician `c` from `o`), when
/// that harms nothing: it is on time, no other stop gets later past its window, the clinician
/// is back by their limit and no other immediate visit starts later.
fn harmless_start(
    p: &Problem,
    c: &Clinician,
    o: &Origin,
    placing: (&[Job], &Job, usize),
) -> Option<i64> {
    harmless_to_others(p, c, o, placing).and_then(|(start, late)| (late == 0).then_some(start))
}

/// Where `job` would start if put at position `at` of `jobs`, and how late, when that harms
/// nobody else: no other stop gets later past its window, the clinician is back by their
/// limit and no other immediate visit starts later.
fn harmless_to_others(
    p: &Problem,
    c: &Clinician,
    o: &Origin,
    (jobs, job, at): (&[Job], &Job, usize),
) -> Option<(i64, i64)> {
    let (base, _, _) = replay(p, c, o, jobs);
    let mut trial = jobs.to_vec();
    trial.insert(at, job.clone());
    let (timed, back, _) = replay(p, c, o, &trial);
    let harmless = back <= limit(c)
        && timed
            .iter()
            .enumerate()
            .filter(|&(q, _)| q != at)
            .all(|(q, t)| {
                let was = base[if q < at { q } else { q - 1 }];
                t.late <= was.late && (t.start <= was.start || !trial[q].immediate)
            });
    harmless.then_some((timed[at].start, timed[at].late))
}

/// Every immediate visit or review planned starts as soon as it can: no harmless place in any
/// round that may take it starts it more than five minutes sooner.
fn immediate_as_soon_as_possible(
    p: &Problem,
    out: &Plan,
    origins: &[Origin],
) -> Result<(), String> {
    for (k, (round, o)) in out.rounds.iter().zip(origins).enumerate() {
        let c = &p.clinicians[k];
        let jobs = jobs_of(p, c, o, round);
        let (now, _, _) = replay(p, c, o, &jobs);
        // Each job of the round after the fixed stops, with its id, skills and pin.
        let mut items: Vec<(String, &[String], Option<&str>)> = Vec::new();
        for s in &round.stops[o.fixed.min(round.stops.len())..] {
            match s.kind {
                StopKind::Visit => {
                    let v = p.visits.iter().find(|v| v.id == s.id).unwrap();
                    items.push((v.id.clone(), &v.skills, v.pinned_to.as_deref()));
                }
                StopKind::CareHome => {
                    let h = p.care_homes.iter().find(|h| h.id == s.id).unwrap();
                    for r in &s.residents {
                        items.push((format!("{}/{r}", h.id), &h.skills, None));
                    }
                }
                StopKind::Break => items.push((String::new(), &[], None)),
            }
        }
        for (q, (id, need, pin)) in items.iter().enumerate() {
            if !jobs[q].immediate {
                continue;
            }
            let mut left = jobs.clone();
            let job = left.remove(q);
            // Taking it out must not delay the rest of its round (it can, where a break is
            // taken wherever the clinician is); else it stays where it is.
            let (without, back, _) = replay(p, c, o, &left);
            let harmed = back > limit(c)
                || without.iter().enumerate().any(|(r, t)| {
                    let was = now[if r < q { r } else { r + 1 }];
                    t.late > was.late || (t.start > was.start && left[r].immediate)
                });
            if harmed {
                continue;
            }
            for (k2, c2) in p.clinicians.iter().enumerate() {
                let o2 = &origins[k2];
                if !may_take(c2, o2, need, *pin) {
                    continue;
                }
                let others = if k2 == k {
                    left.clone()
                } else {
                    jobs_of(p, c2, o2, &out.rounds[k2])
                };
                for at in 0..=others.len() {
                    if let Some(start) = harmless_start(p, c2, o2, (&others, &job, at))
                        && start + 300 < now[q].start
                    {
                        return Err(format!(
                            "immediate {id} starts at {} but could start at {start} with {}",
                            now[q].start, c2.id
                        ));
                    }
                }
            }
        }
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

/// Whether the visit `id`, or resident `id` of `home`, is planned.
fn planned(out: &Plan, id: &str, home: Option<&str>) -> bool {
    out.rounds
        .iter()
        .flat_map(|r| &r.stops)
        .any(|s| match home {
            None => s.kind == StopKind::Visit && s.id == id,
            Some(home) => s.id == home && s.residents.iter().any(|r| r == id),
        })
}

/// Whether `u`'s reason holds for this plan.
fn reason_is_true(
    p: &Problem,
    out: &Plan,
    origins: &[Origin],
    u: &doorstep_routing::Unplanned,
) -> Result<(), String> {
    if u.reason == Reason::PatientNotAtHome {
        return Ok(());
    }
    let (job, need, pin) = unplanned_job(p, u);
    let false_reason = |why: &str| Err(format!("{} left out as {:?}, but {why}", u.id, u.reason));
    let takers: Vec<usize> = (0..p.clinicians.len())
        .filter(|&k| may_take(&p.clinicians[k], &origins[k], need, pin))
        .collect();
    match &u.reason {
        Reason::NoClinicianWorking => {
            if p.clinicians.iter().zip(origins).any(|(c, o)| working(c, o)) {
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
                .zip(origins)
                .any(|(c, o)| &c.id == clinician && working(c, o))
            {
                return false_reason("they are working");
            }
            return Ok(());
        }
        Reason::PinnedClinicianLacksSkills { clinician, missing } => {
            if pin != Some(clinician.as_str()) {
                return false_reason("it is not pinned to them");
            }
            let Some(c) = p
                .clinicians
                .iter()
                .zip(origins)
                .find(|(c, o)| &c.id == clinician && working(c, o))
                .map(|(c, _)| c)
            else {
                return false_reason("they are not working");
            };
            let lacking: Vec<&String> = need.iter().filter(|s| !c.skills.contains(s)).collect();
            if lacking.is_empty() || lacking != missing.iter().collect::<Vec<_>>() {
                return false_reason(&format!("they lack {lacking:?}"));
            }
            return Ok(());
        }
        Reason::NoSkilledClinician { missing } => {
            if !takers.is_empty() {
                return false_reason("someone working may do it");
            }
            if pin.is_some() {
                return false_reason("it is pinned, so the pin's reason applies");
            }
            if missing.is_empty()
                && p.clinicians
                    .iter()
                    .zip(origins)
                    .any(|(c, o)| working(c, o) && need.iter().all(|s| c.skills.contains(s)))
            {
                return false_reason("one working clinician holds every skill");
            }
            for s in need {
                let held = p
                    .clinicians
                    .iter()
                    .zip(origins)
                    .any(|(c, o)| working(c, o) && c.skills.contains(s));
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
        Reason::WouldMakeImmediateLate { visit, care_home } => {
            let home = care_home.as_deref();
            if !planned(out, visit, home) || !is_immediate(p, visit, home) {
                return false_reason("that visit is not a planned immediate one");
            }
        }
        Reason::WouldMakeVisitLate { visit, care_home } => {
            if !planned(out, visit, care_home.as_deref()) {
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
    let outside = u.reason == Reason::OutsideEveryShift;
    if outside {
        for &k in &takers {
            let c = &p.clinicians[k];
            let (timed, back, _) = replay(p, c, &origins[k], std::slice::from_ref(&job));
            if timed[0].late == 0 && back <= limit(c) {
                return false_reason(&format!("{} could do it alone", c.id));
            }
        }
    }
    // Nowhere must it fit without harm, which includes starting an immediate visit later (the
    // planner counts that as harm only past the time it held the visit due, so a place that
    // fits with no immediate visit later at all would have been taken).
    // Urgent work is planned late rather than left out wherever that harms nobody else and
    // its lateness weighs less than leaving it out.
    // So is it where one less valuable stop, whose going harms nobody, makes way, while the
    // lateness and that stop's value weigh less than leaving it out.
    let value = match urgency_of(p, u) {
        Urgency::Routine => 0,
        urgent => prize(urgent, 0),
    };
    for &k in &takers {
        let c = &p.clinicians[k];
        let o = &origins[k];
        let jobs = jobs_of(p, c, o, &out.rounds[k]);
        for at in 0..=jobs.len() {
            match harmless_to_others(p, c, o, (&jobs, &job, at)) {
                // Outside every shift is judged alone (above): with a supplied matrix a way
                // through another stop can be quicker than straight there.
                Some((_, 0)) if !outside => {
                    return false_reason(&format!("it fits in {}'s round at position {at}", c.id));
                }
                Some((_, late)) if weights::LATENESS * late < value => {
                    return false_reason(&format!(
                        "it is urgent and fits {late} s late in {}'s round at position {at}",
                        c.id
                    ));
                }
                _ => {}
            }
        }
        if value == 0 {
            continue;
        }
        for (i, gone) in jobs.iter().enumerate() {
            let Some(loss) = gone.prize.filter(|&l| l < value) else {
                continue;
            };
            let mut rest = jobs.clone();
            rest.remove(i);
            if !harmless_to_remove(p, c, o, &jobs, i) {
                continue;
            }
            for at in 0..=rest.len() {
                if let Some((_, late)) = harmless_to_others(p, c, o, (&rest, &job, at))
                    && weights::LATENESS * late + loss < value
                {
                    return false_reason(&format!(
                        "it is urgent and fits {late} s late in {}'s round at position {at} \
                         in place of its stop {i}",
                        c.id
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether taking job `i` out of `jobs` (clinician `c`'s round after its fixed stops) harms
/// nobody: no other job later past its window, no immediate one starting later, and the
/// clinician back by their limit (a break taken where they stand moves with what goes).
fn harmless_to_remove(p: &Problem, c: &Clinician, o: &Origin, jobs: &[Job], i: usize) -> bool {
    let (base, _, _) = replay(p, c, o, jobs);
    let mut rest = jobs.to_vec();
    rest.remove(i);
    let (timed, back, _) = replay(p, c, o, &rest);
    back <= limit(c)
        && timed.iter().enumerate().all(|(q, t)| {
            let was = base[if q < i { q } else { q + 1 }];
            t.late <= was.late && (t.start <= was.start || !rest[q].immediate)
        })
}

/// How urgent the visit or resident `u` is.
fn urgency_of(p: &Problem, u: &doorstep_routing::Unplanned) -> Urgency {
    match &u.care_home {
        None => p.visits.iter().find(|v| v.id == u.id).unwrap().urgency,
        Some(h) => {
            let h = p.care_homes.iter().find(|x| &x.id == h).unwrap();
            h.residents.iter().find(|r| r.id == u.id).unwrap().urgency
        }
    }
}

fn planned_resident_of(out: &Plan, home: Option<&str>) -> bool {
    out.rounds
        .iter()
        .flat_map(|r| &r.stops)
        .any(|s| s.kind == StopKind::CareHome && Some(s.id.as_str()) == home)
}

fn is_immediate(p: &Problem, id: &str, home: Option<&str>) -> bool {
    match home {
        None => p
            .visits
            .iter()
            .any(|v| v.id == id && v.urgency == Urgency::Immediate),
        Some(home) => p
            .care_homes
            .iter()
            .filter(|h| h.id == home)
            .flat_map(|h| &h.residents)
            .any(|r| r.id == id && r.urgency == Urgency::Immediate),
    }
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn every_plan_of_a_random_day_repeats_replays_exactly_and_explains_what_it_leaves_out(
        p in day(), seed in 0u64..1000
    ) {
        let out = plan(&p, &Budget::iterations(8), seed).expect("a valid day plans");
        // The same day, read back from its JSON, plans the same for the seed.
        let read: Problem = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        prop_assert_eq!(&plan(&read, &Budget::iterations(8), seed).unwrap(), &out);
        if out.summary.reassigned != 0 || out.summary.moved_later_seconds != 0 {
            return Err(TestCaseError::fail("a first plan moves nothing"));
        }
        if let Err(e) = check(&p, &out, &fresh(&p)) {
            return Err(TestCaseError::fail(format!("{e}\nplan: {}", serde_json::to_string(&out).unwrap())));
        }
    }
}

/// Where a stop is (a break: nowhere of its own).
fn stop_place(p: &Problem, s: &Stop) -> Option<Location> {
    match s.kind {
        StopKind::Visit => p.visits.iter().find(|v| v.id == s.id).map(|v| v.location),
        StopKind::CareHome => p
            .care_homes
            .iter()
            .find(|h| h.id == s.id)
            .map(|h| h.location),
        StopKind::Break => None,
    }
}

/// The events of a re-plan at `now`, drawn from `picks` (kind, index, minutes): an urgent
/// visit from `urgent`, a clinician running late, a patient not at home, a clinician off sick.
fn events(p: &Problem, now: Clock, picks: &[(usize, usize, u32)], urgent: &[Visit]) -> Vec<Event> {
    let clinician = |i: usize| p.clinicians[i % p.clinicians.len()].id.clone();
    picks
        .iter()
        .enumerate()
        .filter_map(|(j, &(kind, i, minutes))| match kind {
            0 => {
                let mut visit = urgent[j].clone();
                visit.id = format!("urgent{j}");
                visit.urgency = Urgency::Immediate;
                visit.not_at_home = false;
                visit.pinned_to = None;
                visit.windows = vec![Window {
                    start: now,
                    end: Clock(now.0 + 7200),
                }];
                Some(Event::UrgentVisit { at: now, visit })
            }
            1 => Some(Event::ClinicianLate {
                at: now,
                clinician: clinician(i),
                minutes,
            }),
            2 => (!p.visits.is_empty()).then(|| Event::PatientNotAtHome {
                at: now,
                visit: p.visits[i % p.visits.len()].id.clone(),
            }),
            _ => Some(Event::ClinicianOffSick {
                at: now,
                clinician: clinician(i),
            }),
        })
        .collect()
}

/// What each clinician has done or is doing at `now` by the re-plan rule (a stop is under way
/// once they have set off for it, unless they have reached it and are waiting for it to begin:
/// then they stand there, free; one gone off sick keeps only what they had begun), with the
/// delays reported, and where and when they are free.
fn under_way(
    p: &Problem,
    before: &Plan,
    events: &[Event],
    now: Clock,
) -> (Vec<Vec<Stop>>, Vec<Origin>) {
    let absent: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::PatientNotAtHome { visit, .. } => Some(visit.as_str()),
            _ => None,
        })
        .collect();
    let mut kept = Vec::new();
    let mut origins = Vec::new();
    for (c, round) in p.clinicians.iter().zip(&before.rounds) {
        let delays: Vec<i64> = events
            .iter()
            .filter_map(|e| match e {
                Event::ClinicianLate {
                    clinician, minutes, ..
                } if clinician == &c.id => Some(60 * i64::from(*minutes)),
                _ => None,
            })
            .collect();
        let delay: i64 = delays.iter().sum();
        // Every delay is reported now: what was still to happen then happens that much later.
        let later = |t: i64| if t > now.secs() { t + delay } else { t };
        let stops: Vec<Stop> = round
            .stops
            .iter()
            .map(|s| {
                let mut moved = Stop {
                    arrival: Clock(later(s.arrival.secs()) as u32),
                    start: Clock(later(s.start.secs()) as u32),
                    finish: Clock(later(s.finish.secs()) as u32),
                    ..s.clone()
                };
                if moved.finish != s.finish {
                    // Late past the end of the last window that closed before the start
                    // (none inside a window), each review of a sitting on its own.
                    let past = |windows: &[Window], t: i64| {
                        if windows
                            .iter()
                            .any(|w| w.start.secs() <= t && t <= w.end.secs())
                        {
                            return 0;
                        }
                        windows
                            .iter()
                            .map(|w| w.end.secs())
                            .filter(|&e| e < t)
                            .max()
                            .map_or(0, |e| t - e)
                    };
                    moved.waiting_seconds = moved.start.0.saturating_sub(moved.arrival.0);
                    moved.late_seconds = match s.kind {
                        StopKind::Visit => {
                            let v = p.visits.iter().find(|v| v.id == s.id).unwrap();
                            past(&v.windows, moved.start.secs())
                        }
                        StopKind::CareHome => {
                            let home = p.care_homes.iter().find(|h| h.id == s.id).unwrap();
                            review_times(p, s)
                                .iter()
                                .map(|&(start, _)| past(&home.windows, later(start)))
                                .sum()
                        }
                        StopKind::Break => {
                            past(&[c.break_.as_ref().unwrap().window], moved.start.secs())
                        }
                    } as u32;
                }
                moved
            })
            .collect();
        // The day went as planned until now: nothing planned again, every patient at home.
        let mut as_planned = true;
        let (mut at, mut free) = (c.start, c.shift.start.secs().max(now.secs()));
        let mut fixed: Vec<Stop> = Vec::new();
        let gone_off = c.off_from.is_some_and(|off| off <= now);
        let mut unlisted = i64::from(round.unlisted_travel_seconds);
        // Past the previous plan's fixed stops, they were free where it says.
        let boundary = round.stops.iter().take_while(|s| s.fixed).count();
        let resume = round.free_from.map(|f| (f.location, later(f.at.secs())));
        let mut resumed = None;
        for (j, s) in stops.iter().enumerate() {
            if j == boundary
                && as_planned
                && let Some((place, from)) = resume
            {
                (at, free) = (place, from);
                resumed = Some(from);
            }
            let waiting = !s.fixed && s.arrival <= now && now < s.start;
            if waiting {
                at = stop_place(p, s).unwrap_or(at);
                unlisted += i64::from(s.travel_seconds);
            }
            // Gone off sick, they keep only what they had begun; working, what they had set
            // off for and are not waiting at.
            let begun = s.start < now;
            let set_off = s.arrival.secs() - i64::from(s.travel_seconds) < now.secs();
            if !s.fixed
                && (if gone_off {
                    !begun
                } else {
                    waiting || !set_off
                })
            {
                as_planned = false;
                continue;
            }
            at = stop_place(p, s).unwrap_or(at);
            if s.kind == StopKind::Visit && absent.contains(&s.id.as_str()) {
                // Free at the door once they have reached it.
                free = free.max(now.secs()).max(s.arrival.secs());
                unlisted += i64::from(s.travel_seconds);
                as_planned = false;
                continue;
            }
            let mut s = s.clone();
            if gone_off && !s.fixed && s.kind == StopKind::CareHome {
                // Only the reviews begun before they went are theirs.
                let home = p.care_homes.iter().find(|h| h.id == s.id).unwrap();
                let last_end = home.windows.iter().map(|w| w.end.secs()).max();
                let times: Vec<(i64, i64)> = review_times(p, &round.stops[j])
                    .iter()
                    .map(|&(a, b)| (later(a), later(b)))
                    .collect();
                let n = times
                    .iter()
                    .filter(|&&(start, _)| start < now.secs())
                    .count();
                if n < s.residents.len() {
                    s.residents.truncate(n);
                    s.finish = Clock(times[n - 1].1 as u32);
                    s.late_seconds = times[..n]
                        .iter()
                        .map(|&(t, _)| last_end.map_or(0, |end| (t - end).max(0)))
                        .sum::<i64>() as u32;
                    as_planned = false;
                }
            }
            s.fixed = true;
            free = s.finish.secs();
            fixed.push(s);
        }
        if boundary == stops.len()
            && as_planned
            && let Some((place, from)) = resume
        {
            (at, free) = (place, from);
            resumed = Some(from);
        }
        // Held up, they are not free before the report plus the delay.
        if !delays.is_empty() {
            free = free.max(now.secs() + delay);
        }
        // On the way back (no delay reported, nothing left): at their end location when the
        // previous plan had them back.
        // A round with no stop but driving it carried had them drive back from the last
        // door at once.
        let finished = match fixed.last() {
            Some(last) => last.finish <= now,
            None => round.stops.is_empty() && round.unlisted_travel_seconds > 0,
        };
        // Gone off sick after setting off back, they drive back all the same.
        let set_off_back = fixed.last().map_or(round.depart, |last| last.finish);
        let returned = if as_planned && finished && c.off_from.is_none_or(|off| off > set_off_back)
        {
            let counted: u32 = round.stops.iter().map(|s| s.travel_seconds).sum();
            let drive = i64::from(round.travel_seconds)
                - i64::from(counted)
                - i64::from(round.unlisted_travel_seconds);
            // A delay reported on the way back puts the return that much later.
            let back = later(round.back.secs());
            let back = fixed
                .last()
                .map_or(back, |last| back.max(last.finish.secs()));
            Some((back, drive))
        } else {
            None
        };
        if let Some((back, _)) = returned {
            at = c.end.unwrap_or(c.start);
            free = free.max(back);
        }
        origins.push(Origin {
            at,
            time: free.max(now.secs()),
            fixed: fixed.len(),
            available: c.off_from.is_none_or(|off| off > now),
            break_taken: fixed.iter().any(|s| s.kind == StopKind::Break),
            returned,
            unlisted,
            last_free: resumed
                .filter(|&free| gone_off && c.off_from.is_some_and(|off| free <= off.secs())),
        });
        kept.push(fixed);
    }
    (kept, origins)
}

/// When each review of care-home sitting `s` starts and ends, one after another.
fn review_times(p: &Problem, s: &Stop) -> Vec<(i64, i64)> {
    let home = p.care_homes.iter().find(|h| h.id == s.id).unwrap();
    let mut t = s.start.secs();
    s.residents
        .iter()
        .map(|id| {
            let start = t;
            t += 60 * i64::from(home.residents.iter().find(|r| &r.id == id).unwrap().minutes);
            (start, t)
        })
        .collect()
}

/// Each visit's and resident's clinician and start in the stops after the fixed ones.
fn starts(out: &Plan, origins: &[Origin], p: &Problem) -> HashMap<String, (usize, i64)> {
    let mut at = HashMap::new();
    for (k, (round, o)) in out.rounds.iter().zip(origins).enumerate() {
        for s in &round.stops[o.fixed.min(round.stops.len())..] {
            match s.kind {
                StopKind::Visit => {
                    at.insert(s.id.clone(), (k, s.start.secs()));
                }
                StopKind::CareHome => {
                    let h = p.care_homes.iter().find(|h| h.id == s.id).unwrap();
                    let mut t = s.start.secs();
                    for id in &s.residents {
                        at.insert(format!("{}/{id}", h.id), (k, t));
                        t += 60
                            * i64::from(h.residents.iter().find(|r| &r.id == id).unwrap().minutes);
                    }
                }
                StopKind::Break => {}
            }
        }
    }
    at
}

proptest! {
    #![proptest_config(config(100))]

    #[test]
    fn every_replan_keeps_what_is_under_way_replays_exactly_and_counts_what_moved(
        p in day(),
        seed in 0u64..1000,
        now in 480u32..1080,
        picks in prop::collection::vec((0usize..4, 0usize..16, 0u32..90), 1..=3),
        urgent in prop::collection::vec(visit(), 3),
    ) {
        let before = plan(&p, &Budget::iterations(8), seed).expect("a valid day plans");
        let now = Clock(now * 60);
        let events = events(&p, now, &picks, &urgent);
        prop_assume!(!events.is_empty());
        let mut after_day = p.clone();
        let after = replan(&mut after_day, &before, &events, &Budget::iterations(8), seed)
            .expect("valid events re-plan");
        let (kept, origins) = under_way(&after_day, &before, &events, now);
        let show = || serde_json::to_string(&(&before, &events, &after)).unwrap();
        for ((c, fixed), round) in after_day.clinicians.iter().zip(&kept).zip(&after.rounds) {
            prop_assert_eq!(&round.stops[..fixed.len().min(round.stops.len())], &fixed[..],
                "{} did not keep what was under way: {}", c.id, show());
        }
        if let Err(e) = check(&after_day, &after, &origins) {
            return Err(TestCaseError::fail(format!("{e}\n{}", show())));
        }
        // The stability terms count what moved: to another clinician, or over an hour later.
        let was = starts(&before, &origins.iter().map(|o| Origin { fixed: 0, ..o.clone() }).collect::<Vec<_>>(), &p);
        let (mut moved, mut later) = (0u32, 0u64);
        for (key, (k, start)) in starts(&after, &origins, &after_day) {
            if let Some(&(k0, start0)) = was.get(&key) {
                moved += u32::from(k != k0);
                later += (start - start0 - weights::DELAY_GRACE).max(0) as u64;
            }
        }
        prop_assert_eq!((after.summary.reassigned, after.summary.moved_later_seconds), (moved, later),
            "stability terms: {}", show());
    }

    #[test]
    fn a_replan_of_a_replan_keeps_what_is_under_way_and_replays_exactly(
        p in day(),
        seed in 0u64..1000,
        now in 480u32..1080,
        gap in 5u32..240,
        picks in prop::collection::vec((0usize..4, 0usize..16, 0u32..90), 1..=3),
        more in prop::collection::vec((0usize..4, 0usize..16, 0u32..90), 1..=3),
        urgent in prop::collection::vec(visit(), 3),
    ) {
        let first = plan(&p, &Budget::iterations(8), seed).expect("a valid day plans");
        let mut day = p.clone();
        let events_1 = events(&p, Clock(now * 60), &picks, &urgent);
        prop_assume!(!events_1.is_empty());
        let second = replan(&mut day, &first, &events_1, &Budget::iterations(8), seed)
            .expect("valid events re-plan");
        // Later events, their urgent visits named apart from the first ones'.
        let now = Clock((now + gap) * 60);
        let mut events_2 = events(&day, now, &more, &urgent);
        prop_assume!(!events_2.is_empty());
        for e in &mut events_2 {
            if let Event::UrgentVisit { visit, .. } = e {
                visit.id = format!("then-{}", visit.id);
            }
        }
        let before = day.clone();
        let third = match replan(&mut day, &second, &events_2, &Budget::iterations(8), seed) {
            Ok(third) => third,
            // Only a delay past 48:00 may be refused, and then nothing changes.
            Err(RoutingError::Invalid(e)) if e.reason.contains("48:00") => {
                prop_assert_eq!(&day, &before);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("refused: {e}"))),
        };
        let (kept, origins) = under_way(&day, &second, &events_2, now);
        let show = || serde_json::to_string(&(&second, &events_2, &third)).unwrap();
        for ((c, fixed), round) in day.clinicians.iter().zip(&kept).zip(&third.rounds) {
            prop_assert_eq!(&round.stops[..fixed.len().min(round.stops.len())], &fixed[..],
                "{} did not keep what was under way: {}", c.id, show());
        }
        if let Err(e) = check(&day, &third, &origins) {
            return Err(TestCaseError::fail(format!("{e}\n{}", show())));
        }
    }
}
