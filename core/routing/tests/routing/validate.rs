//! Problems no real day can have are refused before planning, with the JSON path of the field,
//! a reason that names the item and the rule, and never a patient's location.

use doorstep_domain::ValidationError;
use doorstep_routing::{
    Break, Budget, Clinician, Clock, Event, Problem, Resident, RoutingError, TravelMatrix, Visit,
    plan, replan,
};

use crate::fixtures::*;

/// The error `plan` gives for `morning()` changed by `change`.
fn refusal(change: impl FnOnce(&mut Problem)) -> ValidationError {
    let mut p = morning();
    p.care_homes
        .push(care_home("oaks", 2.0, window((10, 0), (16, 0)), 2, 20));
    change(&mut p);
    match plan(&p, &budget(), 1) {
        Err(RoutingError::Invalid(e)) => e,
        other => panic!("should be refused, got {other:?}"),
    }
}

fn lunch(start: (u32, u32), end: (u32, u32), minutes: u32) -> Option<Break> {
    Some(Break {
        window: window(start, end),
        minutes,
    })
}

#[test]
fn impossible_values_are_refused_naming_the_item_and_the_field() {
    type Change = Box<dyn FnOnce(&mut Problem)>;
    let cases: Vec<(Change, &str, &str)> = vec![
        (
            Box::new(|p| p.visits[0].location.lat = 500.0),
            "visits[0].location",
            "visit v0",
        ),
        (
            Box::new(|p| p.visits[0].location.lon = f64::NAN),
            "visits[0].location",
            "visit v0",
        ),
        (
            Box::new(|p| p.clinicians[0].start.lon = -400.0),
            "clinicians[0].start",
            "clinician ana",
        ),
        (
            Box::new(|p| p.care_homes[0].location.lat = -91.0),
            "care_homes[0].location",
            "care home oaks",
        ),
        (
            Box::new(|p| p.visits[0].minutes = 0),
            "visits[0].minutes",
            "between 1 and 1440 (visit v0)",
        ),
        (
            Box::new(|p| p.visits[0].minutes = 4_000_000),
            "visits[0].minutes",
            "between 1 and 1440 (visit v0)",
        ),
        (
            Box::new(|p| p.care_homes[0].residents[1].minutes = 0),
            "care_homes[0].residents[1].minutes",
            "resident oaks-r1 of care home oaks",
        ),
        (
            Box::new(|p| p.visits[0].windows = vec![window((12, 0), (9, 0))]),
            "visits[0].windows[0]",
            "ends before it starts (visit v0)",
        ),
        (
            Box::new(|p| p.care_homes[0].windows = vec![window((16, 0), (10, 0))]),
            "care_homes[0].windows[0]",
            "ends before it starts (care home oaks)",
        ),
        (
            Box::new(|p| p.clinicians[1].shift = window((17, 0), (9, 0))),
            "clinicians[1].shift",
            "must end after it starts (clinician ben)",
        ),
        (
            Box::new(|p| p.clinicians[1].shift = window((9, 0), (9, 0))),
            "clinicians[1].shift",
            "must end after it starts (clinician ben)",
        ),
        (
            Box::new(|p| p.clinicians[0].max_overtime_minutes = 5_000),
            "clinicians[0].max_overtime_minutes",
            "at most 1440",
        ),
        (
            Box::new(|p| {
                p.clinicians[0].shift = window((20, 0), (47, 30));
                p.clinicians[0].max_overtime_minutes = 30;
            }),
            "clinicians[0].max_overtime_minutes",
            "must end before 48:00",
        ),
        (
            Box::new(|p| p.clinicians[0].break_ = lunch((14, 0), (12, 0), 30)),
            "clinicians[0].break.window",
            "ends before it starts",
        ),
        (
            Box::new(|p| p.clinicians[0].break_ = lunch((12, 0), (14, 0), 0)),
            "clinicians[0].break.minutes",
            "between 1 and 120",
        ),
        (
            Box::new(|p| p.clinicians[0].break_ = lunch((12, 0), (14, 0), 1_000)),
            "clinicians[0].break.minutes",
            "between 1 and 120",
        ),
        (
            Box::new(|p| p.clinicians[0].break_ = lunch((18, 0), (19, 0), 30)),
            "clinicians[0].break",
            "cannot be taken within the shift",
        ),
        (
            Box::new(|p| p.clinicians[0].break_ = lunch((16, 45), (17, 0), 30)),
            "clinicians[0].break",
            "cannot be taken within the shift",
        ),
        (
            Box::new(|p| p.travel.speed_kmh = 0.0),
            "travel.speed_kmh",
            "between 1 and 200",
        ),
        (
            Box::new(|p| p.travel.speed_kmh = -30.0),
            "travel.speed_kmh",
            "between 1 and 200",
        ),
        (
            Box::new(|p| p.travel.speed_kmh = 1e-300),
            "travel.speed_kmh",
            "between 1 and 200",
        ),
        (
            Box::new(|p| {
                p.visits[0].windows = vec![window((9, 0), (17, 0)), window((10, 0), (11, 0))]
            }),
            "visits[0].windows[1]",
            "overlaps windows[0]",
        ),
        (
            Box::new(|p| {
                p.care_homes[0].windows = vec![window((14, 0), (16, 0)), window((10, 0), (14, 30))]
            }),
            "care_homes[0].windows[0]",
            "overlaps windows[1]",
        ),
        (
            Box::new(|p| {
                let home = p.care_homes[0].clone();
                let r = home.residents[0].clone();
                p.care_homes = (0..11)
                    .map(|h| doorstep_routing::CareHome {
                        id: format!("home{h}"),
                        residents: (0..460)
                            .map(|i| Resident {
                                id: format!("r{i}"),
                                ..r.clone()
                            })
                            .collect(),
                        ..home.clone()
                    })
                    .collect();
            }),
            "care_homes",
            "at most 5000 visits and residents due together",
        ),
        (
            Box::new(|p| p.travel.speed_kmh = f64::INFINITY),
            "travel.speed_kmh",
            "between 1 and 200",
        ),
        (
            Box::new(|p| p.travel.detour_factor = 0.5),
            "travel.detour_factor",
            "between 1 and 5",
        ),
        (
            Box::new(|p| p.travel.parking_minutes = -10.0),
            "travel.parking_minutes",
            "between 0 and 120",
        ),
        (
            Box::new(|p| {
                p.clinicians[0].skills = vec!["paramedic".into()];
                p.visits[1].skills = vec!["Paramedic".into()];
            }),
            "visits[1].skills[0]",
            "is written \"paramedic\" elsewhere in this day: a skill must be written one way, \
             as it is matched exactly (visit v1)",
        ),
        (
            Box::new(|p| {
                p.clinicians[1].skills = vec!["pharmacist ".into()];
                p.care_homes[0].skills = vec!["pharmacist".into()];
            }),
            "care_homes[0].skills[0]",
            "is written \"pharmacist \" elsewhere",
        ),
        (
            Box::new(|p| p.clinicians[1].skills = vec!["prescriber".into(), " ".into()]),
            "clinicians[1].skills[1]",
            "must not be empty (clinician ben)",
        ),
        (
            Box::new(|p| p.visits[1].id = "v0".into()),
            "visits[1].id",
            "is repeated: visits and care homes share one set of ids (visit v0)",
        ),
        (
            Box::new(|p| p.care_homes[0].id = "v0".into()),
            "care_homes[0].id",
            "is repeated: visits and care homes share one set of ids (care home v0)",
        ),
        (
            Box::new(|p| p.clinicians[1].id = "ana".into()),
            "clinicians[1].id",
            "is repeated (clinician ana)",
        ),
        (
            Box::new(|p| p.visits[0].id = " ".into()),
            "visits[0].id",
            "must not be empty",
        ),
        (
            Box::new(|p| p.clinicians[0].id = String::new()),
            "clinicians[0].id",
            "must not be empty",
        ),
        (
            Box::new(|p| p.care_homes[0].residents[1].id = "oaks-r0".into()),
            "care_homes[0].residents[1].id",
            "is repeated (resident oaks-r0 of care home oaks)",
        ),
        (
            Box::new(|p| {
                p.travel.matrix = Some(TravelMatrix {
                    points: vec![p.visits[0].location],
                    seconds: vec![vec![0, 60]],
                })
            }),
            "travel.matrix.seconds",
            "must be square",
        ),
        (
            Box::new(|p| {
                let here = p.visits[0].location;
                p.travel.matrix = Some(TravelMatrix {
                    points: vec![here, p.visits[1].location, here],
                    seconds: vec![vec![0, 60, 0], vec![60, 0, 60], vec![0, 60, 0]],
                })
            }),
            "travel.matrix.points[2]",
            "repeats point 0",
        ),
        (
            Box::new(|p| {
                p.travel.matrix = Some(TravelMatrix {
                    points: vec![p.visits[0].location, p.visits[1].location],
                    seconds: vec![vec![0, 90_000], vec![60, 0]],
                })
            }),
            "travel.matrix.seconds[0][1]",
            "over a day",
        ),
        (
            Box::new(|p| {
                let v = p.visits[0].clone();
                p.visits.extend((0..2_000).map(|i| Visit {
                    id: format!("extra{i}"),
                    ..v.clone()
                }));
            }),
            "visits",
            "at most 2000 visits and care homes together",
        ),
        (
            Box::new(|p| {
                let c = p.clinicians[0].clone();
                p.clinicians.extend((0..200).map(|i| Clinician {
                    id: format!("extra{i}"),
                    ..c.clone()
                }));
            }),
            "clinicians",
            "at most 200 clinicians",
        ),
        (
            Box::new(|p| {
                let r = p.care_homes[0].residents[0].clone();
                p.care_homes[0].residents.extend((0..500).map(|i| Resident {
                    id: format!("extra{i}"),
                    ..r.clone()
                }));
            }),
            "care_homes[0].residents",
            "care home oaks has 502",
        ),
        (
            Box::new(|p| {
                p.travel.matrix = Some(TravelMatrix {
                    points: (0..2_401).map(|i| north(0.001 * f64::from(i))).collect(),
                    seconds: Vec::new(),
                })
            }),
            "travel.matrix.points",
            "at most 2400 points",
        ),
    ];
    for (change, field, reason) in cases {
        let e = refusal(change);
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(reason), "{e} should say {reason:?}");
        assert!(!e.to_string().contains("50."), "{e} shows a coordinate");
    }
}

