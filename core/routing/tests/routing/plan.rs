//! `plan`: rounds are consistent, and every kind of reason for leaving a visit out is true.

use std::time::Duration;

use doorstep_routing::{
    Break, Budget, Clock, Location, Plan, Problem, Reason, StopKind, Urgency, Visit, plan,
    plan::weights,
};

use crate::fixtures::*;

fn reason_of<'a>(plan: &'a Plan, id: &str) -> &'a Reason {
    &plan
        .unplanned
        .iter()
        .find(|u| u.id == id)
        .unwrap_or_else(|| panic!("{id} should be unplanned: {plan:#?}"))
        .reason
}

fn planned(plan: &Plan, id: &str) -> bool {
    plan.rounds
        .iter()
        .flat_map(|r| &r.stops)
        .any(|s| s.id == id || s.residents.iter().any(|r| r == id))
}

#[test]
fn every_visit_is_planned_once_with_consistent_times() {
    let p = morning();
    let out = plan(&p, &budget(), 7).unwrap();
    assert!(out.unplanned.is_empty(), "{:#?}", out.unplanned);
    for v in &p.visits {
        let n = out
            .rounds
            .iter()
            .flat_map(|r| &r.stops)
            .filter(|s| s.id == v.id)
            .count();
        assert_eq!(n, 1, "{} planned {n} times", v.id);
    }
    for round in &out.rounds {
        let mut t = round.depart;
        for s in &round.stops {
            assert!(s.arrival >= t, "arrival before leaving the previous stop");
            assert_eq!(s.start.0 - s.arrival.0, s.waiting_seconds);
            assert!(s.finish > s.start);
            t = s.finish;
        }
        assert!(round.back >= t);
    }
    let prescriber = out
        .rounds
        .iter()
        .find(|r| r.stops.iter().any(|s| s.id == "v3"))
        .unwrap();
    assert_eq!(prescriber.clinician, "ana");
    assert_eq!(out.summary.late_seconds, 0);
}

#[test]
fn same_seed_and_iterations_give_the_same_plan() {
    let p = morning();
    assert_eq!(
        plan(&p, &budget(), 3).unwrap(),
        plan(&p, &budget(), 3).unwrap()
    );
}

#[test]
fn a_visit_needing_a_skill_nobody_has_says_which_skill() {
    let mut p = morning();
    p.visits[0].skills = vec!["catheter-care".into()];
    let out = plan(&p, &budget(), 1).unwrap();
    assert_eq!(
        reason_of(&out, "v0"),
        &Reason::NoSkilledClinician {
            missing: vec!["catheter-care".into()]
        }
    );
}

#[test]
fn with_nobody_working_every_visit_says_so() {
    let mut p = morning();
    for c in &mut p.clinicians {
        c.off_from = Some(c.shift.start);
    }
    let out = plan(&p, &budget(), 1).unwrap();
    assert_eq!(out.unplanned.len(), p.visits.len());
    assert!(
        out.unplanned
            .iter()
            .all(|u| u.reason == Reason::NoClinicianWorking)
    );
    p.clinicians.clear();
    let out = plan(&p, &budget(), 1).unwrap();
    assert_eq!(reason_of(&out, "v3"), &Reason::NoClinicianWorking);
}

#[test]
fn a_visit_pinned_to_an_absent_clinician_names_them() {
    let mut p = morning();
    p.clinicians[1].off_from = Some(p.clinicians[1].shift.start);
    p.visits[2].pinned_to = Some("ben".into());
    let out = plan(&p, &budget(), 1).unwrap();
    assert_eq!(
        reason_of(&out, "v2"),
        &Reason::PinnedClinicianUnavailable {
            clinician: "ben".into()
        }
    );
}

#[test]
fn a_visit_pinned_to_a_clinician_without_its_skill_names_them_and_the_skill() {
    let mut p = morning();
    p.clinicians[1].skills.push("catheter-care".into());
    p.visits[2].skills = vec!["paramedic".into(), "catheter-care".into()];
    p.visits[2].pinned_to = Some(p.clinicians[0].id.clone());
    let out = plan(&p, &budget(), 1).unwrap();
    assert_eq!(
        reason_of(&out, "v2"),
        &Reason::PinnedClinicianLacksSkills {
            clinician: p.clinicians[0].id.clone(),
            missing: vec!["catheter-care".into()],
        }
    );
}

