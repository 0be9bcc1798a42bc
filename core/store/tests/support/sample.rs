//! Synthetic clinical data for the store's tests, benchmarks and kill-test
//! writer: valid visit records, amendments, medication reviews, patient
//! summaries and rounds. Every NHS number is in the `999` test range and
//! every name is made up.
//!
//! It is one file included by path (`#[path]`) into the integration tests,
//! the benchmark and the crash-writer binary, so all three write the same
//! shape of record.

use doorstep_domain::NhsNumber;
use doorstep_domain::location::Location;
use doorstep_domain::medication_review::{
    ActionKind, MedicationReview, MedicationReviewRecord, MedicineReviewed, ReviewAction,
};
use doorstep_domain::network::{CareHomeId, ClinicianId, DeviceId, OdsCode};
use doorstep_domain::news2::{Consciousness, Observations, ObservationsInput};
use doorstep_domain::patient::{
    Address, CareHome, KeyFlags, Patient, PersonName, Postcode, Resident,
};
use doorstep_domain::record::{
    ObservationSet, Outcome, RecordId, RecordVersion, TaskOwner, VersionId, VersionMeta,
    VisitContent, VisitRecord,
};
use doorstep_domain::text::{FreeText, ShortText};
use doorstep_domain::visit::{Urgency, VisitRequest, VisitRequestId};
use doorstep_store::{Round, RoundStop, StopWork};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

/// The NHS number of synthetic patient `n` (test range, valid check digit).
pub fn nhs_number(n: u32) -> NhsNumber {
    (0..)
        .find_map(|k| NhsNumber::from_stem(999_000_000 + n * 10 + k))
        .expect("some stem near n has a valid check digit")
}

/// A distinctive family name for patient `n`, so a test can search the file for it.
pub fn family_name(n: u32) -> String {
    format!("Quenbyfield{n}")
}

fn text(s: &str) -> ShortText {
    ShortText::parse("sample", s).expect("sample text is valid")
}

fn free(s: &str) -> FreeText {
    FreeText::parse("sample", s).expect("sample text is valid")
}

/// The clinician every sample is written by.
pub fn author() -> ClinicianId {
    ClinicianId::parse("para-1").expect("valid id")
}

/// The device every sample is written on.
pub fn device() -> DeviceId {
    DeviceId::parse("phone-1").expect("valid id")
}

/// The clinical content of a visit to patient `n`, arriving at `arrived_at`.
pub fn visit_content(n: u32, arrived_at: Timestamp) -> VisitContent {
    let observations = Observations::new(&ObservationsInput {
        respiration_rate: 18 + (n % 6) as u16,
        spo2: 94 + (n % 4) as u16,
        spo2_scale: 1,
        supplemental_oxygen: false,
        systolic_bp: 118 + (n % 30) as u16,
        pulse: 72 + (n % 40) as u16,
        consciousness: Consciousness::Alert,
        temperature: 37.2,
    })
    .expect("sample observations are in range");
    VisitContent {
        visit_request: None,
        patient: nhs_number(n),
        practice: OdsCode::parse("D99001").expect("valid code"),
        arrived_at,
        departed_at: Some(arrived_at + SignedDuration::from_mins(40)),
        observations: vec![
            ObservationSet::record(
                arrived_at + SignedDuration::from_mins(5),
                observations,
                None,
            )
            .expect("scale 1 needs no prescription"),
        ],
        presenting_complaint: free("Fall at home, on the floor for an hour, now in chair"),
        assessment: free(
            "Alert, no head injury, bruising to left hip, able to weight bear with frame. \
             Lying and standing blood pressure taken; no postural drop.",
        ),
        treatment: free("Paracetamol given. Falls advice and frame height adjusted."),
        outcome: Outcome::ManagedAtHome,
        safety_netting: free("Call 111 or the practice if pain worsens or unable to stand."),
        follow_up: vec![doorstep_domain::record::FollowUpTask {
            description: text("Falls team referral"),
            owner: TaskOwner::Gp,
            due: None,
        }],
    }
}

/// The first version of a new visit record for patient `n`.
pub fn new_visit(n: u32, arrived_at: Timestamp) -> VisitRecord {
    RecordVersion {
        meta: VersionMeta::first(
            RecordId(Uuid::now_v7()),
            VersionId(Uuid::now_v7()),
            author(),
            device(),
            arrived_at + SignedDuration::from_mins(45),
        ),
        content: visit_content(n, arrived_at),
    }
}

