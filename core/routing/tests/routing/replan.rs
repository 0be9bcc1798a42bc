//! `replan`: each event of a running day, with what is done or under way left where it was.

use doorstep_domain::ValidationError;
use doorstep_routing::{
    Clock, Event, Location, Plan, Reason, Round, RoutingError, Stop, StopKind, Urgency, Window,
    plan, replan,
};

use crate::fixtures::*;

/// Stops already set off for at `now`, per clinician.
fn started(plan: &Plan, now: Clock) -> Vec<Vec<Stop>> {
    plan.rounds
        .iter()
        .map(|r| {
            r.stops
                .iter()
                .filter(|s| s.arrival.0 - s.travel_seconds < now.0)
                .cloned()
                .collect()
        })
        .collect()
}

fn assert_started_kept(before: &[Vec<Stop>], after: &Plan) {
    for (old, round) in before.iter().zip(&after.rounds) {
        for (a, b) in old.iter().zip(&round.stops) {
            assert_eq!((&a.id, a.start), (&b.id, b.start), "{} moved", a.id);
            assert!(b.fixed);
        }
    }
}

/// Fifty-minute visits: no clinician can do more than eight, so everyone has a round, and a
/// third paramedic has room for what Ben leaves.
fn a_long_morning_for_three() -> doorstep_routing::Problem {
    let mut p = morning();
    for v in &mut p.visits {
        v.minutes = 50;
    }
    p.clinicians.push(clinician("cat", &["paramedic"]));
    p
}

/// Whether visit `id` went to Ana or Cat in `plan` (true), or is listed as left out (false);
/// panics when it is neither.
fn moved_or_left_out(plan: &Plan, id: &str) -> bool {
    let moved = [0, 2]
        .iter()
        .any(|&k| plan.rounds[k].stops.iter().any(|x| x.id == id));
    let left = plan.unplanned.iter().any(|u| u.id == id);
    assert!(moved || left, "{id} lost");
    moved
}

/// Ana with her one visit `v`, pinned to her, and Bob with nothing to do: the day of the
/// drive-back tests, where an event for Bob re-plans Ana's round as it stands.
fn anas_visit_with_bob_free(mut v: doorstep_routing::Visit) -> doorstep_routing::Problem {
    v.pinned_to = Some("ana".into());
    problem(vec![clinician("ana", &[]), clinician("bob", &[])], vec![v])
}

/// Ana's one visit, 5 km out, planned: the day, its plan, and her round, which has her back
/// at the practice before half past ten.
fn anas_visit_done_by_half_past_ten() -> (doorstep_routing::Problem, Plan, Round) {
    let p = anas_visit_with_bob_free(visit("v", north(5.0), 30));
    let first = plan(&p, &budget(), 1).unwrap();
    let done = first.rounds[0].clone();
    assert!(done.back < Clock::hm(10, 30), "{done:#?}");
    (p, first, done)
}

/// Ana's night shift (40:00 to 47:00) with one half-hour visit 5 km out, due in `window`:
/// the day and its plan.
fn anas_night_visit(window: Window) -> (doorstep_routing::Problem, Plan) {
    let mut ana = clinician("ana", &[]);
    ana.shift = crate::fixtures::window((40, 0), (47, 0));
    let mut v = visit("v", north(5.0), 30);
    v.windows = vec![window];
    let p = problem(vec![ana], vec![v]);
    let first = plan(&p, &budget(), 1).unwrap();
    (p, first)
}

/// A visit pinned to Bob, called in at `at`: an event that leaves Ana's round to be
/// re-planned as it stands.
fn bobs_call(at: Clock) -> [Event; 1] {
    let mut elsewhere = visit("elsewhere", north(1.0), 20);
    elsewhere.pinned_to = Some("bob".into());
    [Event::UrgentVisit {
        at,
        visit: elsewhere,
    }]
}

/// Ana's one visit, 5 km out, with nobody at home: the re-plan made when she leaves the
/// door five minutes after reaching it, and when that is.
fn nobody_answers_the_one_visit(p: &mut doorstep_routing::Problem, first: &Plan) -> (Plan, Clock) {
    let v = &first.rounds[0].stops[0];
    let left = Clock(v.arrival.0 + 300);
    let absent = [Event::PatientNotAtHome {
        at: left,
        visit: v.id.clone(),
    }];
    (replan(p, first, &absent, &budget(), 1).unwrap(), left)
}

/// An immediate visit called in at 11:05, to be seen by 13:05.
fn urgent_call(location: Location, minutes: u32) -> Event {
    let mut urgent = visit("urgent", location, minutes);
    urgent.urgency = Urgency::Immediate;
    urgent.windows = vec![window((11, 5), (13, 5))];
    Event::UrgentVisit {
        at: Clock::hm(11, 5),
        visit: urgent,
    }
}

#[test]
fn an_urgent_visit_at_five_past_eleven_is_fitted_in_without_moving_started_work() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let now = Clock::hm(11, 5);
    let before = started(&first, now);
    let events = [urgent_call(north(2.5), 40)];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    assert_started_kept(&before, &second);
    let stop = second
        .rounds
        .iter()
        .flat_map(|r| &r.stops)
        .find(|s| s.id == "urgent")
        .expect("urgent visit planned");
    assert!(stop.start >= now);
    assert_eq!(stop.late_seconds, 0);
    assert!(p.visits.iter().any(|v| v.id == "urgent"));
}

#[test]
fn a_clinician_waiting_at_a_door_for_a_window_takes_an_urgent_call_meanwhile() {
    // Ana's only visit is 2 km north from 13:00; the plan has her there early, waiting. At
    // 11:05 an urgent call comes in a kilometre further on: she is free where she stands, so
    // she goes now and is back for 13:00, rather than finishing the wait first.
    let mut w = visit("w", north(2.0), 30);
    w.windows = vec![window((13, 0), (14, 0))];
    let mut p = problem(vec![clinician("ana", &[])], vec![w]);
    let first = plan(&p, &budget(), 1).unwrap();
    let now = Clock::hm(11, 5);
    let waiting = &first.rounds[0].stops[0];
    assert!(waiting.arrival <= now && now < waiting.start, "{waiting:?}");
    let events = [urgent_call(north(3.0), 30)];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let stops = &second.rounds[0].stops;
    let ids: Vec<&str> = stops.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["urgent", "w"], "{stops:#?}");
    assert!(stops[0].start <= Clock::hm(11, 10), "{stops:#?}");
    assert!(stops.iter().all(|s| !s.fixed));
    assert_eq!(stops[1].start, Clock::hm(13, 0));
    assert_eq!(second.summary.late_seconds, 0);
}