#[test]
fn a_visit_after_every_shift_is_outside_every_shift() {
    let mut p = morning();
    p.visits[4].windows = vec![window((20, 0), (21, 0))];
    let out = plan(&p, &budget(), 1).unwrap();
    assert_eq!(reason_of(&out, "v4"), &Reason::OutsideEveryShift);
}

/// Ana works 09:00-10:00 with no overtime; an immediate visit 10 km north takes half an hour,
/// and the drive there and back nearly another hour.
fn too_far_for_the_shift() -> doorstep_routing::Problem {
    let mut ana = clinician("ana", &[]);
    ana.shift = window((9, 0), (10, 0));
    let mut u = visit("u", north(10.0), 30);
    u.urgency = Urgency::Immediate;
    problem(vec![ana], vec![u])
}

#[test]
fn an_immediate_visit_never_keeps_a_clinician_past_their_overtime() {
    let out = plan(&too_far_for_the_shift(), &budget(), 1).unwrap();
    assert_eq!(reason_of(&out, "u"), &Reason::OutsideEveryShift);
    assert_eq!(out.summary.unserved_urgent, 1);
    assert!(out.rounds[0].stops.is_empty());
    // Allowed an hour's overtime, she does it.
    let mut p = too_far_for_the_shift();
    p.clinicians[0].max_overtime_minutes = 60;
    let out = plan(&p, &budget(), 1).unwrap();
    assert!(planned(&out, "u"));
    assert!(out.rounds[0].back <= Clock::hm(11, 0));
}

#[test]
fn a_clinician_going_off_is_given_no_work_after_and_no_break_they_cannot_take() {
    // Ben goes off at 11:00, before his break window opens; the immediate visit could only
    // be done after 11:00.
    let mut ben = clinician("ben", &[]);
    ben.off_from = Some(Clock::hm(11, 0));
    ben.break_ = Some(doorstep_routing::Break {
        window: window((12, 0), (13, 0)),
        minutes: 30,
    });
    let mut early = visit("early", north(1.0), 30);
    early.windows = vec![window((9, 0), (10, 0))];
    let mut late = visit("late", north(1.0), 30);
    late.urgency = Urgency::Immediate;
    late.windows = vec![window((10, 50), (11, 30))];
    let out = plan(&problem(vec![ben], vec![early, late]), &budget(), 1).unwrap();
    let round = &out.rounds[0];
    assert!(planned(&out, "early"));
    assert!(!planned(&out, "late"));
    assert!(round.back <= Clock::hm(11, 0), "back at {}", round.back);
    assert!(round.stops.iter().all(|s| s.kind != StopKind::Break));
}

/// One clinician; an urgent visit `u` 1 km away that must start by 09:12, and a routine visit
/// at the practice that must start by 09:05 and takes 10 minutes. Doing the routine one first
/// makes `u` late by a few minutes; doing it after `u` makes it half an hour late itself.
fn clash(urgency: Urgency) -> doorstep_routing::Problem {
    let mut u = visit("u", north(1.0), 30);
    u.urgency = urgency;
    u.windows = vec![window((9, 0), (9, 12))];
    let mut r = visit("r", BASE, 10);
    r.windows = vec![window((9, 0), (9, 5))];
    problem(vec![clinician("ana", &[])], vec![u, r])
}

#[test]
fn a_routine_visit_that_would_delay_an_immediate_one_says_so() {
    let out = plan(&clash(Urgency::Immediate), &budget(), 1).unwrap();
    assert!(planned(&out, "u"));
    assert_eq!(
        reason_of(&out, "r"),
        &Reason::WouldMakeImmediateLate {
            visit: "u".into(),
            care_home: None
        }
    );
}

#[test]
fn a_routine_visit_is_not_put_before_an_immediate_one_even_inside_its_window() {
    // The call may be seen until 13:00, but immediate means as soon as possible: the routine
    // visit first would see it at about 09:15, ten minutes after Ana could be there. Seeing
    // the routine visit after it would be late, so it is left for another day, saying why.
    let mut day = clash(Urgency::Immediate);
    day.visits[0].windows = vec![window((9, 0), (13, 0))];
    for seed in 1..=3 {
        let out = plan(&day, &budget(), seed).unwrap();
        let call = &out.rounds[0].stops[0];
        assert_eq!(
            (call.id.as_str(), call.start.to_string()),
            ("u", "09:04:36".into())
        );
        assert_eq!(
            reason_of(&out, "r"),
            &Reason::WouldMakeImmediateLate {
                visit: "u".into(),
                care_home: None
            }
        );
    }
}