/// An amendment of `previous` written by `device`, with a changed treatment.
pub fn amend_visit(previous: &VisitRecord, device: &str, treatment: &str) -> VisitRecord {
    let mut content = previous.content.clone();
    content.treatment = free(treatment);
    RecordVersion {
        meta: previous.meta.amend(
            VersionId(Uuid::now_v7()),
            author(),
            DeviceId::parse(device).expect("valid id"),
            previous.meta.written_at + SignedDuration::from_mins(30),
        ),
        content,
    }
}

/// The first version of a medication review of resident `n`.
pub fn new_review(n: u32, day: Date) -> MedicationReviewRecord {
    let medicine = text("Zopiclone 3.75 mg at night");
    RecordVersion {
        meta: VersionMeta::first(
            RecordId(Uuid::now_v7()),
            VersionId(Uuid::now_v7()),
            ClinicianId::parse("pharm-1").expect("valid id"),
            DeviceId::parse("ipad-1").expect("valid id"),
            day.at(15, 0, 0, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .expect("valid time")
                .timestamp(),
        ),
        content: MedicationReview {
            resident: nhs_number(n),
            care_home: CareHomeId::parse("the-elms").expect("valid id"),
            reviewed_on: day,
            medicines_reviewed: vec![MedicineReviewed {
                name: medicine.clone(),
                dose: text("3.75 mg at night"),
                indication: None,
            }],
            problems: vec![],
            actions: vec![ReviewAction {
                kind: ActionKind::Reduce,
                medicine: Some(medicine),
                detail: text("Taper over four weeks"),
                owner: TaskOwner::Gp,
                addresses_problem: None,
            }],
            shared_decision_notes: free("Resident and daughter agree to a slow taper."),
            follow_up_on: None,
        },
    }
}

/// The summary of patient `n`.
pub fn patient(n: u32) -> Patient {
    Patient {
        nhs_number: nhs_number(n),
        name: PersonName {
            given: text("Winifred"),
            family: text(&family_name(n)),
        },
        date_of_birth: jiff::civil::date(1938, 3, 14),
        address: Address {
            lines: vec![text(&format!("{} Heath Close", n + 1))],
            town: text("Wimborne"),
            postcode: Postcode::parse("BH21 1AA").expect("valid postcode"),
            location: Location::new(50.80 + f64::from(n % 50) * 0.001, -1.98).expect("valid"),
        },
        registered_practice: OdsCode::parse("D99001").expect("valid code"),
        care_home: None,
        housebound: true,
        flags: KeyFlags::default(),
        allergies: vec![text("Penicillin")],
        medicines: vec![
            text("Amlodipine 5 mg once daily"),
            text("Apixaban 5 mg twice daily"),
            text("Furosemide 40 mg in the morning"),
        ],
        notes: free("Keysafe by the back door. Small dog, friendly."),
    }
}

/// A care home with patients `0..residents` living there, each due a review
/// on 20 November 2026.
pub fn care_home(residents: u32) -> CareHome {
    CareHome {
        id: CareHomeId::parse("the-elms").expect("valid id"),
        name: text("The Elms"),
        location: Location::new(50.8, -1.9).expect("valid"),
        aligned_practice: OdsCode::parse("D99001").expect("valid code"),
        residents: (0..residents)
            .map(|n| Resident {
                nhs_number: nhs_number(n),
                review_due: jiff::civil::date(2026, 11, 20),
            })
            .collect(),
    }
}

/// A round on `day` visiting patients `0..visits`, one every few minutes.
pub fn round(day: Date, visits: u32) -> Round {
    let start = day
        .at(8, 30, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("valid time")
        .timestamp();
    let stops = (0..visits)
        .map(|n| {
            let planned_start = start + SignedDuration::from_mins(i64::from(n) * 6);
            RoundStop {
                planned_start,
                planned_end: planned_start + SignedDuration::from_mins(40),
                work: StopWork::Visit {
                    request: VisitRequest {
                        id: VisitRequestId(Uuid::now_v7()),
                        patient: nhs_number(n),
                        practice: OdsCode::parse("D99001").expect("valid code"),
                        reason: text("Increasing breathlessness, known COPD"),
                        urgency: Urgency::SameDay,
                        required_skills: vec![],
                        time_windows: vec![],
                        expected_minutes: 40,
                        requested_at: start,
                        triaged_by: ClinicianId::parse("dr-duty").expect("valid id"),
                    },
                },
            }
        })
        .collect();
    Round {
        day,
        clinician: author(),
        stops,
    }
}
