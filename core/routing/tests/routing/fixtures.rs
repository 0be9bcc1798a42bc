//! Small hand-built problems around one Dorset practice, where every time and distance can be
//! worked out on paper.

use doorstep_routing::{
    Budget, CareHome, Clinician, Clock, Location, Problem, Resident, Travel, Urgency, Visit, Window,
};

/// The practice all fixtures start from.
pub const BASE: Location = Location {
    lat: 50.7200,
    lon: -1.8800,
};

/// A point `km` kilometres north of the practice.
pub fn north(km: f64) -> Location {
    Location {
        lat: BASE.lat + km / 111.2,
        lon: BASE.lon,
    }
}

/// A window from `a` to `b` (hours and minutes).
pub fn window(a: (u32, u32), b: (u32, u32)) -> Window {
    Window {
        start: Clock::hm(a.0, a.1),
        end: Clock::hm(b.0, b.1),
    }
}

/// A clinician at the practice working 09:00-17:00 with the given skills.
pub fn clinician(id: &str, skills: &[&str]) -> Clinician {
    Clinician {
        id: id.into(),
        start: BASE,
        end: None,
        shift: window((9, 0), (17, 0)),
        break_: None,
        skills: skills.iter().map(|s| s.to_string()).collect(),
        max_overtime_minutes: 0,
        off_from: None,
    }
}

/// A routine visit of `minutes` at `location`, any time.
pub fn visit(id: &str, location: Location, minutes: u32) -> Visit {
    Visit {
        id: id.into(),
        location,
        windows: Vec::new(),
        minutes,
        skills: Vec::new(),
        urgency: Urgency::Routine,
        days_overdue: 0,
        pinned_to: None,
        not_at_home: false,
    }
}

/// A problem with the default speed model.
pub fn problem(clinicians: Vec<Clinician>, visits: Vec<Visit>) -> Problem {
    Problem {
        clinicians,
        visits,
        care_homes: Vec::new(),
        travel: Travel::default(),
    }
}

/// A short deterministic budget for tests.
pub fn budget() -> Budget {
    Budget::iterations(30)
}

/// A morning for two paramedics: twelve visits spread north of the practice, one needing a
/// prescriber, two with morning windows.
pub fn morning() -> Problem {
    let mut visits: Vec<Visit> = (0..12)
        .map(|i| visit(&format!("v{i}"), north(0.8 * f64::from(i + 1)), 25))
        .collect();
    visits[3].skills = vec!["prescriber".into()];
    visits[5].windows = vec![window((9, 0), (10, 30))];
    visits[8].windows = vec![window((9, 30), (11, 0))];
    problem(
        vec![
            clinician("ana", &["paramedic", "prescriber"]),
            clinician("ben", &["paramedic"]),
        ],
        visits,
    )
}

/// A care home `km` north of the practice, open to pharmacists within `window`, with
/// `residents` routine reviews of `minutes` each, the first least overdue.
pub fn care_home(id: &str, km: f64, window: Window, residents: u32, minutes: u32) -> CareHome {
    CareHome {
        id: id.into(),
        location: north(km),
        windows: vec![window],
        skills: vec!["pharmacist".into()],
        residents: (0..residents)
            .map(|i| Resident {
                id: format!("{id}-r{i}"),
                minutes,
                urgency: Urgency::Routine,
                days_overdue: i,
            })
            .collect(),
    }
}