#[test]
fn a_routine_visit_that_would_delay_another_says_which() {
    let out = plan(&clash(Urgency::SameDay), &budget(), 1).unwrap();
    assert!(planned(&out, "u"));
    assert_eq!(
        reason_of(&out, "r"),
        &Reason::WouldMakeVisitLate {
            visit: "u".into(),
            care_home: None
        }
    );
}

#[test]
fn a_visit_whose_window_is_taken_has_no_room() {
    // An hour-long same-day visit must start by 09:05; the routine one must start 09:30-09:40.
    let mut s = visit("s", BASE, 60);
    s.urgency = Urgency::SameDay;
    s.windows = vec![window((9, 0), (9, 5))];
    let mut r = visit("r", BASE, 10);
    r.windows = vec![window((9, 30), (9, 40))];
    let out = plan(
        &problem(vec![clinician("ana", &[])], vec![s, r]),
        &budget(),
        1,
    )
    .unwrap();
    assert!(planned(&out, "s"));
    assert_eq!(reason_of(&out, "r"), &Reason::NoRoomInWindow);
}

#[test]
fn a_visit_that_would_overrun_the_shift_names_the_clinician() {
    let mut ana = clinician("ana", &[]);
    ana.shift = window((9, 0), (10, 0));
    let mut s = visit("s", north(2.0), 45);
    s.urgency = Urgency::SameDay;
    let r = visit("r", north(2.0), 30);
    let out = plan(&problem(vec![ana], vec![s, r]), &budget(), 1).unwrap();
    assert!(planned(&out, "s"));
    assert_eq!(
        reason_of(&out, "r"),
        &Reason::WouldExceedShift {
            clinician: "ana".into()
        }
    );
}

#[test]
fn urgent_work_kept_out_only_by_the_end_of_a_shift_says_so_though_it_would_be_late_too() {
    // Ben has time for one of two hour-long immediate visits at one door (from about 09:04),
    // the first due by 09:20, the second by 10:00. Whichever he sees, the other would then
    // start late and end him past 11:00. Urgent work is planned late where that harms nobody,
    // so lateness is not what keeps it out: his shift's end is, and more overtime would let
    // it in.
    let mut ben = clinician("ben", &[]);
    ben.shift = window((9, 0), (11, 0));
    let mut first = visit("first", north(1.0), 60);
    first.urgency = Urgency::Immediate;
    first.windows = vec![window((9, 0), (9, 20))];
    let mut second = visit("second", north(1.0), 60);
    second.urgency = Urgency::Immediate;
    second.windows = vec![window((9, 0), (10, 0))];
    for seed in 1..=3 {
        let out = plan(
            &problem(vec![ben.clone()], vec![first.clone(), second.clone()]),
            &budget(),
            seed,
        )
        .unwrap();
        assert_eq!(out.unplanned.len(), 1, "{out:#?}");
        assert_eq!(
            out.unplanned[0].reason,
            Reason::WouldExceedShift {
                clinician: "ben".into()
            },
            "seed {seed}: {out:#?}"
        );
    }
}

#[test]
fn a_visit_that_would_push_the_break_out_of_its_window_names_whose_break() {
    // Ana's half-hour break must start 10:00-10:05; the hour-long visit must start 09:30-09:40
    // at the practice. Before the break it makes the break 25 minutes late; after it, it is
    // itself 50 minutes late. The break is no visit, so the reason names the clinician.
    let mut ana = clinician("ana", &[]);
    ana.break_ = Some(doorstep_routing::Break {
        window: window((10, 0), (10, 5)),
        minutes: 30,
    });
    let mut r = visit("r", BASE, 60);
    r.windows = vec![window((9, 30), (9, 40))];
    let out = plan(&problem(vec![ana], vec![r]), &budget(), 1).unwrap();
    assert_eq!(
        reason_of(&out, "r"),
        &Reason::WouldDelayBreak {
            clinician: "ana".into()
        }
    );
}