#[test]
fn unusual_but_real_days_are_planned() {
    // A visit pinned to someone not on today's list, a skill nobody has, times after midnight,
    // a clinician off for the whole day and a break at the very end of the shift are all days
    // that happen: they are planned, with reasons for what cannot be done.
    let mut p = morning();
    p.visits[0].pinned_to = Some("carol".into());
    p.visits[1].skills = vec!["tissue-viability".into()];
    p.visits[2].windows = vec![window((23, 0), (25, 30))];
    p.clinicians[1].off_from = Some(p.clinicians[1].shift.start);
    p.clinicians[0].break_ = lunch((16, 30), (16, 30), 30);
    p.travel.detour_factor = 1.0;
    assert!(plan(&p, &budget(), 1).is_ok());
}

#[test]
fn a_field_the_schema_does_not_know_is_refused_not_ignored() {
    let mut json = serde_json::to_value(morning()).unwrap();
    let visit = json["visits"][5].as_object_mut().unwrap();
    let windows = visit.remove("windows").unwrap();
    visit.insert("windowz".into(), windows);
    let e = serde_json::from_value::<Problem>(json).unwrap_err();
    assert!(e.to_string().contains("unknown field `windowz`"), "{e}");
    // The document as written reads back.
    let json = serde_json::to_value(morning()).unwrap();
    assert_eq!(serde_json::from_value::<Problem>(json).unwrap(), morning());
}

