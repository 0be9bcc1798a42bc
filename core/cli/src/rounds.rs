//! Turns the domain's view of a day (clinicians, visit requests, care homes
//! with residents due a review) into the optimiser's problem.
//!
//! The optimiser keeps its own plain types so it can be tested and benchmarked
//! alone; this is the one place that decides how a triaged request becomes a
//! job: immediate and same-day urgencies carry over, a routine request becomes
//! routine work that grows more costly the more overdue it is, and a care home's
//! due residents become one home with a review each.

use doorstep_domain::demo::DemoNetwork;
use doorstep_domain::network::Skill;
use doorstep_domain::visit::Urgency as DomainUrgency;
use doorstep_routing::{
    Break, CareHome, Clinician, Clock, Location, Problem, Resident, Travel, Urgency, Visit, Window,
};
use jiff::civil::Time;

/// Minutes a structured medication review takes per resident.
pub const REVIEW_MINUTES: u32 = 20;

fn clock(t: Time) -> Clock {
    Clock::from_secs(
        i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second()),
    )
}

fn location(l: doorstep_domain::Location) -> Location {
    Location {
        lat: l.lat(),
        lon: l.lon(),
    }
}

fn skills(s: &[Skill]) -> Vec<String> {
    s.iter().map(|s| s.as_str().to_owned()).collect()
}

/// The optimiser's problem for the demo network's day: every clinician on
/// shift, every visit request, and the care homes with residents due. A
/// clinician whose base practice, or a request whose patient, the network
/// does not list is an error naming it: left out, an immediate visit would
/// vanish from the plan without a reason.
pub fn problem_for(demo: &DemoNetwork) -> Result<Problem, String> {
    let practice_location = |ods: &doorstep_domain::network::OdsCode| {
        demo.network
            .practices
            .iter()
            .find(|p| &p.ods_code == ods)
            .map(|p| location(p.location))
    };
    let clinicians = demo
        .clinicians
        .iter()
        .map(|c| {
            Ok(Clinician {
                id: c.id.to_string(),
                start: practice_location(&c.base_practice).ok_or_else(|| {
                    format!(
                        "clinician {}'s base practice {} is not in the network",
                        c.id, c.base_practice
                    )
                })?,
                end: None,
                shift: Window {
                    start: clock(c.shift.start()),
                    end: clock(c.shift.end()),
                },
                break_: c.shift.break_window().map(|b| Break {
                    window: Window {
                        start: clock(b.earliest),
                        end: clock(b.latest),
                    },
                    minutes: b.minutes.into(),
                }),
                skills: skills(&c.skills),
                max_overtime_minutes: 30,
                off_from: None,
            })
        })
        .collect::<Result<_, String>>()?;
    let patient_location = |nhs: &doorstep_domain::NhsNumber| {
        demo.patients
            .iter()
            .find(|p| &p.nhs_number == nhs)
            .map(|p| location(p.address.location))
    };
    let visits = demo
        .visit_requests
        .iter()
        .map(|r| {
            let (urgency, days_overdue) = match r.urgency {
                DomainUrgency::Immediate => (Urgency::Immediate, 0),
                DomainUrgency::SameDay => (Urgency::SameDay, 0),
                // Deferred, a visit due today is a day overdue tomorrow: it
                // weighs more than one with days in hand.
                DomainUrgency::Routine { due_by } if due_by <= demo.day => {
                    let overdue = (demo.day - due_by).get_days() + 1;
                    (Urgency::Routine, overdue.unsigned_abs())
                }
                DomainUrgency::Routine { .. } => (Urgency::Routine, 0),
            };
            Ok(Visit {
                id: r.id.0.to_string(),
                location: patient_location(&r.patient).ok_or_else(|| {
                    format!("visit request {}'s patient is not in the network", r.id.0)
                })?,
                windows: r
                    .time_windows
                    .iter()
                    .map(|w| Window {
                        start: clock(w.start()),
                        end: clock(w.end()),
                    })
                    .collect(),
                minutes: r.expected_minutes.into(),
                skills: skills(&r.required_skills),
                urgency,
                days_overdue,
                pinned_to: None,
                not_at_home: false,
            })
        })
        .collect::<Result<_, String>>()?;
    let care_homes = demo
        .care_homes
        .iter()
        .filter_map(|h| {
            let due = h.due_for_review(demo.day);
            (!due.is_empty()).then(|| CareHome {
                id: h.id.to_string(),
                location: location(h.location),
                windows: vec![Window {
                    start: Clock::hm(9, 30),
                    end: Clock::hm(16, 0),
                }],
                skills: vec!["pharmacist".to_owned()],
                residents: due
                    .iter()
                    .map(|r| Resident {
                        id: r.nhs_number.as_str().to_owned(),
                        minutes: REVIEW_MINUTES,
                        urgency: Urgency::Routine,
                        days_overdue: (demo.day - r.review_due).get_days().max(0).unsigned_abs(),
                    })
                    .collect(),
            })
        })
        .collect();
    Ok(Problem {
        clinicians,
        visits,
        care_homes,
        travel: Travel::default(),
    })
}

#[cfg(test)]
mod tests {
    use doorstep_domain::demo::generate;
    use jiff::civil::date;

    use super::*;

    #[test]
    fn a_dangling_reference_is_an_error_naming_it_not_a_visit_left_out() {
        let demo = generate(7, date(2026, 11, 24));
        let planned = problem_for(&demo).unwrap();
        assert_eq!(planned.visits.len(), demo.visit_requests.len());
        assert_eq!(planned.clinicians.len(), demo.clinicians.len());

        let mut no_patient = demo.clone();
        let patient = no_patient.visit_requests[0].patient.clone();
        no_patient.patients.retain(|p| p.nhs_number != patient);
        let e = problem_for(&no_patient).unwrap_err();
        assert!(e.contains("patient is not in the network"), "{e}");

        let mut no_practice = demo;
        let base = no_practice.clinicians[0].base_practice.clone();
        no_practice.network.practices.retain(|p| p.ods_code != base);
        let e = problem_for(&no_practice).unwrap_err();
        assert!(e.contains("base practice"), "{e}");
    }
}