#[test]
fn a_day_whose_budget_anneals_each_start_plans_the_same_for_a_seed() {
    // Two pharmacists and two homes give two starts; 400 crossovers afford a walk from each.
    let mut p = morning();
    p.clinicians.push(clinician("cat", &["pharmacist"]));
    p.clinicians
        .push(clinician("dev", &["pharmacist", "paramedic"]));
    for (h, km) in [(0, 2.0), (1, 6.0)] {
        let home = care_home(&format!("home{h}"), km, window((10, 0), (15, 0)), 4, 20);
        p.care_homes.push(home);
    }
    let budget = doorstep_routing::Budget::iterations(400);
    let once = plan(&p, &budget, 5).unwrap();
    assert_eq!(once, plan(&p, &budget, 5).unwrap());
    assert!(once.unplanned.is_empty(), "{:#?}", once.unplanned);
    for h in 0..2 {
        let stops = once
            .rounds
            .iter()
            .flat_map(|r| &r.stops)
            .filter(|s| s.id == format!("home{h}"))
            .count();
        assert!((1..=2).contains(&stops), "home{h} in {stops} stops");
    }
}

#[test]
fn a_care_home_is_one_stop_and_residents_that_do_not_fit_are_deferred() {
    let mut p = problem(vec![clinician("pat", &["pharmacist"])], Vec::new());
    p.care_homes
        .push(care_home("oaks", 3.0, window((10, 0), (11, 0)), 3, 60));
    let out = plan(&p, &budget(), 1).unwrap();
    let stops = &out.rounds[0].stops;
    assert_eq!(stops.len(), 1, "{stops:#?}");
    assert_eq!(stops[0].kind, StopKind::CareHome);
    assert_eq!(stops[0].residents.len(), 2);
    assert_eq!(stops[0].finish.0 - stops[0].start.0, 2 * 3600);
    let deferred = out
        .unplanned
        .iter()
        .find(|u| u.care_home.as_deref() == Some("oaks"))
        .unwrap();
    assert_eq!(deferred.reason, Reason::CareHomeVisitFull);
    // The most overdue residents are reviewed first.
    assert_eq!(deferred.id, "oaks-r0");
}

#[test]
fn a_review_that_would_make_another_late_names_the_resident_and_their_home() {
    // Pat can see the Oaks' two residents 09:00-09:50, or the Elms' one (who has the same id as
    // an Oaks resident) by 09:30, not both: the Elms 3 km north first would make the Oaks'
    // second review late. The reason names that resident with the home, since resident ids
    // repeat across homes (which is why one Oaks resident is called r1 too).
    let mut p = problem(vec![clinician("pat", &["pharmacist"])], Vec::new());
    let mut oaks = care_home("oaks", 0.5, window((9, 0), (9, 50)), 2, 25);
    let mut elms = care_home("elms", 3.0, window((9, 0), (9, 30)), 1, 30);
    oaks.residents[1].id = "r1".into();
    elms.residents[0].id = "r1".into();
    p.care_homes = vec![oaks, elms];
    let out = plan(&p, &budget(), 1).unwrap();
    assert_eq!(out.unplanned.len(), 1, "{out:#?}");
    let left = &out.unplanned[0];
    assert_eq!(
        (left.id.as_str(), left.care_home.as_deref()),
        ("r1", Some("elms"))
    );
    // The two Oaks residents are alike, so either may be seen second; the reason names that one.
    let second = out.rounds[0].stops[0].residents.last().unwrap();
    assert_eq!(
        left.reason,
        Reason::WouldMakeVisitLate {
            visit: second.clone(),
            care_home: Some("oaks".into())
        }
    );
    let json = serde_json::to_value(&left.reason).unwrap();
    assert_eq!(json["care_home"], "oaks");
}

/// Ana has six routine visits a kilometre apart going north and an immediate one just past
/// the last: cheapest is to take it on the way, at the far end of the morning.
fn immediate_at_the_far_end() -> doorstep_routing::Problem {
    let mut visits: Vec<_> = (1..=6)
        .map(|i| visit(&format!("v{i}"), north(f64::from(i)), 30))
        .collect();
    let mut u = visit("u", north(6.5), 20);
    u.urgency = Urgency::Immediate;
    u.windows = vec![window((9, 0), (16, 0))];
    visits.push(u);
    problem(vec![clinician("ana", &[])], visits)
}

#[test]
fn an_immediate_visit_is_made_as_soon_as_it_can_be_not_when_cheapest() {
    let out = plan(&immediate_at_the_far_end(), &budget(), 1).unwrap();
    let stops = &out.rounds[0].stops;
    assert_eq!(stops[0].id, "u", "{stops:#?}");
    assert!(stops[0].start <= Clock::hm(9, 20));
    assert!(out.unplanned.is_empty());
    assert_eq!(out.summary.immediate_delay_seconds, 0);
}