#[test]
fn a_budget_without_an_end_or_longer_than_a_day_is_refused() {
    let endless = Budget {
        time_limit: None,
        iterations: None,
    };
    let mut p = morning();
    let e = plan(&p, &endless, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid budget: needs a time limit, a number of iterations or both"
    );
    let forever = Budget::time(std::time::Duration::MAX);
    let e = plan(&p, &forever, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid budget.time_limit: must be less than a day"
    );
    let countless = Budget {
        time_limit: Some(std::time::Duration::from_millis(100)),
        iterations: Some(u64::MAX),
    };
    let e = plan(&p, &countless, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid budget.iterations: must be at most 1000000000"
    );
    let first = plan(&p, &budget(), 1).unwrap();
    let before = p.clone();
    let events = [Event::ClinicianOffSick {
        at: Clock::hm(10, 0),
        clinician: "ben".into(),
    }];
    assert!(matches!(
        replan(&mut p, &first, &events, &endless, 1),
        Err(RoutingError::Invalid(e)) if e.field == "budget"
    ));
    assert_eq!(p, before);
}

#[test]
fn a_previous_plan_with_a_stop_or_a_round_twice_is_refused() {
    let mut p = morning();
    let first = plan(&p, &budget(), 1).unwrap();
    let events = [Event::ClinicianOffSick {
        at: Clock::hm(10, 0),
        clinician: "ben".into(),
    }];
    let (j, i) = first
        .rounds
        .iter()
        .enumerate()
        .find_map(|(j, r)| {
            r.stops
                .iter()
                .position(|s| s.kind == doorstep_routing::StopKind::Visit)
                .map(|i| (j, i))
        })
        .expect("a visit planned");
    let mut doubled = first.clone();
    let stop = doubled.rounds[j].stops[i].clone();
    doubled.rounds[j].stops.push(stop);
    let at = doubled.rounds[j].stops.len() - 1;
    let before = p.clone();
    match replan(&mut p, &doubled, &events, &budget(), 1) {
        Err(RoutingError::Invalid(e)) => {
            assert_eq!(e.field, format!("previous.rounds[{j}].stops[{at}]"));
            assert!(e.reason.contains("in the previous plan already"), "{e}");
        }
        other => panic!("should be refused, got {other:?}"),
    }
    assert_eq!(p, before);

    let mut two_rounds = first.clone();
    two_rounds.rounds.push(first.rounds[0].clone());
    let last = two_rounds.rounds.len() - 1;
    match replan(&mut p, &two_rounds, &events, &budget(), 1) {
        Err(RoutingError::Invalid(e)) => {
            assert_eq!(e.field, format!("previous.rounds[{last}].clinician"));
        }
        other => panic!("should be refused, got {other:?}"),
    }
}
