//! Synthetic records for tests and benchmarks in this crate and its
//! neighbours (the endpoint's suites, the fault-injection runs, the load
//! benchmark). Compiled only with the `fixtures` feature or under test.
//!
//! Every NHS number is in the `999` test range and every text is invented; the
//! content varies with a seed so that stored rows are not all alike.

use doorstep_domain::NhsNumber;
use doorstep_domain::medication_review::{
    ActionKind, MedicationReview, MedicationReviewRecord, MedicineReviewed, Problem, ReviewAction,
};
use doorstep_domain::network::{CareHomeId, OdsCode};
use doorstep_domain::news2::{Consciousness, Observations, ObservationsInput};
use doorstep_domain::record::{
    FollowUpTask, ObservationSet, Outcome, RecordVersion, ReferralUrgency, TaskOwner, VersionMeta,
    VisitContent, VisitRecord,
};
use doorstep_domain::text::{FreeText, ShortText};
use jiff::{SignedDuration, Timestamp};

use crate::wire::{Change, ChangeBody, ChangeId};

/// A test-range NHS number chosen by `seed` (always valid).
pub fn nhs_number(seed: u64) -> NhsNumber {
    let mut stem = 999_000_000 + u32::try_from(seed % 900_000).expect("below 900,000");
    loop {
        if let Some(n) = NhsNumber::from_stem(stem) {
            return n;
        }
        stem += 1;
    }
}

fn short(s: &str) -> ShortText {
    ShortText::parse("fixture", s).expect("fixture text is valid")
}

fn free(s: &str) -> FreeText {
    FreeText::parse("fixture", s).expect("fixture text is valid")
}

/// A complete, valid visit record for `meta`, its content varied by `seed`:
/// arrival an hour before `meta.written_at`, two NEWS2 sets, a referral.
pub fn visit_record(meta: VersionMeta, seed: u64) -> VisitRecord {
    let arrived_at = meta.written_at - SignedDuration::from_mins(60);
    let at = |mins: i64| arrived_at + SignedDuration::from_mins(mins);
    let obs = |pulse: u16| {
        Observations::new(&ObservationsInput {
            respiration_rate: 18 + u16::try_from(seed % 6).expect("small"),
            spo2: 95,
            spo2_scale: 1,
            supplemental_oxygen: false,
            systolic_bp: 120,
            pulse,
            consciousness: Consciousness::Alert,
            temperature: 37.2,
        })
        .expect("fixture observations are valid")
    };
    let pulse = 70 + u16::try_from(seed % 40).expect("small");
    RecordVersion {
        meta,
        content: VisitContent {
            visit_request: None,
            patient: nhs_number(seed),
            practice: OdsCode::parse("D99001").expect("valid code"),
            arrived_at,
            departed_at: Some(at(45)),
            observations: vec![
                ObservationSet::record(at(5), obs(pulse), None).expect("valid set"),
                ObservationSet::record(at(35), obs(pulse - 5), None).expect("valid set"),
            ],
            presenting_complaint: free("Fall at home earlier today, now sitting in a chair"),
            assessment: free("No head injury; bruising to left hip; mobilising with frame"),
            treatment: free("Paracetamol 1 g given; frame adjusted"),
            outcome: Outcome::ReferredToGp {
                urgency: ReferralUrgency::Soon,
            },
            safety_netting: free("Call 111 if pain worsens or unable to weight-bear"),
            follow_up: vec![FollowUpTask {
                description: short("Falls team referral"),
                owner: TaskOwner::Gp,
                due: None,
            }],
        },
    }
}

/// A complete, valid medication review for `meta`, its resident chosen by `seed`.
pub fn medication_review(meta: VersionMeta, seed: u64) -> MedicationReviewRecord {
    let reviewed_on = meta.written_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    RecordVersion {
        meta,
        content: MedicationReview {
            resident: nhs_number(seed),
            care_home: CareHomeId::parse("the-elms").expect("valid id"),
            reviewed_on,
            medicines_reviewed: vec![MedicineReviewed {
                name: short("Omeprazole 20 mg"),
                dose: short("Once daily"),
                indication: None,
            }],
            problems: vec![Problem {
                description: short("No current indication recorded"),
                medicine: Some(short("Omeprazole 20 mg")),
                criterion: None,
            }],
            actions: vec![ReviewAction {
                kind: ActionKind::Monitor,
                medicine: None,
                detail: short("Record symptoms weekly"),
                owner: TaskOwner::CareHome,
                addresses_problem: Some(0),
            }],
            shared_decision_notes: free("Resident agrees to a trial without"),
            follow_up_on: None,
        },
    }
}

/// A change carrying [`visit_record`] for `meta`, with `change_id`.
pub fn visit_change(change_id: ChangeId, meta: VersionMeta, seed: u64) -> Change {
    Change {
        change_id,
        body: ChangeBody::VisitRecord(visit_record(meta, seed)),
    }
}

/// A fixed instant for snapshot tests: 24 November 2026, 10:45 UTC.
pub fn instant() -> Timestamp {
    "2026-11-24T10:45:00Z".parse().expect("valid timestamp")
}