#[test]
fn an_immediate_visit_with_several_windows_is_due_in_the_first_anyone_can_reach() {
    // The patient 6.5 km north is out until 08:30 and free 09:00-16:00. Ana, at the practice,
    // could be there soonest, but a visit at the practice must start by 09:20 and is cheapest
    // for her; Ben, 5 km south, can still make it. Only a search that knows the immediate
    // visit is due soon after 09:00 gives the practice visit to Ben: moving the immediate
    // visit alone afterwards would make the practice visit late.
    let mut u = visit("u", north(6.5), 20);
    u.urgency = Urgency::Immediate;
    u.windows = vec![window((7, 0), (8, 30)), window((9, 0), (16, 0))];
    let mut f = visit("f", BASE, 30);
    f.windows = vec![window((9, 0), (9, 20))];
    let mut ben = clinician("ben", &[]);
    ben.start = north(-5.0);
    let p = problem(vec![clinician("ana", &[]), ben], vec![u, f]);
    let out = plan(&p, &budget(), 1).unwrap();
    let ana = &out.rounds[0].stops;
    assert_eq!(ana[0].id, "u", "{:#?}", out.rounds);
    assert!(ana[0].start <= Clock::hm(9, 20));
    assert_eq!(out.rounds[1].stops[0].id, "f");
    assert_eq!(out.summary.late_seconds, 0);
}

#[test]
fn an_immediate_visit_comes_sooner_only_without_making_anyone_late() {
    // A same-day visit at the practice must start by 09:10: it stays first, and the
    // immediate one comes straight after it. (A routine one would be left for another day
    // rather than hold the immediate visit back ten minutes, as in
    // `a_routine_visit_is_not_put_before_an_immediate_one_even_inside_its_window`.) The
    // summary shows the wait: ten minutes after the soonest Ana could be there, five past the
    // time the planner holds it due, priced as lateness.
    let mut p = immediate_at_the_far_end();
    let mut first = visit("first", BASE, 10);
    first.windows = vec![window((9, 0), (9, 10))];
    first.urgency = Urgency::SameDay;
    p.visits.push(first);
    let out = plan(&p, &budget(), 1).unwrap();
    let ids: Vec<&str> = out.rounds[0].stops.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(&ids[..2], ["first", "u"]);
    assert_eq!(out.summary.late_seconds, 0);
    assert_eq!(out.summary.immediate_delay_seconds, 300);
    let travel = weights::TRAVEL * out.summary.travel_seconds as i64;
    assert_eq!(out.summary.cost, weights::LATENESS * 300 + travel);
}

#[test]
fn a_clinician_going_off_too_soon_to_get_back_is_given_nothing() {
    // Ben goes off at 09:30 but ends his day two hours' drive away; by the supplied matrix the
    // visit lies on a quicker way there, so taking it would shorten his overrun (70 minutes
    // instead of 2 hours) without ending it. Ana is busy with a seven-hour visit from 09:00
    // and cannot fit it before her shift ends. It is no fit for either.
    let (end, v) = (north(20.0), north(10.0));
    let mut ben = clinician("ben", &[]);
    ben.end = Some(end);
    ben.off_from = Some(Clock::hm(9, 30));
    let mut long = visit("long", BASE, 420);
    long.urgency = Urgency::SameDay;
    long.windows = vec![window((9, 0), (9, 5))];
    let mut p = problem(
        vec![ben, clinician("ana", &[])],
        vec![long, visit("v", v, 10)],
    );
    p.travel.matrix = Some(doorstep_routing::TravelMatrix {
        points: vec![BASE, end, v],
        seconds: vec![
            vec![0, 7200, 1800],
            vec![7200, 0, 1800],
            vec![1800, 1800, 0],
        ],
    });
    let out = plan(&p, &budget(), 1).unwrap();
    assert!(out.rounds[0].stops.is_empty(), "{:#?}", out.rounds[0]);
    assert!(planned(&out, "long"));
    assert!(!planned(&out, "v"));
}

