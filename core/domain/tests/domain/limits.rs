//! The bounds on a record's lists and texts: each is refused one past its
//! bound with the field and the rule, and the largest valid records (every
//! list full, every text at its longest in the widest characters) stay under
//! `MAX_RECORD_JSON_BYTES`, which is itself far under the sync endpoint's
//! 4 MiB body limit.

use doorstep_domain::medication_review::{
    ActionKind, MAX_ACTIONS, MAX_MEDICINES_REVIEWED, MAX_PROBLEMS, MedicationReview,
    MedicationReviewRecord, MedicineReviewed, Problem, ReviewAction, StoppStartCriterion,
};
use doorstep_domain::network::{CareHomeId, ClinicianId, DeviceId, OdsCode};
use doorstep_domain::news2::{Consciousness, MAX_ADVICE_CHARS, Observations, ObservationsInput};
use doorstep_domain::patient::Scale2Prescription;
use doorstep_domain::record::{
    FollowUpTask, MAX_FOLLOW_UP_TASKS, MAX_MERGES, MAX_OBSERVATION_SETS, MAX_RECORD_JSON_BYTES,
    ObservationSet, Outcome, RECORDED_UNTIL, RecordId, RecordVersion, ReferralUrgency, TaskOwner,
    VersionId, VersionMeta, VisitContent, VisitRecord, parse_checked,
};
use doorstep_domain::text::{FreeText, MAX_FREE_TEXT, MAX_SHORT_TEXT, ShortText};
use doorstep_domain::visit::VisitRequestId;
use doorstep_domain::{NhsNumber, ValidationError};
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

/// The endpoint's body limit (`doorstep_server::app::MAX_BODY_BYTES`).
const ENDPOINT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// A character that takes 4 bytes in UTF-8, the most serde_json writes for
/// any character a text may hold.
const WIDE: &str = "\u{1D11E}";

fn widest_short() -> ShortText {
    ShortText::parse("t", &WIDE.repeat(MAX_SHORT_TEXT)).unwrap()
}

fn widest_free() -> FreeText {
    FreeText::parse("t", &WIDE.repeat(MAX_FREE_TEXT)).unwrap()
}

/// The longest instant jiff writes of those a record may hold (before
/// [`RECORDED_UNTIL`]): nanoseconds.
fn longest_instant(offset_minutes: i64) -> Timestamp {
    RECORDED_UNTIL - SignedDuration::from_hours(48)
        + SignedDuration::from_nanos(123_456_789)
        + SignedDuration::from_mins(offset_minutes)
}

fn longest_slug(prefix: &str) -> String {
    format!("{prefix}{}", "z".repeat(64 - prefix.len()))
}

fn meta() -> VersionMeta {
    VersionMeta {
        record_id: RecordId(Uuid::from_u128(1)),
        version_id: VersionId(Uuid::from_u128(2)),
        supersedes: Some(VersionId(Uuid::from_u128(3))),
        merges: (0..MAX_MERGES as u128)
            .map(|n| VersionId(Uuid::from_u128(100 + n)))
            .collect(),
        author: ClinicianId::parse(&longest_slug("para")).unwrap(),
        device: DeviceId::parse(&longest_slug("phone")).unwrap(),
        written_at: longest_instant(1_000),
    }
}

/// Scale 2 on oxygen (so a prescription is cited) with three-digit values,
/// every one of which scores.
fn widest_observation_set(minute: i64) -> ObservationSet {
    let values = Observations::new(&ObservationsInput {
        respiration_rate: 90,
        spo2: 100,
        spo2_scale: 2,
        supplemental_oxygen: true,
        systolic_bp: 320,
        pulse: 320,
        consciousness: Consciousness::Unresponsive,
        temperature: 35.1,
    })
    .unwrap();
    let prescription = Scale2Prescription {
        prescribed_by: widest_short(),
        // Not after the readings (as a record must be); every date a record
        // may hold is as wide as any other (a four-digit year).
        prescribed_on: longest_instant(0).to_zoned(jiff::tz::TimeZone::UTC).date(),
    };
    ObservationSet::record(longest_instant(minute), values, Some(prescription)).unwrap()
}

/// Swaps every stored advice for the longest the rules allow, in the widest
/// character it may hold (control characters, which serde_json would write as
/// six bytes, are refused).
fn with_widest_advice(json: &str, sets: usize) -> String {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    let advice = WIDE.repeat(MAX_ADVICE_CHARS);
    for i in 0..sets {
        value["content"]["observations"][i]["score"]["advice"] = advice.clone().into();
    }
    value.to_string()
}

fn largest_visit() -> VisitRecord {
    let text = widest_free();
    RecordVersion {
        meta: meta(),
        content: VisitContent {
            visit_request: Some(VisitRequestId(Uuid::from_u128(7))),
            patient: NhsNumber::parse("9990000018").unwrap(),
            practice: OdsCode::parse("D99001").unwrap(),
            arrived_at: longest_instant(0),
            departed_at: Some(longest_instant(1_000)),
            observations: (0..MAX_OBSERVATION_SETS)
                .map(|i| widest_observation_set(i64::try_from(i).unwrap()))
                .collect(),
            presenting_complaint: text.clone(),
            assessment: text.clone(),
            treatment: text.clone(),
            outcome: Outcome::ReferredToService {
                service: widest_short(),
                urgency: ReferralUrgency::Emergency,
            },
            safety_netting: text,
            follow_up: vec![
                FollowUpTask {
                    description: widest_short(),
                    owner: TaskOwner::CommunityPharmacy,
                    due: Some(date(2099, 12, 31)),
                };
                MAX_FOLLOW_UP_TASKS
            ],
        },
    }
}