#[test]
fn a_clinician_running_forty_minutes_late_is_free_forty_minutes_later() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let now = Clock::hm(10, 0);
    let ana = &first.rounds[0];
    let under_way = ana
        .stops
        .iter()
        .rfind(|s| s.arrival.0 - s.travel_seconds < now.0)
        .expect("ana has started a visit by 10:00")
        .clone();
    let events = [Event::ClinicianLate {
        at: now,
        clinician: "ana".into(),
        minutes: 40,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let round = &second.rounds[0];
    let kept = round.stops.iter().find(|s| s.id == under_way.id).unwrap();
    assert_eq!(kept.finish.0, under_way.finish.0 + 40 * 60);
    let next = round.stops.iter().find(|s| !s.fixed);
    if let Some(next) = next {
        assert!(next.arrival >= kept.finish);
    }
    for v in &p.visits {
        let n = second
            .rounds
            .iter()
            .flat_map(|r| &r.stops)
            .filter(|s| s.id == v.id)
            .count();
        let out = second.unplanned.iter().filter(|u| u.id == v.id).count();
        assert_eq!(n + out, 1, "{} accounted for once", v.id);
    }
}

#[test]
fn a_patient_not_at_home_is_closed_with_that_reason() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let k = first
        .rounds
        .iter()
        .position(|r| r.stops.len() >= 2)
        .expect("a round of two");
    let target = first.rounds[k].stops[1].clone();
    let at = Clock(target.arrival.0 + 300);
    let events = [Event::PatientNotAtHome {
        at,
        visit: target.id.clone(),
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    assert!(
        !second
            .rounds
            .iter()
            .flat_map(|r| &r.stops)
            .any(|s| s.id == target.id)
    );
    let u = second.unplanned.iter().find(|u| u.id == target.id).unwrap();
    assert_eq!(u.reason, Reason::PatientNotAtHome);
    if let Some(next) = second.rounds[k].stops.iter().find(|s| !s.fixed) {
        assert!(next.arrival >= at);
    }
}

#[test]
fn a_patient_reported_not_at_home_before_the_clinician_gets_there_frees_them_on_arrival() {
    // A carer phones while the clinician drives there: she still reaches the
    // door (she set off), and what comes next is timed from her arrival, not
    // from the call.
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let k = first
        .rounds
        .iter()
        .position(|r| r.stops.len() >= 3)
        .expect("a round of three");
    let target = first.rounds[k].stops[1].clone();
    let set_off = target.arrival.0 - target.travel_seconds;
    let at = Clock(set_off + (target.arrival.0 - set_off) / 2);
    let events = [Event::PatientNotAtHome {
        at,
        visit: target.id.clone(),
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let next = second.rounds[k]
        .stops
        .iter()
        .find(|s| !s.fixed)
        .expect("the round goes on");
    assert!(
        next.arrival.0 >= target.arrival.0 + next.travel_seconds,
        "{next:?} leaves the absent patient's door before reaching it at {:?}",
        target.arrival
    );
}

#[test]
fn a_clinician_off_sick_keeps_only_finished_work_and_the_rest_moves() {
    let mut p = a_long_morning_for_three();
    let first = plan(&p, &budget(), 1).unwrap();
    let now = Clock::hm(10, 30);
    let before = started(&first, now);
    let events = [Event::ClinicianOffSick {
        at: now,
        clinician: "ben".into(),
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    assert_started_kept(&before, &second);
    assert!(second.rounds[1].stops.iter().all(|s| s.fixed));
    let mut moved_over = 0;
    for s in first.rounds[1]
        .stops
        .iter()
        .filter(|s| s.arrival.0 - s.travel_seconds >= now.0)
    {
        moved_over += u32::from(moved_or_left_out(&second, &s.id));
    }
    // Every visit that changed hands is counted, and costed, as a reassignment.
    assert!(moved_over > 0);
    assert_eq!(second.summary.reassigned, moved_over);
}

#[test]
fn pinned_visits_stay_with_their_clinician_through_a_replan() {
    let mut p = morning();
    p.visits[6].pinned_to = Some("ben".into());
    let first = plan(&p, &budget(), 1).unwrap();
    assert!(first.rounds[1].stops.iter().any(|s| s.id == "v6"));
    let mut urgent = visit("urgent", north(6.0), 30);
    urgent.urgency = Urgency::Immediate;
    urgent.windows = vec![window((9, 45), (11, 45))];
    let events = [Event::UrgentVisit {
        at: Clock::hm(9, 45),
        visit: urgent,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    assert!(second.rounds[1].stops.iter().any(|s| s.id == "v6"));
}

#[test]
fn an_event_for_an_unknown_clinician_is_an_error() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let before = p.clone();
    let events = [
        Event::ClinicianOffSick {
            at: Clock::hm(10, 0),
            clinician: "ana".into(),
        },
        Event::ClinicianOffSick {
            at: Clock::hm(10, 0),
            clinician: "zed".into(),
        },
    ];
    let e = replan(&mut p, &first, &events, &budget(), 1).unwrap_err();
    assert_eq!(
        e,
        RoutingError::UnknownId {
            field: "events[1].clinician".into(),
            kind: "clinician",
            id: "zed".into(),
        }
    );
    assert_eq!(e.to_string(), "events[1].clinician: unknown clinician zed");
    let events = [Event::PatientNotAtHome {
        at: Clock::hm(10, 0),
        visit: "nobody".into(),
    }];
    let e = replan(&mut p, &first, &events, &budget(), 1).unwrap_err();
    assert_eq!(e.to_string(), "events[0].visit: unknown visit nobody");
    // A plan made for another day's list of clinicians is refused too.
    let mut stale = first.clone();
    stale.rounds[0].clinician = "zed".into();
    let events = [urgent_call(north(1.0), 20)];
    let e = replan(&mut p, &stale, &events, &budget(), 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "previous.rounds[0].clinician: unknown clinician zed"
    );
    assert_eq!(p, before);
}

#[test]
fn a_replan_that_fails_leaves_the_problem_as_it_was() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let before = p.clone();
    let mut urgent = p.visits[0].clone();
    urgent.id = "urgent".into();
    // The urgent visit and the absent patient are valid; the sick clinician is not on the list.
    let events = [
        Event::UrgentVisit {
            at: Clock::hm(11, 5),
            visit: urgent,
        },
        Event::PatientNotAtHome {
            at: Clock::hm(10, 0),
            visit: "v2".into(),
        },
        Event::ClinicianOffSick {
            at: Clock::hm(10, 0),
            clinician: "zed".into(),
        },
    ];
    assert!(replan(&mut p, &first, &events, &budget(), 1).is_err());
    assert_eq!(p, before);
    // Corrected, the same events apply once.
    let second = replan(&mut p, &first, &events[..2], &budget(), 1).unwrap();
    assert_eq!(p.visits.len(), before.visits.len() + 1);
    assert!(second.unplanned.iter().any(|u| u.id == "v2"));
}

#[test]
fn a_delay_longer_than_a_day_is_refused() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let events = [Event::ClinicianLate {
        at: Clock::hm(10, 0),
        clinician: "ana".into(),
        minutes: 100_000,
    }];
    let e = replan(&mut p, &first, &events, &budget(), 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid events[0].minutes: must be at most 1440 (clinician ana)"
    );
}

#[test]
fn no_events_or_a_visit_already_planned_are_refused_naming_the_event() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let e = replan(&mut p, &first, &[], &budget(), 1).unwrap_err();
    assert_eq!(
        e,
        RoutingError::Invalid(ValidationError::new(
            "events",
            "a re-plan needs at least one event"
        ))
    );
    let mut again = p.visits[3].clone();
    again.urgency = Urgency::Immediate;
    let events = [
        urgent_call(north(1.0), 20),
        Event::UrgentVisit {
            at: Clock::hm(11, 10),
            visit: again,
        },
    ];
    let before = p.clone();
    let e = replan(&mut p, &first, &events, &budget(), 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid events[1].visit.id: visit v3 is already in the plan"
    );
    assert_eq!(p, before);
}

#[test]
fn an_urgent_visit_that_breaks_a_rule_is_refused_naming_its_event() {
    let mut p = morning();
    p.care_homes
        .push(care_home("oaks", 3.0, window((10, 0), (16, 0)), 2, 20));
    let first = plan(&p, &budget(), 1).unwrap();
    let before = p.clone();
    let mut zero = visit("zero", north(1.0), 0);
    zero.urgency = Urgency::Immediate;
    let mut home = visit("oaks", north(1.0), 20);
    home.urgency = Urgency::Immediate;
    for (visit, path) in [
        (zero, "events[1].visit.minutes"),
        (home, "events[1].visit.id"),
    ] {
        let events = [
            urgent_call(north(1.0), 20),
            Event::UrgentVisit {
                at: Clock::hm(11, 10),
                visit,
            },
        ];
        let RoutingError::Invalid(e) = replan(&mut p, &first, &events, &budget(), 1).unwrap_err()
        else {
            panic!("not a validation error");
        };
        assert_eq!(e.field, path);
        assert_eq!(p, before);
    }
}

#[test]
fn a_replan_does_not_push_a_visit_hours_later_to_save_a_little_travel() {
    // The round ends three kilometres east of the practice, where the patient at "x" lives.
    let east = doorstep_routing::Location {
        lat: BASE.lat,
        lon: BASE.lon + 3.0 / 70.4,
    };
    let mut a = clinician("a", &[]);
    a.end = Some(east);
    let mut visits: Vec<_> = (1..=4)
        .map(|i| visit(&format!("n{i}"), north(f64::from(i)), 45))
        .collect();
    let mut x = visit("x", east, 30);
    x.windows = vec![window((9, 0), (9, 30))];
    visits.push(x);
    let mut p = problem(vec![a], visits);
    let first = plan(&p, &budget(), 1).unwrap();
    let start_of = |plan: &Plan| {
        plan.rounds[0]
            .stops
            .iter()
            .find(|s| s.id == "x")
            .expect("x planned")
            .start
    };
    assert!(start_of(&first) <= Clock::hm(9, 30));

    // The patient rings: any time will do. Planned afresh, "x" would go last (it is on the
    // way home), hours later than the patient was told.
    p.visits[4].windows.clear();
    let fresh = plan(&p, &budget(), 1).unwrap();
    assert!(start_of(&fresh).0 - start_of(&first).0 > 3 * 3600);

    let events = [Event::ClinicianLate {
        at: Clock::hm(8, 30),
        clinician: "a".into(),
        minutes: 0,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let moved = start_of(&second).0 - start_of(&first).0;
    assert!(moved <= 3600, "x moved {moved} s later");
    assert_eq!(second.summary.moved_later_seconds, 0);
    assert!(second.summary.travel_seconds > fresh.summary.travel_seconds);
}

#[test]
fn a_clinician_gone_off_sick_keeps_only_what_they_had_begun_when_they_went() {
    // Ben goes off at 10:00; the coordinator re-plans at 11:05, when an urgent call comes in.
    // Whatever Ben had not begun by 10:00 is someone else's or left out, never his.
    let mut p = a_long_morning_for_three();
    let first = plan(&p, &budget(), 1).unwrap();
    let off = Clock::hm(10, 0);
    let events = [
        Event::ClinicianOffSick {
            at: off,
            clinician: "ben".into(),
        },
        urgent_call(north(2.5), 30),
    ];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let kept: Vec<&str> = second.rounds[1]
        .stops
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let begun: Vec<&str> = first.rounds[1]
        .stops
        .iter()
        .filter(|s| s.start < off)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(kept, begun);
    assert!(
        first.rounds[1]
            .stops
            .iter()
            .any(|s| s.start >= off && s.arrival.0 - s.travel_seconds < Clock::hm(11, 5).0),
        "the day has a stop Ben set off for between 10:00 and 11:05: {:#?}",
        first.rounds[1].stops
    );
    for s in first.rounds[1].stops.iter().filter(|s| s.start >= off) {
        moved_or_left_out(&second, &s.id);
    }
}

#[test]
fn a_delay_reported_between_stops_counts_from_the_report() {
    // Ana's first visit ends at 09:30; at 10:30 she is between stops and reports 45 minutes'
    // delay: her finished visit keeps its times and she is free at 11:15.
    let mut first_visit = visit("v1", BASE, 30);
    first_visit.windows = vec![window((9, 0), (9, 10))];
    let mut later = visit("v2", BASE, 30);
    later.windows = vec![window((11, 0), (12, 0))];
    let mut p = problem(vec![clinician("ana", &[])], vec![first_visit, later]);
    let first = plan(&p, &budget(), 1).unwrap();
    assert_eq!(first.rounds[0].stops[0].finish, Clock::hm(9, 30));
    let mut urgent = visit("urgent", BASE, 10);
    urgent.urgency = Urgency::Immediate;
    urgent.pinned_to = Some("ana".into());
    let events = [
        Event::ClinicianLate {
            at: Clock::hm(10, 30),
            clinician: "ana".into(),
            minutes: 45,
        },
        Event::UrgentVisit {
            at: Clock::hm(10, 30),
            visit: urgent,
        },
    ];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let stops = &second.rounds[0].stops;
    assert_eq!(
        (stops[0].id.as_str(), stops[0].finish),
        ("v1", Clock::hm(9, 30))
    );
    let urgent = stops.iter().find(|s| s.id == "urgent").unwrap();
    assert_eq!(urgent.start, Clock::hm(11, 15), "{stops:#?}");
}

#[test]
fn a_break_whose_window_has_closed_is_not_planned_late() {
    let mut ana = clinician("ana", &[]);
    ana.break_ = Some(doorstep_routing::Break {
        window: window((12, 0), (12, 30)),
        minutes: 30,
    });
    let mut p = problem(vec![ana], Vec::new());
    let first = plan(&p, &budget(), 1).unwrap();
    let mut urgent = visit("urgent", north(1.0), 20);
    urgent.urgency = Urgency::Immediate;
    let events = [Event::UrgentVisit {
        at: Clock::hm(14, 0),
        visit: urgent,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let stops = &second.rounds[0].stops;
    assert!(
        stops.iter().all(|s| s.kind != StopKind::Break),
        "{stops:#?}"
    );
    assert_eq!(second.summary.late_seconds, 0);
    assert!(stops[0].start <= Clock::hm(14, 5), "{stops:#?}");
}

#[test]
fn a_round_left_with_only_finished_work_still_drives_back() {
    let mut p = problem(
        vec![clinician("ana", &[])],
        vec![visit("v", north(5.0), 30)],
    );
    let first = plan(&p, &budget(), 1).unwrap();
    let round = &first.rounds[0];
    let home = round.back.0 - round.stops[0].finish.0;
    assert!(home > 0);
    let events = [Event::ClinicianLate {
        at: Clock::hm(9, 10),
        clinician: "ana".into(),
        minutes: 0,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let again = &second.rounds[0];
    assert!(again.stops[0].fixed);
    assert_eq!(again.back, round.back);
    assert_eq!(again.travel_seconds, round.travel_seconds);
    assert_eq!(second.summary.travel_seconds, first.summary.travel_seconds);
}

#[test]
fn a_clinician_added_since_the_plan_starts_from_now_not_their_shift_start() {
    let mut p = problem(
        vec![clinician("ana", &[])],
        vec![visit("v", north(1.0), 20)],
    );
    let first = plan(&p, &budget(), 1).unwrap();
    p.clinicians.push(clinician("bob", &["catheter-care"]));
    let mut urgent = visit("urgent", north(2.0), 20);
    urgent.urgency = Urgency::Immediate;
    urgent.skills = vec!["catheter-care".into()];
    let events = [
        Event::UrgentVisit {
            at: Clock::hm(14, 0),
            visit: urgent,
        },
        Event::ClinicianLate {
            at: Clock::hm(14, 0),
            clinician: "bob".into(),
            minutes: 30,
        },
    ];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let bob = &second.rounds[1];
    assert_eq!(bob.clinician, "bob");
    assert_eq!(bob.depart, Clock::hm(14, 30), "{bob:#?}");
    assert!(bob.stops[0].start > Clock::hm(14, 30), "{bob:#?}");
}

#[test]
fn a_pin_set_since_the_plan_moves_the_visit_to_that_clinician() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let (k, id) = first
        .rounds
        .iter()
        .enumerate()
        .find_map(|(k, r)| {
            r.stops
                .iter()
                .rev()
                .find(|s| s.start > Clock::hm(12, 0) && s.id != "v3")
                .map(|s| (k, s.id.clone()))
        })
        .expect("an afternoon visit");
    let other = p.clinicians[1 - k].id.clone();
    p.visits.iter_mut().find(|v| v.id == id).unwrap().pinned_to = Some(other.clone());
    let events = [Event::ClinicianLate {
        at: Clock::hm(9, 5),
        clinician: other.clone(),
        minutes: 0,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    assert!(
        second.rounds[1 - k].stops.iter().any(|s| s.id == id),
        "{id} not with {other}: {:#?}",
        second.rounds
    );
    assert!(second.rounds[k].stops.iter().all(|s| s.id != id));
}

#[test]
fn a_visit_whose_id_reads_like_a_residents_is_still_its_own_visit() {
    let mut late = visit("oaks/oaks-r1", north(1.0), 20);
    late.windows = vec![window((16, 0), (17, 0))];
    let mut p = problem(
        vec![clinician("phil", &["pharmacist"]), clinician("ana", &[])],
        vec![late],
    );
    p.care_homes
        .push(care_home("oaks", 2.0, window((9, 0), (12, 0)), 2, 20));
    let first = plan(&p, &budget(), 1).unwrap();
    let home = first.rounds[0]
        .stops
        .iter()
        .find(|s| s.id == "oaks")
        .expect("phil reviews at the oaks");
    assert!(home.residents.iter().any(|r| r == "oaks-r1"), "{home:?}");
    let events = [Event::ClinicianLate {
        at: Clock::hm(13, 0),
        clinician: "ana".into(),
        minutes: 0,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let stop = second
        .rounds
        .iter()
        .flat_map(|r| &r.stops)
        .find(|s| s.kind == StopKind::Visit && s.id == "oaks/oaks-r1")
        .expect("the visit is still planned");
    assert!(!stop.fixed);
}

#[test]
fn a_round_finished_before_the_replan_keeps_its_drive_back() {
    // Ana's only visit ends before ten and she drives back; a re-plan at 17:20 (for an urgent
    // call she has not the skill for) leaves her day as it was, with no overtime.
    let mut ana = clinician("ana", &[]);
    ana.max_overtime_minutes = 30;
    let mut p = problem(
        vec![ana, clinician("bob", &["catheter-care"])],
        vec![visit("v", north(5.0), 30)],
    );
    p.visits[0].pinned_to = Some("ana".into());
    let first = plan(&p, &budget(), 1).unwrap();
    let round = first.rounds[0].clone();
    assert!(round.back < Clock::hm(10, 30), "{round:#?}");
    let mut urgent = visit("urgent", north(1.0), 20);
    urgent.urgency = Urgency::Immediate;
    urgent.skills = vec!["catheter-care".into()];
    let events = [Event::UrgentVisit {
        at: Clock::hm(16, 0),
        visit: urgent,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let again = &second.rounds[0];
    assert_eq!(
        (again.back, again.travel_seconds, again.overtime_seconds),
        (round.back, round.travel_seconds, 0)
    );
    assert!(again.stops.iter().all(|s| s.fixed));
}

#[test]
fn a_care_home_sitting_cut_short_by_sickness_keeps_only_the_reviews_begun() {
    let mut p = problem(
        vec![
            clinician("phil", &["pharmacist"]),
            clinician("pam", &["pharmacist"]),
        ],
        Vec::new(),
    );
    p.care_homes
        .push(care_home("oaks", 1.0, window((9, 0), (17, 0)), 6, 20));
    let first = plan(&p, &budget(), 1).unwrap();
    let (k, sitting) = first
        .rounds
        .iter()
        .enumerate()
        .find_map(|(k, r)| {
            r.stops
                .iter()
                .find(|s| s.residents.len() >= 3)
                .map(|s| (k, s.clone()))
        })
        .expect("a sitting of three reviews or more");
    // Off sick ten minutes into the second review.
    let off = Clock(sitting.start.0 + 30 * 60);
    let events = [Event::ClinicianOffSick {
        at: off,
        clinician: first.rounds[k].clinician.clone(),
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let kept = &second.rounds[k].stops;
    let cut = kept.iter().find(|s| s.id == "oaks").unwrap();
    assert_eq!(cut.residents, sitting.residents[..2]);
    assert_eq!(cut.finish, Clock(sitting.start.0 + 40 * 60));
    for r in &sitting.residents[2..] {
        let elsewhere = second.rounds[1 - k]
            .stops
            .iter()
            .any(|s| s.residents.contains(r));
        let left = second
            .unplanned
            .iter()
            .any(|u| &u.id == r && u.care_home.as_deref() == Some("oaks"));
        assert!(elsewhere || left, "{r} lost");
    }
}

#[test]
fn delays_count_each_from_its_own_report_and_never_past_48_00() {
    // Ana's visit runs 09:00-10:30 at the practice. Thirty minutes' delay reported at 10:00
    // ends it at 11:00; fifteen more reported at 10:45, while it is still under way, end it
    // at 11:15 (not 10:45 plus both).
    let mut p = problem(
        vec![clinician("ana", &[])],
        vec![visit("long", BASE, 90), visit("next", BASE, 10)],
    );
    p.visits[0].windows = vec![window((9, 0), (9, 5))];
    p.visits[1].windows = vec![window((10, 30), (16, 0))];
    let first = plan(&p, &budget(), 1).unwrap();
    assert_eq!(first.rounds[0].stops[0].id, "long");
    let late = |at: Clock, minutes| Event::ClinicianLate {
        at,
        clinician: "ana".into(),
        minutes,
    };
    let events = [late(Clock::hm(10, 0), 30), late(Clock::hm(10, 45), 15)];
    let second = replan(&mut p.clone(), &first, &events, &budget(), 1).unwrap();
    assert_eq!(second.rounds[0].stops[0].finish, Clock::hm(11, 15));
    assert_eq!(second.rounds[0].stops[1].start, Clock::hm(11, 15));

    let events = [late(Clock::hm(10, 0), 1440), late(Clock::hm(10, 1), 1440)];
    let RoutingError::Invalid(e) = replan(&mut p, &first, &events, &budget(), 1).unwrap_err()
    else {
        panic!("not a validation error");
    };
    assert_eq!(e.field, "events[1].minutes");
}

#[test]
fn a_clinician_out_on_a_round_takes_work_on_their_way_back() {
    // Ana is at a visit 10 km north when a same-day visit 4 km north comes in; Bob is at the
    // practice. Ana drives back past it anyway, so it is hers: less travel in all.
    let mut far = visit("far", north(10.0), 60);
    far.pinned_to = Some("ana".into());
    let mut p = problem(
        vec![clinician("ana", &[]), clinician("bob", &[])],
        vec![far],
    );
    let first = plan(&p, &budget(), 1).unwrap();
    let at_far = first.rounds[0].stops[0].start;
    let mut on_the_way = visit("on-the-way", north(4.0), 20);
    on_the_way.urgency = Urgency::SameDay;
    let events = [Event::UrgentVisit {
        at: Clock(at_far.0 + 600),
        visit: on_the_way,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    assert!(
        second.rounds[0].stops.iter().any(|s| s.id == "on-the-way"),
        "{:#?}",
        second.rounds
    );
    assert!(second.rounds[1].stops.is_empty());
}

#[test]
fn a_stop_put_later_by_a_delay_shows_the_lateness_it_now_has() {
    let mut v = visit("v", BASE, 20);
    v.windows = vec![window((10, 20), (10, 30))];
    let mut p = problem(vec![clinician("ana", &[])], vec![v]);
    let first = plan(&p, &budget(), 1).unwrap();
    assert_eq!(first.rounds[0].stops[0].start, Clock::hm(10, 20));
    let late = |at, minutes| Event::ClinicianLate {
        at,
        clinician: "ana".into(),
        minutes,
    };
    let events = [late(Clock::hm(9, 0), 15), late(Clock::hm(10, 45), 0)];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let stop = &second.rounds[0].stops[0];
    assert_eq!((stop.start, stop.late_seconds), (Clock::hm(10, 35), 300));
    assert_eq!(stop.waiting_seconds, stop.start.0 - stop.arrival.0);
    assert_eq!(second.summary.late_seconds, 300);
}

#[test]
fn a_sitting_put_later_by_a_delay_is_cut_where_the_delay_put_it() {
    // Four 15-minute reviews from 10:00; thirty minutes' delay reported at 10:20, in the
    // second; off sick at 10:40. The second runs to 11:00 and the third would only start
    // then: two reviews are done, the other two planned again.
    let mut p = problem(vec![clinician("phil", &["pharmacist"])], Vec::new());
    p.care_homes
        .push(care_home("oaks", 1.0, window((10, 0), (17, 0)), 4, 15));
    let first = plan(&p, &budget(), 1).unwrap();
    let sitting = first.rounds[0]
        .stops
        .iter()
        .find(|s| s.id == "oaks")
        .unwrap();
    assert_eq!(
        (sitting.start, sitting.residents.len()),
        (Clock::hm(10, 0), 4)
    );
    let events = [
        Event::ClinicianLate {
            at: Clock::hm(10, 20),
            clinician: "phil".into(),
            minutes: 30,
        },
        Event::ClinicianOffSick {
            at: Clock::hm(10, 40),
            clinician: "phil".into(),
        },
    ];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let cut = second.rounds[0]
        .stops
        .iter()
        .find(|s| s.id == "oaks")
        .unwrap();
    assert_eq!(cut.residents, sitting.residents[..2]);
    assert_eq!(cut.finish, Clock::hm(11, 0));
    assert_eq!(second.unplanned.len(), 2, "{:#?}", second.unplanned);
}

#[test]
fn a_second_replan_leaves_a_finished_round_as_the_first_showed_it() {
    // Ana's second patient is not at home; she drives back from there. Re-planned twice
    // more, her round shows the same return, travel and overtime each time.
    let mut p = problem(
        vec![clinician("ana", &[]), clinician("bob", &[])],
        vec![visit("a", north(2.0), 30), visit("b", north(4.0), 30)],
    );
    for v in &mut p.visits {
        v.pinned_to = Some("ana".into());
    }
    let first = plan(&p, &budget(), 1).unwrap();
    let b = first.rounds[0].stops.last().unwrap().clone();
    let absent = [Event::PatientNotAtHome {
        at: Clock(b.arrival.0 + 300),
        visit: b.id.clone(),
    }];
    let second = replan(&mut p, &first, &absent, &budget(), 1).unwrap();
    let shown = |plan: &Plan| {
        let r = &plan.rounds[0];
        (r.back, r.travel_seconds, r.overtime_seconds)
    };
    let later = bobs_call(Clock::hm(15, 0));
    let third = replan(&mut p, &second, &later, &budget(), 1).unwrap();
    assert_eq!(shown(&third), shown(&second));
}

#[test]
fn a_clinician_gone_off_sick_is_not_charged_overtime_by_a_later_replan() {
    let mut p = anas_visit_with_bob_free(visit("a", north(3.0), 60));
    let first = plan(&p, &budget(), 1).unwrap();
    let a = first.rounds[0].stops[0].clone();
    let sick = [Event::ClinicianOffSick {
        at: Clock(a.finish.0 - 300),
        clinician: "ana".into(),
    }];
    let second = replan(&mut p, &first, &sick, &budget(), 1).unwrap();
    let later = bobs_call(Clock::hm(15, 0));
    let third = replan(&mut p, &second, &later, &budget(), 1).unwrap();
    for plan in [&second, &third] {
        assert_eq!(plan.rounds[0].overtime_seconds, 0);
        assert_eq!(plan.rounds[0].back, a.finish);
    }
}

#[test]
fn a_stop_under_way_that_a_delay_pushes_past_its_window_is_late_for_it() {
    // One visit 20 km north. Planned with no windows, ana arrives at A; given
    // a window closing ten minutes after A and the next opening an hour after
    // it, she is ten minutes short of the door when she reports twenty
    // minutes' delay.
    // She gets there ten minutes after the first window closed: late by ten,
    // although the next window has not opened.
    let ana = clinician("ana", &["paramedic"]);
    let alone = problem(vec![ana.clone()], vec![visit("far", north(20.0), 30)]);
    let arrival = plan(&alone, &budget(), 1).unwrap().rounds[0].stops[0].arrival;
    let mut far = visit("far", north(20.0), 30);
    far.windows = vec![
        Window {
            start: Clock::hm(9, 0),
            end: Clock(arrival.0 + 600),
        },
        Window {
            start: Clock(arrival.0 + 3600),
            end: Clock::hm(17, 0),
        },
    ];
    let mut p = problem(vec![ana], vec![far]);
    let first = plan(&p, &budget(), 1).unwrap();
    assert_eq!(first.rounds[0].stops[0].arrival, arrival);
    let events = [Event::ClinicianLate {
        at: Clock(arrival.0 - 600),
        clinician: "ana".into(),
        minutes: 20,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let kept = &second.rounds[0].stops[0];
    assert!(kept.fixed);
    assert_eq!(kept.start.0, arrival.0 + 20 * 60);
    assert_eq!(kept.late_seconds, 10 * 60);
    assert_eq!(second.summary.late_seconds, 10 * 60);
}

#[test]
fn a_visit_a_delay_leaves_no_room_for_is_blamed_on_the_delay_not_the_shift() {
    // ana's shift covers v2's window; after her first visit runs an hour
    // over, she is busy through it. That is no room in its window, not a
    // window outside every shift.
    let ana = clinician("ana", &["paramedic"]);
    let mut v1 = visit("v1", north(2.0), 60);
    v1.windows = vec![window((9, 0), (9, 30))];
    v1.urgency = Urgency::SameDay;
    let mut v2 = visit("v2", north(2.5), 20);
    v2.windows = vec![window((10, 15), (10, 45))];
    let mut p = problem(vec![ana], vec![v1, v2]);
    let first = plan(&p, &budget(), 1).unwrap();
    assert_eq!(first.rounds[0].stops.len(), 2, "{first:#?}");
    let events = [Event::ClinicianLate {
        at: Clock::hm(9, 30),
        clinician: "ana".into(),
        minutes: 60,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let left = second.unplanned.iter().find(|u| u.id == "v2").unwrap();
    assert_eq!(left.reason, Reason::NoRoomInWindow, "{second:#?}");
}

#[test]
fn the_drive_to_a_door_nobody_answered_stays_in_the_days_travel() {
    // Ana drives to a, nobody answers, she goes on to b: she drove the same road the first
    // plan had, and every later re-plan still counts it.
    let mut p = problem(
        vec![clinician("ana", &[]), clinician("bob", &[])],
        vec![visit("a", north(2.0), 30), visit("b", north(4.0), 30)],
    );
    for v in &mut p.visits {
        v.pinned_to = Some("ana".into());
    }
    let first = plan(&p, &budget(), 1).unwrap();
    let a = first.rounds[0].stops[0].clone();
    assert_eq!(a.id, "a");
    let absent = [Event::PatientNotAtHome {
        at: Clock(a.arrival.0 + 300),
        visit: "a".into(),
    }];
    let second = replan(&mut p, &first, &absent, &budget(), 1).unwrap();
    let round = &second.rounds[0];
    assert_eq!(round.unlisted_travel_seconds, a.travel_seconds);
    assert_eq!(round.travel_seconds, first.rounds[0].travel_seconds);
    assert_eq!(second.summary.travel_seconds, first.summary.travel_seconds);
    let later = bobs_call(Clock::hm(15, 0));
    let third = replan(&mut p, &second, &later, &budget(), 1).unwrap();
    let shown = |plan: &Plan| {
        let r = &plan.rounds[0];
        (r.back, r.travel_seconds, r.unlisted_travel_seconds)
    };
    assert_eq!(shown(&third), shown(&second));
}

#[test]
fn a_clinician_whose_only_patient_was_not_at_home_drives_back_from_the_door() {
    // Ana's one visit is 5 km out; nobody answers. Her round has no stop left to show, but
    // she drove there and drives back: both are in her travel, and she is back when that
    // drive ends.
    let mut p = problem(
        vec![clinician("ana", &[])],
        vec![visit("v", north(5.0), 30)],
    );
    let first = plan(&p, &budget(), 1).unwrap();
    let v = first.rounds[0].stops[0].clone();
    let (second, left) = nobody_answers_the_one_visit(&mut p, &first);
    let round = &second.rounds[0];
    assert!(round.stops.is_empty(), "{round:#?}");
    assert_eq!(round.travel_seconds, first.rounds[0].travel_seconds);
    assert_eq!(round.depart, left);
    assert_eq!(round.back.0, left.0 + (first.rounds[0].back.0 - v.finish.0));
    // Later, back at the practice: the next re-plan shows the same round.
    p.clinicians.push(clinician("bob", &[]));
    let later = bobs_call(Clock::hm(16, 0));
    let third = replan(&mut p, &second, &later, &budget(), 1).unwrap();
    let shown = |r: &Round| {
        (
            r.depart,
            r.back,
            r.travel_seconds,
            r.unlisted_travel_seconds,
            r.overtime_seconds,
        )
    };
    assert_eq!(shown(&third.rounds[0]), shown(round));
}

#[test]
fn the_drive_to_a_door_a_clinician_waits_at_stays_in_the_days_travel() {
    // Ana waits at w for its 13:00 window when Bob reports a delay: w is planned again from
    // where she stands, with no travel of its own, and the drive there is still hers.
    let mut w = visit("w", north(2.0), 30);
    w.windows = vec![window((13, 0), (14, 0))];
    w.pinned_to = Some("ana".into());
    let mut p = problem(vec![clinician("ana", &[]), clinician("bob", &[])], vec![w]);
    let first = plan(&p, &budget(), 1).unwrap();
    let waiting = first.rounds[0].stops[0].clone();
    let now = Clock::hm(11, 5);
    assert!(waiting.arrival <= now && now < waiting.start, "{waiting:?}");
    let events = [Event::ClinicianLate {
        at: now,
        clinician: "bob".into(),
        minutes: 10,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let round = &second.rounds[0];
    assert_eq!(round.stops[0].travel_seconds, 0, "{round:#?}");
    assert_eq!(round.unlisted_travel_seconds, waiting.travel_seconds);
    assert_eq!(round.travel_seconds, first.rounds[0].travel_seconds);
}

#[test]
fn the_drive_back_before_a_clinician_is_sent_out_again_stays_in_the_days_travel() {
    // Ana is back at the practice by half past ten; an urgent call at 11:00 sends her out
    // again, and a re-plan while she drives to it keeps both drives in her travel.
    let mut p = problem(
        vec![clinician("ana", &[]), clinician("bob", &["catheter-care"])],
        vec![visit("v", north(5.0), 30)],
    );
    p.visits[0].pinned_to = Some("ana".into());
    let first = plan(&p, &budget(), 1).unwrap();
    let done = first.rounds[0].clone();
    assert!(done.back < Clock::hm(10, 30), "{done:#?}");
    let drive_back = done.travel_seconds - done.stops[0].travel_seconds;
    let mut urgent = visit("urgent", north(3.0), 20);
    urgent.urgency = Urgency::Immediate;
    urgent.pinned_to = Some("ana".into());
    let call = [Event::UrgentVisit {
        at: Clock::hm(11, 0),
        visit: urgent,
    }];
    let second = replan(&mut p, &first, &call, &budget(), 1).unwrap();
    let out = second.rounds[0].clone();
    assert_eq!(out.stops.len(), 2, "{out:#?}");
    assert_eq!(out.unlisted_travel_seconds, drive_back);
    let driving = [Event::ClinicianLate {
        at: Clock(out.stops[1].arrival.0 - 60),
        clinician: "bob".into(),
        minutes: 10,
    }];
    let third = replan(&mut p, &second, &driving, &budget(), 1).unwrap();
    let again = &third.rounds[0];
    assert!(again.stops.iter().all(|s| s.fixed), "{again:#?}");
    assert_eq!(
        (
            again.travel_seconds,
            again.unlisted_travel_seconds,
            again.back
        ),
        (out.travel_seconds, out.unlisted_travel_seconds, out.back)
    );
}

#[test]
fn an_urgent_call_after_every_shift_has_ended_reads_nobody_working() {
    // At 17:30 Ana's day (to 17:00, no overtime) is over: the call is left out, urgent,
    // with nobody working, and her finished round stays as it was.
    let mut p = problem(
        vec![clinician("ana", &[])],
        vec![visit("v", north(2.0), 30)],
    );
    let first = plan(&p, &budget(), 1).unwrap();
    let mut urgent = visit("evening", north(1.0), 20);
    urgent.urgency = Urgency::Immediate;
    urgent.windows = vec![window((17, 30), (19, 30))];
    let events = [Event::UrgentVisit {
        at: Clock::hm(17, 30),
        visit: urgent,
    }];
    let second = replan(&mut p, &first, &events, &budget(), 1).unwrap();
    let u = second.unplanned.iter().find(|u| u.id == "evening").unwrap();
    assert_eq!(u.reason, Reason::NoClinicianWorking);
    assert_eq!(second.summary.unserved_urgent, 1);
    assert_eq!(second.rounds[0].back, first.rounds[0].back);
}

#[test]
fn a_clinician_sent_out_from_base_and_then_delayed_is_still_at_base() {
    // Ana is back at the practice by half past ten; an urgent call at 11:00 sends her out
    // again, and at 11:02, before she leaves, she reports ten minutes' delay. She goes from
    // the practice, not from the visit she finished hours ago, and her travel is what she
    // drives.
    let mut p = problem(
        vec![clinician("ana", &[]), clinician("bob", &["catheter-care"])],
        vec![visit("v", north(5.0), 30)],
    );
    p.visits[0].pinned_to = Some("ana".into());
    let first = plan(&p, &budget(), 1).unwrap();
    let mut urgent = visit("urgent", north(3.0), 20);
    urgent.urgency = Urgency::Immediate;
    urgent.pinned_to = Some("ana".into());
    let call = [Event::UrgentVisit {
        at: Clock::hm(11, 0),
        visit: urgent,
    }];
    let second = replan(&mut p, &first, &call, &budget(), 1).unwrap();
    let out = second.rounds[0].clone();
    let delayed = [Event::ClinicianLate {
        at: Clock::hm(11, 2),
        clinician: "ana".into(),
        minutes: 10,
    }];
    let third = replan(&mut p, &second, &delayed, &budget(), 1).unwrap();
    let again = &third.rounds[0];
    assert!(!again.stops[1].fixed, "{again:#?}");
    assert_eq!(again.stops[1].travel_seconds, out.stops[1].travel_seconds);
    assert_eq!(again.travel_seconds, out.travel_seconds);
    // Free at the report plus the delay, from the practice.
    assert_eq!(
        again.stops[1].arrival.0,
        Clock::hm(11, 12).0 + again.stops[1].travel_seconds
    );
}

#[test]
fn a_clinician_with_no_stop_left_who_reports_a_delay_is_back_that_much_later() {
    let mut p = problem(
        vec![clinician("ana", &[])],
        vec![visit("v", north(5.0), 30)],
    );
    let first = plan(&p, &budget(), 1).unwrap();
    let (second, left) = nobody_answers_the_one_visit(&mut p, &first);
    let delayed = [Event::ClinicianLate {
        at: Clock(left.0 + 60),
        clinician: "ana".into(),
        minutes: 10,
    }];
    let third = replan(&mut p, &second, &delayed, &budget(), 1).unwrap();
    let round = &third.rounds[0];
    assert_eq!(round.travel_seconds, first.rounds[0].travel_seconds);
    assert_eq!(round.back.0, second.rounds[0].back.0 + 600);
}

#[test]
fn a_clinician_who_goes_off_sick_after_driving_back_keeps_that_drive() {
    let (mut p, first, done) = anas_visit_done_by_half_past_ten();
    let sick = [Event::ClinicianOffSick {
        at: Clock::hm(11, 0),
        clinician: "ana".into(),
    }];
    let second = replan(&mut p, &first, &sick, &budget(), 1).unwrap();
    let round = &second.rounds[0];
    assert_eq!(
        (round.back, round.travel_seconds, round.overtime_seconds),
        (done.back, done.travel_seconds, 0)
    );
}

#[test]
fn a_clinician_out_at_a_door_with_only_a_break_left_takes_it_before_driving_back() {
    // Nobody answers Ana's door at 11:50; her break (12:00-13:00, half an hour) is still due.
    // The plan shows it, and her drive back after it, as the search priced them.
    let mut ana = clinician("ana", &[]);
    ana.break_ = Some(doorstep_routing::Break {
        window: window((12, 0), (13, 0)),
        minutes: 30,
    });
    let mut v = visit("v", north(5.0), 30);
    v.windows = vec![window((11, 30), (12, 0))];
    let mut p = problem(vec![ana], vec![v]);
    let first = plan(&p, &budget(), 1).unwrap();
    let v = first.rounds[0]
        .stops
        .iter()
        .find(|s| s.id == "v")
        .unwrap()
        .clone();
    let absent = [Event::PatientNotAtHome {
        at: Clock(v.arrival.0 + 60),
        visit: "v".into(),
    }];
    let second = replan(&mut p, &first, &absent, &budget(), 1).unwrap();
    let round = &second.rounds[0];
    let kinds: Vec<StopKind> = round.stops.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [StopKind::Break], "{round:#?}");
    let drive_back = first.rounds[0].travel_seconds - v.travel_seconds;
    assert_eq!(round.back.0, round.stops[0].finish.0 + drive_back);
    assert_eq!(round.travel_seconds, first.rounds[0].travel_seconds);
}

#[test]
fn a_patient_not_at_home_at_a_stop_fixed_by_the_plan_before_frees_the_clinician_at_the_door() {
    // At 10:50 (plan 2) Ana is on her way to x, so x is fixed. At x nobody answers: plan 3
    // has her free at x's door when she leaves it, not when x would have ended.
    let mut p = anas_visit_with_bob_free(visit("x", north(5.0), 60));
    let first = plan(&p, &budget(), 1).unwrap();
    let x = first.rounds[0].stops[0].clone();
    let on_the_way = Clock(x.arrival.0 - 60);
    let call = bobs_call(on_the_way);
    let second = replan(&mut p, &first, &call, &budget(), 1).unwrap();
    assert!(second.rounds[0].stops[0].fixed);
    let left = Clock(x.arrival.0 + 300);
    let absent = [Event::PatientNotAtHome {
        at: left,
        visit: "x".into(),
    }];
    let third = replan(&mut p, &second, &absent, &budget(), 1).unwrap();
    let round = &third.rounds[0];
    let drive_back = first.rounds[0].back.0 - x.finish.0;
    assert_eq!(round.back.0, left.0 + drive_back, "{round:#?}");
    assert_eq!(round.travel_seconds, first.rounds[0].travel_seconds);
}

#[test]
fn a_clinician_back_at_base_who_reports_a_delay_keeps_the_drive_back() {
    let mut p = anas_visit_with_bob_free(visit("v", north(5.0), 30));
    let first = plan(&p, &budget(), 1).unwrap();
    let done = first.rounds[0].clone();
    let call = bobs_call(Clock::hm(11, 0));
    let second = replan(&mut p, &first, &call, &budget(), 1).unwrap();
    assert_eq!(second.rounds[0].travel_seconds, done.travel_seconds);
    let delayed = [Event::ClinicianLate {
        at: Clock::hm(11, 30),
        clinician: "ana".into(),
        minutes: 10,
    }];
    let third = replan(&mut p, &second, &delayed, &budget(), 1).unwrap();
    let round = &third.rounds[0];
    assert_eq!(
        (round.back, round.travel_seconds, round.overtime_seconds),
        (done.back, done.travel_seconds, 0),
        "{round:#?}"
    );
}

#[test]
fn a_previous_plan_whose_free_from_is_no_time_or_place_is_refused_naming_it() {
    let mut p = problem(
        vec![clinician("ana", &[])],
        vec![visit("v", north(5.0), 30)],
    );
    let first = plan(&p, &budget(), 1).unwrap();
    let v = first.rounds[0].stops[0].clone();
    let absent = [Event::PatientNotAtHome {
        at: Clock(v.arrival.0 + 60),
        visit: "v".into(),
    }];
    let second = replan(&mut p, &first, &absent, &budget(), 1).unwrap();
    let later = [Event::ClinicianLate {
        at: Clock::hm(16, 0),
        clinician: "ana".into(),
        minutes: 0,
    }];
    let field = |edit: &dyn Fn(&mut doorstep_routing::FreeFrom)| {
        let mut edited = second.clone();
        edit(edited.rounds[0].free_from.as_mut().expect("free_from"));
        let before = p.clone();
        match replan(&mut p.clone(), &edited, &later, &budget(), 1) {
            Err(RoutingError::Invalid(e)) => {
                assert_eq!(p, before);
                e.field
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        field(&|f| f.at = Clock::hm(47, 59)),
        "previous.rounds[0].free_from.at"
    );
    assert_eq!(
        field(&|f| f.location.lat = 91.0),
        "previous.rounds[0].free_from.location"
    );
}

#[test]
fn a_delay_that_would_bring_a_clinician_back_from_a_door_past_48_00_is_refused() {
    // A night shift's last visit, 5 km out: nobody answers at half past 46:00, and she
    // drives back. A delay then reported that would have her back at 48:00 cannot be shown.
    let (mut p, first) = anas_night_visit(window((46, 0), (46, 30)));
    let v = first.rounds[0].stops[0].clone();
    let absent = [Event::PatientNotAtHome {
        at: Clock(v.arrival.0 + 60),
        visit: "v".into(),
    }];
    let second = replan(&mut p, &first, &absent, &budget(), 1).unwrap();
    let back = second.rounds[0].back;
    let to_48 = (Clock::hm(47, 59).0 + 60 - back.0) / 60;
    let late = [Event::ClinicianLate {
        at: Clock(back.0 - 60),
        clinician: "ana".into(),
        minutes: to_48,
    }];
    let before = p.clone();
    match replan(&mut p, &second, &late, &budget(), 1) {
        Err(RoutingError::Invalid(e)) => assert_eq!(e.field, "events[0].minutes"),
        other => panic!("{other:?}"),
    }
    assert_eq!(p, before);
}

#[test]
fn a_delay_during_the_last_stop_is_counted_once_by_later_replans() {
    // Ana reports twenty minutes' delay during her only visit; the plan then has her back
    // twenty minutes later. A later re-plan, for someone else, shows the same return.
    let mut p = anas_visit_with_bob_free(visit("v", north(5.0), 30));
    let first = plan(&p, &budget(), 1).unwrap();
    let v = first.rounds[0].stops[0].clone();
    let late = [Event::ClinicianLate {
        at: Clock(v.start.0 + 600),
        clinician: "ana".into(),
        minutes: 20,
    }];
    let second = replan(&mut p, &first, &late, &budget(), 1).unwrap();
    assert_eq!(second.rounds[0].back.0, first.rounds[0].back.0 + 1200);
    let call = bobs_call(Clock::hm(15, 0));
    let third = replan(&mut p, &second, &call, &budget(), 1).unwrap();
    let shown = |r: &Round| (r.back, r.travel_seconds, r.overtime_seconds);
    assert_eq!(shown(&third.rounds[0]), shown(&second.rounds[0]));
}

#[test]
fn a_previous_plan_or_an_event_with_a_field_this_build_does_not_know_is_refused() {
    // A tool that writes `"Fixed": true` must not have a stop under way taken as free to
    // move, nor an event's misspelt field be dropped unread.
    let p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let mut json = serde_json::to_value(&first).unwrap();
    assert_eq!(serde_json::from_value::<Plan>(json.clone()).unwrap(), first);
    json["rounds"][0]["stops"][0]["Fixed"] = true.into();
    let error = serde_json::from_value::<Plan>(json).unwrap_err();
    assert!(error.to_string().contains("Fixed"), "{error}");
    let event = serde_json::json!({
        "kind": "clinician-late", "at": "10:00", "clinician": "ana", "minutes": 5,
        "reported_by": "ana"
    });
    assert!(serde_json::from_value::<Event>(event).is_err());
    let event = serde_json::json!({
        "kind": "clinician-late", "at": "10:00", "clinician": "ana", "minutes": 5
    });
    assert!(serde_json::from_value::<Event>(event).is_ok());
}

#[test]
fn a_delay_on_the_way_back_late_at_night_is_taken_while_the_return_is_before_48_00() {
    let (mut p, first) = anas_night_visit(window((45, 30), (46, 0)));
    let back = first.rounds[0].back;
    let drive = back.0 - first.rounds[0].stops[0].finish.0;
    assert!(drive > 600, "{drive}");
    // Reported five minutes before she is back; back five minutes before 48:00.
    let minutes = (Clock::hm(47, 55).0 - back.0) / 60;
    let late = [Event::ClinicianLate {
        at: Clock(back.0 - 300),
        clinician: "ana".into(),
        minutes,
    }];
    let second = replan(&mut p, &first, &late, &budget(), 1).unwrap();
    assert_eq!(second.rounds[0].back, Clock::hm(47, 55));
}

#[test]
fn a_delay_that_keeps_a_clinician_at_an_unanswered_door_past_48_00_is_refused() {
    // Nobody answers Ana's last door; in the same re-plan she reports a delay that leaves
    // her free there only after 48:00 less the drive back.
    let (mut p, first) = anas_night_visit(window((45, 30), (46, 0)));
    let v = first.rounds[0].stops[0].clone();
    let drive = first.rounds[0].back.0 - v.finish.0;
    let reported = Clock(first.rounds[0].back.0 + 60);
    let minutes = (Clock::hm(47, 59).0 + 60 - reported.0 - drive) / 60 + 1;
    let events = [
        Event::PatientNotAtHome {
            at: Clock(v.arrival.0 + 60),
            visit: "v".into(),
        },
        Event::ClinicianLate {
            at: reported,
            clinician: "ana".into(),
            minutes,
        },
    ];
    let before = p.clone();
    match replan(&mut p, &first, &events, &budget(), 1) {
        Err(RoutingError::Invalid(e)) => assert_eq!(e.field, "events[1].minutes"),
        other => panic!("{other:?}"),
    }
    assert_eq!(p, before);
}

#[test]
fn a_clinician_who_goes_off_sick_before_reaching_a_door_nobody_answers_ends_the_day_then() {
    // A carer phones while Ana drives to her one visit: nobody will be in, and the plan has
    // her free at that door when she gets there. She goes off sick before she does: her day
    // ends when she goes, not when she would have reached the door.
    let (mut p, first) = anas_night_visit(window((40, 0), (47, 0)));
    let v = first.rounds[0].stops[0].clone();
    let phoned = Clock(v.arrival.0 - v.travel_seconds + 60);
    let not_home = [Event::PatientNotAtHome {
        at: phoned,
        visit: "v".into(),
    }];
    let second = replan(&mut p, &first, &not_home, &budget(), 1).unwrap();
    assert_eq!(second.rounds[0].free_from.unwrap().at, v.arrival);
    let off = Clock(phoned.0 + 60);
    let sick = [Event::ClinicianOffSick {
        at: off,
        clinician: "ana".into(),
    }];
    let third = replan(&mut p, &second, &sick, &budget(), 1).unwrap();
    let round = &third.rounds[0];
    assert_eq!((round.depart, round.back), (off, off), "{round:#?}");
}

#[test]
fn a_clinician_who_goes_off_sick_driving_out_again_ends_the_day_back_at_base() {
    // Ana is back at the practice by half past ten; an urgent call at 11:00 sends her out
    // again, and she goes off sick on the way. Her round ends where the plan before had her
    // free, at the practice at 11:00, with the drive back in her travel (before, it ended
    // with her visit, hours before that drive); the drive towards the call reached no door
    // and is not counted, as with anyone who goes off sick on the road.
    let (mut p, first, done) = anas_visit_done_by_half_past_ten();
    let mut urgent = visit("urgent", north(3.0), 20);
    urgent.urgency = Urgency::Immediate;
    let call = [Event::UrgentVisit {
        at: Clock::hm(11, 0),
        visit: urgent,
    }];
    let second = replan(&mut p, &first, &call, &budget(), 1).unwrap();
    let out = second.rounds[0].clone();
    assert_eq!(out.stops.len(), 2, "{out:#?}");
    let free = out.free_from.unwrap();
    assert_eq!(free.at, Clock::hm(11, 0));
    let sick = [Event::ClinicianOffSick {
        at: Clock(out.stops[1].arrival.0 - 60),
        clinician: "ana".into(),
    }];
    let third = replan(&mut p, &second, &sick, &budget(), 1).unwrap();
    let round = &third.rounds[0];
    assert_eq!(round.stops.len(), 1, "{round:#?}");
    let shown = (round.back, round.travel_seconds, round.overtime_seconds);
    assert_eq!(shown, (free.at, done.travel_seconds, 0), "{round:#?}");
    // Bob takes the call, and a later re-plan reads Ana's day as this one showed it.
    assert!(third.rounds[1].stops.iter().any(|s| s.id == "urgent"));
    let fourth = replan(&mut p, &third, &bobs_call(Clock::hm(12, 0)), &budget(), 1).unwrap();
    let again = &fourth.rounds[0];
    assert_eq!(
        (again.back, again.travel_seconds, again.overtime_seconds),
        shown
    );
}