#[test]
fn a_wait_between_two_reviews_at_a_home_shows_as_two_sittings() {
    // The home takes visitors 10:00-10:30 and 14:00-15:00; each review is 40 minutes, so the
    // second cannot start until the afternoon. One stop 10:00-14:40 would hide the wait, and
    // a re-plan would take the second review to have been due at 10:40.
    let mut p = problem(vec![clinician("pat", &["pharmacist"])], Vec::new());
    let mut home = care_home("oaks", 2.0, window((10, 0), (10, 30)), 2, 40);
    home.windows.push(window((14, 0), (15, 0)));
    p.care_homes.push(home);
    let out = plan(&p, &budget(), 1).unwrap();
    assert!(out.unplanned.is_empty(), "{:#?}", out.unplanned);
    let sittings: Vec<_> = out.rounds[0]
        .stops
        .iter()
        .filter(|s| s.kind == StopKind::CareHome)
        .map(|s| (s.start, s.finish, s.residents.len()))
        .collect();
    assert_eq!(
        sittings,
        [
            (Clock::hm(10, 0), Clock::hm(10, 40), 1),
            (Clock::hm(14, 0), Clock::hm(14, 40), 1)
        ]
    );
}

#[test]
fn a_break_is_taken_within_its_window() {
    let mut p = morning();
    p.clinicians[0].break_ = Some(doorstep_routing::Break {
        window: window((11, 0), (12, 0)),
        minutes: 30,
    });
    let out = plan(&p, &budget(), 2).unwrap();
    let b = out.rounds[0]
        .stops
        .iter()
        .find(|s| s.kind == StopKind::Break)
        .expect("break");
    assert!(
        b.start >= doorstep_routing::Clock::hm(11, 0)
            && b.start <= doorstep_routing::Clock::hm(12, 0)
    );
    assert_eq!(b.finish.0 - b.start.0, 1800);
}

#[test]
fn a_supplied_travel_matrix_overrides_the_speed_model() {
    let far = north(1.0);
    let mut p = problem(vec![clinician("ana", &[])], vec![visit("v", far, 10)]);
    p.travel.matrix = Some(doorstep_routing::TravelMatrix {
        points: vec![BASE, far],
        seconds: vec![vec![0, 600], vec![700, 0]],
    });
    let out = plan(&p, &budget(), 1).unwrap();
    assert_eq!(out.rounds[0].travel_seconds, 1300);

    // A place the matrix does not list is reached by the speed model.
    let mut q = problem(
        vec![clinician("ana", &[])],
        vec![visit("w", north(2.0), 10)],
    );
    let modelled = plan(&q, &budget(), 1).unwrap().rounds[0].travel_seconds;
    q.travel.matrix = p.travel.matrix.clone();
    assert_eq!(
        plan(&q, &budget(), 1).unwrap().rounds[0].travel_seconds,
        modelled
    );
    assert_ne!(modelled, 1300);
}

#[test]
fn the_plan_round_trips_through_json() {
    let out = plan(&morning(), &budget(), 1).unwrap();
    let json = serde_json::to_string(&out).unwrap();
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, out);
    assert!(json.contains("\"depart\":\"09:00\""), "{json}");
}

/// A clinician working 09:00-15:00 with four hour-long visits and one that can be seen only
/// at 09:00-09:30 or 16:00-16:30, the second window after the shift.
fn two_windows() -> doorstep_routing::Problem {
    let mut a = clinician("a", &[]);
    a.shift = window((9, 0), (15, 0));
    let mut p = problem(
        vec![a],
        vec![
            visit("near-1", north(2.0), 60),
            visit("near-2", north(2.2), 60),
            visit("both-ends", north(4.0), 30),
            visit("far-1", north(6.0), 60),
            visit("far-2", north(6.2), 60),
        ],
    );
    p.visits[2].windows = vec![window((9, 0), (9, 30)), window((16, 0), (16, 30))];
    p
}

#[test]
fn a_visit_with_two_windows_is_planned_in_the_one_the_round_can_reach() {
    let problem = two_windows();
    for seed in 0..4 {
        let plan = plan(&problem, &budget(), seed).unwrap();
        assert!(
            plan.unplanned.is_empty(),
            "seed {seed}: {:?}",
            plan.unplanned
        );
        assert_eq!(plan.summary.late_seconds, 0, "seed {seed}");
        assert_eq!(plan.summary.overtime_seconds, 0, "seed {seed}");
        let stops = &plan.rounds[0].stops;
        let both = stops.iter().find(|s| s.id == "both-ends").unwrap();
        assert!(
            both.start >= Clock::hm(9, 0) && both.start <= Clock::hm(9, 30),
            "seed {seed}: {stops:#?}"
        );
    }
}