fn largest_review() -> MedicationReviewRecord {
    let name = widest_short();
    RecordVersion {
        meta: meta(),
        content: MedicationReview {
            resident: NhsNumber::parse("9990000018").unwrap(),
            care_home: CareHomeId::parse(&longest_slug("home")).unwrap(),
            reviewed_on: date(2026, 11, 24),
            medicines_reviewed: vec![
                MedicineReviewed {
                    name: name.clone(),
                    dose: widest_short(),
                    indication: Some(widest_short()),
                };
                MAX_MEDICINES_REVIEWED
            ],
            problems: vec![
                Problem {
                    description: widest_short(),
                    medicine: Some(name.clone()),
                    criterion: Some(StoppStartCriterion::parse("STOPP K40").unwrap()),
                };
                MAX_PROBLEMS
            ],
            actions: vec![
                ReviewAction {
                    kind: ActionKind::Monitor,
                    medicine: Some(name),
                    detail: widest_short(),
                    owner: TaskOwner::CommunityPharmacy,
                    addresses_problem: Some(MAX_PROBLEMS - 1),
                };
                MAX_ACTIONS
            ],
            shared_decision_notes: widest_free(),
            follow_up_on: Some(date(2026, 12, 22)),
        },
    }
}

#[test]
fn the_largest_valid_records_stay_under_the_stated_bound() {
    let visit = with_widest_advice(
        &serde_json::to_string(&largest_visit()).unwrap(),
        MAX_OBSERVATION_SETS,
    );
    let review = serde_json::to_string(&largest_review()).unwrap();
    let visit = serde_json::to_string(&parse_checked::<VisitRecord>(&visit).unwrap()).unwrap();
    let review =
        serde_json::to_string(&parse_checked::<MedicationReviewRecord>(&review).unwrap()).unwrap();
    for (what, len) in [("visit", visit.len()), ("review", review.len())] {
        assert!(
            len <= MAX_RECORD_JSON_BYTES,
            "the largest {what} is {len} bytes"
        );
    }
    // The bound is close to the real worst case, not a guess far above it.
    assert!(
        visit.len() > MAX_RECORD_JSON_BYTES * 9 / 10,
        "{}",
        visit.len()
    );
    const { assert!(MAX_RECORD_JSON_BYTES * 4 < ENDPOINT_BODY_LIMIT) };
}

fn refused_visit(v: &VisitRecord) -> ValidationError {
    parse_checked::<VisitRecord>(&serde_json::to_string(v).unwrap()).unwrap_err()
}

fn refused_review(r: &MedicationReviewRecord) -> ValidationError {
    parse_checked::<MedicationReviewRecord>(&serde_json::to_string(r).unwrap()).unwrap_err()
}

#[test]
fn a_visit_with_one_observation_set_too_many_is_refused_by_field() {
    let mut v = largest_visit();
    let last = widest_observation_set(999);
    v.content.observations.push(last);
    let e = refused_visit(&v);
    assert_eq!(e.field, "content.observations");
    assert_eq!(
        e.reason,
        format!("must have at most {MAX_OBSERVATION_SETS} entries")
    );
}

#[test]
fn a_visit_with_one_follow_up_task_too_many_is_refused_by_field() {
    let mut v = largest_visit();
    v.content.follow_up.push(v.content.follow_up[0].clone());
    let e = refused_visit(&v);
    assert_eq!(e.field, "content.follow_up");
    assert!(!e.reason.contains(WIDE), "{}", e.reason);
}

#[test]
fn a_review_with_one_entry_too_many_in_any_list_is_refused_by_field() {
    let mut r = largest_review();
    r.content
        .medicines_reviewed
        .push(r.content.medicines_reviewed[0].clone());
    assert_eq!(refused_review(&r).field, "content.medicines_reviewed");
    let mut r = largest_review();
    r.content.problems.push(r.content.problems[0].clone());
    assert_eq!(refused_review(&r).field, "content.problems");
    let mut r = largest_review();
    r.content.actions.push(r.content.actions[0].clone());
    let e = refused_review(&r);
    assert_eq!(e.field, "content.actions");
    assert_eq!(e.reason, format!("must have at most {MAX_ACTIONS} entries"));
}

#[test]
fn a_stored_advice_longer_than_the_bound_is_refused_by_field() {
    let mut v = largest_visit();
    v.content.observations.truncate(1);
    let mut value = serde_json::to_value(&v).unwrap();
    value["content"]["observations"][0]["score"]["advice"] =
        "Call 999 now. ".repeat(MAX_ADVICE_CHARS).into();
    let e = parse_checked::<VisitRecord>(&value.to_string()).unwrap_err();
    assert_eq!(e.field, "content.observations[0].score.advice");
    assert_eq!(
        e.reason,
        format!("longer than {MAX_ADVICE_CHARS} characters")
    );
}