/// A full day for four paramedics with a lunch break each: forty-four visits scattered within
/// 6 km of the practice, a third of them with a morning or an afternoon window, every tenth
/// same-day and every tenth immediate. A search plans them all; cheapest insertion alone
/// leaves some past their windows.
fn busy_day() -> Problem {
    let visits = (0..44u32)
        .map(|i| {
            // A fixed scatter: angle and distance from the index, no random numbers.
            let angle = f64::from(i) * 2.4;
            let km = 1.0 + f64::from(i * 7 % 50) / 10.0;
            let mut v = visit(
                &format!("v{i}"),
                Location {
                    lat: BASE.lat + km * angle.sin() / 111.2,
                    lon: BASE.lon + km * angle.cos() / 70.0,
                },
                25 + i % 4 * 5,
            );
            v.windows = match i % 6 {
                0 => vec![window((9, 0), (11, 0))],
                3 => vec![window((14, 0), (16, 0))],
                _ => Vec::new(),
            };
            v.urgency = match i % 10 {
                0 => Urgency::Immediate,
                5 => Urgency::SameDay,
                _ => Urgency::Routine,
            };
            v
        })
        .collect();
    let clinicians = ["ana", "ben", "cat", "dev"]
        .iter()
        .map(|id| {
            let mut c = clinician(id, &["paramedic"]);
            c.max_overtime_minutes = 30;
            c.break_ = Some(Break {
                window: window((12, 0), (14, 0)),
                minutes: 30,
            });
            c
        })
        .collect();
    problem(clinicians, visits)
}

#[test]
fn a_plan_with_no_time_to_search_still_serves_what_a_finished_descent_serves() {
    // However short the budget (or slow the device), the first solution is descended through
    // two whole passes of the moves before the plan is made: cut short in the first, its late
    // arrivals would leave visits out, urgent ones included, that any finished descent fits
    // in. (A hurried plan may still
    // leave a routine visit for another day rather than be late: the objective's order.)
    let day = busy_day();
    let searched = plan(&day, &budget(), 1).unwrap();
    assert!(searched.unplanned.is_empty(), "{:#?}", searched.unplanned);
    for seed in 1..=3 {
        let hurried = plan(&day, &Budget::time(Duration::ZERO), seed).unwrap();
        assert_eq!(hurried.summary.unserved_urgent, 0, "seed {seed}");
        assert_eq!(hurried.summary.late_seconds, 0, "seed {seed}");
    }
}

#[test]
fn lateness_is_counted_as_it_falls_so_a_late_stop_delays_the_ones_after_it() {
    // Three same-day visits at the practice itself (no travel), none of which can be left out
    // for lateness. However they are ordered, someone is late. The first must start at 09:00.
    // Then a (due by 09:10) at 09:40 is 30 minutes late, and starts c (due by 09:50) at
    // 10:20, 30 more: an hour. c before a makes only a late, by 50 minutes. Priced as time
    // warp, a's overrun is handed back and c looks on time, so the hour reads as 30 minutes:
    // the plan must be the one that is late for 50.
    let at_base = |id: &str, minutes, due: (u32, u32)| Visit {
        urgency: Urgency::SameDay,
        windows: vec![window((9, 0), due)],
        ..visit(id, BASE, minutes)
    };
    let day = problem(
        vec![clinician("ana", &["paramedic"])],
        vec![
            at_base("first", 40, (9, 0)),
            at_base("a", 40, (9, 10)),
            at_base("c", 20, (9, 50)),
        ],
    );
    for seed in 1..=3 {
        let out = plan(&day, &budget(), seed).unwrap();
        let order: Vec<&str> = out.rounds[0].stops.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(order, ["first", "c", "a"], "seed {seed}");
        assert_eq!(out.summary.late_seconds, 50 * 60, "seed {seed}");
    }
}

#[test]
fn an_urgent_visit_no_one_can_reach_in_time_is_planned_late_rather_than_left_out() {
    // Ana's hour-long shift reaches the call on time but cannot finish it; Ben, twenty
    // kilometres away, gets there well past its window. Ben plans it late, as he would were
    // Ana not working at all: an urgent patient seen late is better than not seen.
    let mut ana = clinician("ana", &[]);
    ana.shift = window((9, 0), (10, 0));
    let mut ben = clinician("ben", &[]);
    ben.start = north(-20.0);
    let mut call = visit("call", north(1.0), 60);
    call.urgency = Urgency::Immediate;
    call.windows = vec![window((9, 0), (9, 20))];
    for urgency in [Urgency::Immediate, Urgency::SameDay] {
        call.urgency = urgency;
        let day = problem(vec![ana.clone(), ben.clone()], vec![call.clone()]);
        let out = plan(&day, &budget(), 1).unwrap();
        assert!(planned(&out, "call"), "{urgency:?}: {out:#?}");
        assert_eq!(out.summary.unserved_urgent, 0);
        let ben_alone = plan(
            &problem(vec![ben.clone()], vec![call.clone()]),
            &budget(),
            1,
        );
        assert_eq!(out.rounds[1].stops, ben_alone.unwrap().rounds[0].stops);
        assert!(out.rounds[1].stops[0].late_seconds > 0);
    }
}

#[test]
fn an_urgent_visit_seen_only_late_takes_the_place_of_less_urgent_work() {
    // Ana's hour-long shift reaches the call on time but cannot finish it; Ben, twenty
    // kilometres away, has room for one hour's visit, late, before his day ends. Besides the
    // call there is less urgent work of an hour at the same door: a same-day visit, then a
    // routine one. Ben sees the call, late, and the other waits: an immediate patient seen late
    // comes before a same-day one seen at all.
    let mut ana = clinician("ana", &[]);
    ana.shift = window((9, 0), (10, 0));
    let mut ben = clinician("ben", &[]);
    ben.start = north(-20.0);
    ben.shift = window((9, 0), (12, 0));
    let mut call = visit("call", north(1.0), 60);
    call.urgency = Urgency::Immediate;
    call.windows = vec![window((9, 0), (9, 20))];
    for (other, urgency) in [
        ("same-day", Urgency::SameDay),
        ("routine", Urgency::Routine),
    ] {
        let mut less = visit(other, north(1.0), 60);
        less.urgency = urgency;
        less.windows = call.windows.clone();
        // Listed first, so that it is explained first.
        let day = problem(vec![ana.clone(), ben.clone()], vec![less, call.clone()]);
        for seed in 1..=3 {
            let out = plan(&day, &budget(), seed).unwrap();
            assert!(planned(&out, "call"), "{other}, seed {seed}: {out:#?}");
            assert!(!planned(&out, other), "{other}, seed {seed}: {out:#?}");
            assert_eq!(
                out.summary.unserved_urgent,
                u32::from(urgency == Urgency::SameDay)
            );
            assert_eq!(out.rounds[1].stops[0].id, "call");
        }
    }
}

#[test]
fn an_immediate_visit_with_two_windows_is_due_from_whoever_could_do_it_in_the_one_they_reach() {
    // Ana gets there at 08:40, between the call's windows: she would start it at 09:00 and
    // finish at 10:00, past her 09:45. Ben, from 10:00, is the soonest who could do it, and
    // the call waits on no other work, so none of it is delay.
    let mut ana = clinician("ana", &[]);
    ana.shift = window((8, 40), (9, 45));
    let mut ben = clinician("ben", &[]);
    ben.shift = window((10, 0), (18, 0));
    let mut call = visit("call", BASE, 60);
    call.urgency = Urgency::Immediate;
    call.windows = vec![window((8, 0), (8, 30)), window((9, 0), (12, 0))];
    let out = plan(&problem(vec![ana, ben], vec![call]), &budget(), 1).unwrap();
    assert_eq!(out.rounds[1].stops[0].start, Clock::hm(10, 0), "{out:#?}");
    assert_eq!(out.summary.immediate_delay_seconds, 0);
}

#[test]
fn an_immediate_visit_is_due_from_the_soonest_clinician_who_could_do_it() {
    // Ana's shift ends at 08:30, too soon to do an hour's visit; Ben starts at 09:00 and
    // goes at once. The call waits on no other work, so none of it is delay.
    let mut ana = clinician("ana", &[]);
    ana.shift = window((8, 0), (8, 30));
    let mut call = visit("call", BASE, 60);
    call.urgency = Urgency::Immediate;
    let out = plan(
        &problem(vec![ana, clinician("ben", &[])], vec![call]),
        &budget(),
        1,
    )
    .unwrap();
    assert_eq!(out.rounds[1].stops[0].start, Clock::hm(9, 0), "{out:#?}");
    assert_eq!(out.summary.immediate_delay_seconds, 0);
}
