//! The serde form of every record type, pinned by snapshots, and every
//! cross-field rule of visit records, medication reviews and version histories.

use doorstep_domain::history::{Head, head};
use doorstep_domain::medication_review::{
    ActionKind, MedicationReview, MedicationReviewRecord, MedicineReviewed, Problem, ReviewAction,
    StoppStartCriterion,
};
use doorstep_domain::network::{CareHomeId, ClinicianId, DeviceId, OdsCode};
use doorstep_domain::news2::{Consciousness, Observations, ObservationsInput};
use doorstep_domain::patient::Scale2Prescription;
use doorstep_domain::record::{
    FollowUpTask, MAX_MERGES, ObservationSet, Outcome, RecordId, RecordVersion, ReferralUrgency,
    TaskOwner, Validate, VersionId, VersionMeta, VisitContent, VisitRecord, parse_checked,
};
use doorstep_domain::text::{FreeText, ShortText};
use doorstep_domain::visit::{Urgency, VisitRequestId};
use doorstep_domain::{NhsNumber, ValidationError};
use jiff::Timestamp;
use jiff::civil::date;
use uuid::Uuid;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn short(s: &str) -> ShortText {
    ShortText::parse("t", s).unwrap()
}

fn free(s: &str) -> FreeText {
    FreeText::parse("t", s).unwrap()
}

fn patient() -> NhsNumber {
    NhsNumber::parse("9990000018").unwrap()
}

fn meta(n: u128, supersedes: Option<u128>, at: &str) -> VersionMeta {
    VersionMeta {
        record_id: RecordId(Uuid::from_u128(1)),
        version_id: VersionId(Uuid::from_u128(n)),
        supersedes: supersedes.map(|s| VersionId(Uuid::from_u128(s))),
        merges: Vec::new(),
        author: ClinicianId::parse("para-ahmed").unwrap(),
        device: DeviceId::parse("phone-1").unwrap(),
        written_at: ts(at),
    }
}

fn observations(spo2_scale: u8) -> Observations {
    Observations::new(&ObservationsInput {
        respiration_rate: 22,
        spo2: 94,
        spo2_scale,
        supplemental_oxygen: false,
        systolic_bp: 105,
        pulse: 112,
        consciousness: Consciousness::Alert,
        temperature: 38.4,
    })
    .unwrap()
}

fn visit() -> VisitRecord {
    RecordVersion {
        meta: meta(10, None, "2026-11-24T10:45:00Z"),
        content: VisitContent {
            visit_request: Some(VisitRequestId(Uuid::from_u128(7))),
            patient: patient(),
            practice: OdsCode::parse("D99001").unwrap(),
            arrived_at: ts("2026-11-24T10:00:00Z"),
            departed_at: Some(ts("2026-11-24T10:40:00Z")),
            observations: vec![
                ObservationSet::record(ts("2026-11-24T10:05:00Z"), observations(1), None).unwrap(),
            ],
            presenting_complaint: free("Increasing breathlessness over two days"),
            assessment: free("Likely lower respiratory tract infection"),
            treatment: free("Paracetamol 1 g given"),
            outcome: Outcome::ReferredToGp {
                urgency: ReferralUrgency::Urgent,
            },
            safety_netting: free("Call 999 if breathing worsens or lips turn blue"),
            follow_up: vec![FollowUpTask {
                description: short("Review chest in 48 hours"),
                owner: TaskOwner::VisitingService,
                due: Some(date(2026, 11, 26)),
            }],
        },
    }
}

fn review() -> MedicationReviewRecord {
    RecordVersion {
        meta: meta(20, None, "2026-11-24T14:00:00Z"),
        content: MedicationReview {
            resident: patient(),
            care_home: CareHomeId::parse("the-elms").unwrap(),
            reviewed_on: date(2026, 11, 24),
            medicines_reviewed: vec![
                MedicineReviewed {
                    name: short("Zopiclone 3.75 mg"),
                    dose: short("One at night"),
                    indication: Some(short("Insomnia")),
                },
                MedicineReviewed {
                    name: short("Omeprazole 20 mg"),
                    dose: short("Once daily"),
                    indication: None,
                },
            ],
            problems: vec![Problem {
                description: short("Hypnotic in a resident with falls"),
                medicine: Some(short("Zopiclone 3.75 mg")),
                criterion: Some(StoppStartCriterion::parse("STOPP K4").unwrap()),
            }],
            actions: vec![
                ReviewAction {
                    kind: ActionKind::Reduce,
                    medicine: Some(short("zopiclone 3.75 mg")),
                    detail: short("Taper over four weeks then stop"),
                    owner: TaskOwner::Gp,
                    addresses_problem: Some(0),
                },
                ReviewAction {
                    kind: ActionKind::Monitor,
                    medicine: None,
                    detail: short("Record sleep and falls weekly"),
                    owner: TaskOwner::CareHome,
                    addresses_problem: Some(0),
                },
            ],
            shared_decision_notes: free("Resident and daughter agree to a slow taper"),
            follow_up_on: Some(date(2026, 12, 22)),
        },
    }
}

#[test]
fn visit_record_serde_form() {
    let v = visit();
    v.validate().unwrap();
    insta::assert_json_snapshot!("visit_record", v);
    let json = serde_json::to_string(&v).unwrap();
    assert_eq!(parse_checked::<VisitRecord>(&json).unwrap(), v);
}

#[test]
fn medication_review_serde_form() {
    let r = review();
    r.validate().unwrap();
    insta::assert_json_snapshot!("medication_review", r);
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(parse_checked::<MedicationReviewRecord>(&json).unwrap(), r);
}

#[test]
fn every_outcome_serde_form() {
    let outcomes = vec![
        Outcome::ManagedAtHome,
        Outcome::ReferredToGp {
            urgency: ReferralUrgency::Soon,
        },
        Outcome::ReferredToService {
            service: short("Falls team"),
            urgency: ReferralUrgency::Routine,
        },
        Outcome::ConveyedToHospital {
            destination: short("Poole Hospital ED"),
        },
        Outcome::EmergencyHandover {
            reference: short("Incident 1234"),
        },
        Outcome::PatientNotAtHome,
        Outcome::Declined {
            capacity_assessed: true,
        },
    ];
    insta::assert_json_snapshot!("outcomes", outcomes);
}

fn refused(v: &VisitRecord) -> ValidationError {
    let json = serde_json::to_string(v).unwrap();
    parse_checked::<VisitRecord>(&json).unwrap_err()
}

#[test]
fn a_stored_score_keeps_the_advice_it_was_shown_with() {
    let json = serde_json::to_string(&visit())
        .unwrap()
        .replace("High risk (NEWS2 7 or more)", "Older wording");
    let v = parse_checked::<VisitRecord>(&json).unwrap();
    assert!(
        v.content
            .latest_score()
            .unwrap()
            .advice
            .starts_with("Older wording")
    );
}

#[test]
fn organisation_and_request_types_serde_forms() {
    let d = doorstep_domain::demo::generate(1, date(2026, 11, 24));
    let patient = d.patients.iter().find(|p| p.housebound).unwrap();
    insta::assert_json_snapshot!("patient", patient);
    insta::assert_json_snapshot!("visit_request", d.visit_requests[0]);
    insta::assert_json_snapshot!("clinician", d.clinicians[0]);
    insta::assert_json_snapshot!("practice", d.network.practices[0]);
    let mut home = d.care_homes[0].clone();
    home.residents.truncate(2);
    insta::assert_json_snapshot!("care_home", home);
}

#[test]
fn departure_before_arrival_is_refused() {
    let mut v = visit();
    v.content.departed_at = Some(ts("2026-11-24T09:00:00Z"));
    assert_eq!(refused(&v).field, "content.departed_at");
}

#[test]
fn observations_outside_the_visit_are_refused() {
    let mut v = visit();
    v.content.observations =
        vec![ObservationSet::record(ts("2026-11-24T11:00:00Z"), observations(1), None).unwrap()];
    assert_eq!(refused(&v).field, "content.observations[0].taken_at");
}

#[test]
fn observations_out_of_order_are_refused() {
    let mut v = visit();
    v.content.observations.insert(
        0,
        ObservationSet::record(ts("2026-11-24T10:30:00Z"), observations(1), None).unwrap(),
    );
    assert_eq!(refused(&v).field, "content.observations");
}

#[test]
fn observations_when_not_at_home_are_refused() {
    let mut v = visit();
    v.content.outcome = Outcome::PatientNotAtHome;
    assert_eq!(refused(&v).field, "content.observations");
}

#[test]
fn scale_2_without_a_cited_prescription_is_refused() {
    let e = ObservationSet::record(ts("2026-11-24T10:05:00Z"), observations(2), None).unwrap_err();
    assert_eq!(e.field, "values.spo2_scale");
    let prescription = Scale2Prescription {
        prescribed_by: short("Respiratory consultant"),
        prescribed_on: date(2026, 1, 10),
    };
    let ok = ObservationSet::record(
        ts("2026-11-24T10:05:00Z"),
        observations(2),
        Some(prescription.clone()),
    );
    assert!(ok.is_ok());
    let e = ObservationSet::record(
        ts("2026-11-24T10:05:00Z"),
        observations(1),
        Some(prescription),
    )
    .unwrap_err();
    assert_eq!(e.field, "scale2_prescription");
}

#[test]
fn dates_and_times_outside_1990_to_2099_are_refused_by_field_without_echoing_them() {
    let check = |v: &VisitRecord, field: &str| {
        let e = refused(v);
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains("1990 to 2099"), "{e}");
        assert!(
            !e.to_string().contains("1970") && !e.to_string().contains("2100"),
            "{e}"
        );
    };
    // A device clock reset to the epoch.
    let mut v = visit();
    v.meta.written_at = ts("1970-01-01T00:00:00Z");
    check(&v, "meta.written_at");
    let mut v = visit();
    v.content.arrived_at = ts("1970-01-01T00:00:00Z");
    check(&v, "content.arrived_at");
    let mut v = visit();
    v.content.departed_at = Some(ts("2100-01-01T00:00:00Z"));
    check(&v, "content.departed_at");
    // Observations of a visit with no departure, in a mistyped year.
    let mut v = visit();
    v.content.departed_at = None;
    v.content
        .observations
        .push(ObservationSet::record(ts("2100-01-01T00:00:00Z"), observations(1), None).unwrap());
    check(&v, "content.observations[1].taken_at");
    let mut v = visit();
    v.content.observations = vec![
        ObservationSet::record(
            ts("2026-11-24T10:05:00Z"),
            observations(2),
            Some(Scale2Prescription {
                prescribed_by: short("Respiratory consultant"),
                prescribed_on: date(1970, 1, 10),
            }),
        )
        .unwrap(),
    ];
    check(
        &v,
        "content.observations[0].scale2_prescription.prescribed_on",
    );
    let mut v = visit();
    v.content.follow_up[0].due = Some(date(2126, 11, 26));
    check(&v, "content.follow_up[0].due");
    // The edges themselves: the first instant of 1990 and the last of 2099.
    let mut v = visit();
    v.content.arrived_at = ts("1990-01-01T00:00:00Z");
    assert!(v.validate().is_ok());
    v.meta.written_at = ts("2099-12-31T23:59:59.999999999Z");
    v.content.departed_at = Some(ts("2099-12-31T23:59:59.999999999Z"));
    assert!(v.validate().is_ok());

    let reviewed = |r: &MedicationReviewRecord, field: &str| {
        let e = review_refused(r);
        assert_eq!(e.field, field, "{e}");
    };
    let mut r = review();
    r.content.reviewed_on = date(1970, 1, 1);
    r.content.follow_up_on = None;
    reviewed(&r, "content.reviewed_on");
    let mut r = review();
    r.content.follow_up_on = Some(date(2100, 1, 1));
    reviewed(&r, "content.follow_up_on");
}

#[test]
fn a_scale_2_prescription_dated_after_the_observations_is_refused() {
    let taken = |at: &str, on| {
        let prescription = Scale2Prescription {
            prescribed_by: short("Respiratory consultant"),
            prescribed_on: on,
        };
        let mut v = visit();
        v.content.arrived_at = ts("2026-06-01T00:00:00Z");
        v.content.departed_at = Some(ts("2026-06-30T00:00:00Z"));
        v.content.observations =
            vec![ObservationSet::record(ts(at), observations(2), Some(prescription)).unwrap()];
        v.validate()
    };
    assert!(taken("2026-06-10T10:05:00Z", date(2026, 6, 10)).is_ok());
    let e = taken("2026-06-10T10:05:00Z", date(2026, 6, 11)).unwrap_err();
    assert_eq!(
        e.field,
        "content.observations[0].scale2_prescription.prescribed_on"
    );
    // 23:30 UTC in June is 00:30 the next day in the UK.
    assert!(taken("2026-06-10T23:30:00Z", date(2026, 6, 11)).is_ok());
    assert!(taken("2026-06-10T23:30:00Z", date(2026, 6, 12)).is_err());
}

#[test]
fn a_stored_score_that_disagrees_with_its_values_is_refused() {
    let json = serde_json::to_string(&visit())
        .unwrap()
        .replace("\"total\":7", "\"total\":2");
    let e = parse_checked::<VisitRecord>(&json).unwrap_err();
    assert_eq!(e.field, "content.observations[0].score");
    assert!(e.reason.contains("does not match"));
}

#[test]
fn unknown_fields_in_a_record_are_refused_by_path() {
    let json = serde_json::to_string(&visit())
        .unwrap()
        .replace("\"treatment\":", "\"treatmnet\":\"x\",\"treatment\":");
    let e = parse_checked::<VisitRecord>(&json).unwrap_err();
    assert_eq!(e.field, "content.treatmnet");
    assert!(e.reason.contains("unknown field"));
}

#[test]
fn malformed_dates_and_times_are_refused_without_echoing_them() {
    let review = serde_json::to_string(&review()).unwrap();
    let visit = serde_json::to_string(&visit()).unwrap();
    for (json, bad, field) in [
        (&review, "\"2026-11-24x\"", "content.reviewed_on"),
        (&review, "\"2026-02-30\"", "content.reviewed_on"),
        (&visit, "\"2026-11-24T10:00:00Zjunk\"", "content.arrived_at"),
        (&visit, "\"2026-11-24T10:00:00\"", "content.arrived_at"),
        (&visit, "\"2026-11-24 10:00Zx\"", "content.arrived_at"),
    ] {
        let good = if field == "content.reviewed_on" {
            "\"reviewed_on\":\"2026-11-24\""
        } else {
            "\"arrived_at\":\"2026-11-24T10:00:00Z\""
        };
        let (key, _) = good.split_once(':').unwrap();
        let json = json.replace(good, &format!("{key}:{bad}"));
        let e = match field {
            "content.reviewed_on" => parse_checked::<MedicationReviewRecord>(&json).unwrap_err(),
            _ => parse_checked::<VisitRecord>(&json).unwrap_err(),
        };
        assert_eq!(e.field, field, "{bad}");
        for piece in ["2026-11-24", "2026-02", "junk", "10:00"] {
            assert!(!e.reason.contains(piece), "{bad}: {}", e.reason);
        }
    }
}

#[test]
fn a_version_cannot_supersede_itself() {
    let mut v = visit();
    v.meta.supersedes = Some(v.meta.version_id);
    assert_eq!(v.validate().unwrap_err().field, "meta.supersedes");
}

#[test]
fn amendments_point_at_what_they_supersede() {
    let first = visit().meta;
    let amended = first.amend(
        VersionId(Uuid::from_u128(11)),
        ClinicianId::parse("para-okafor").unwrap(),
        DeviceId::parse("phone-2").unwrap(),
        ts("2026-11-24T12:00:00Z"),
    );
    assert_eq!(amended.record_id, first.record_id);
    assert_eq!(amended.supersedes, Some(first.version_id));
    assert_eq!(
        head([&first, &amended]),
        Some(Head::Single(amended.version_id))
    );
}

#[test]
fn two_amendments_of_one_version_fork_and_both_survive() {
    let v1 = meta(1, None, "2026-11-24T10:00:00Z");
    let a = meta(2, Some(1), "2026-11-24T11:00:00Z");
    let b = meta(3, Some(1), "2026-11-24T11:30:00Z");
    let h = head([&v1, &a, &b]).unwrap();
    assert!(h.is_forked());
    assert_eq!(h, Head::Forked(vec![b.version_id, a.version_id]));
    assert_eq!(h.current(), b.version_id);
    // An amendment of one branch leaves the other as a head.
    let c = meta(4, Some(3), "2026-11-24T12:00:00Z");
    assert!(head([&v1, &a, &b, &c]).unwrap().is_forked());
    assert_eq!(head(std::iter::empty()), None);
}

#[test]
fn a_version_that_merges_the_other_heads_reconciles_the_fork() {
    let v1 = meta(1, None, "2026-11-24T10:00:00Z");
    let a = meta(2, Some(1), "2026-11-24T11:00:00Z");
    let b = meta(3, Some(1), "2026-11-24T11:30:00Z");
    let c = meta(4, Some(1), "2026-11-24T11:45:00Z");
    let merged = a.reconcile(
        &[b.version_id],
        VersionId(Uuid::from_u128(5)),
        ClinicianId::parse("para-okafor").unwrap(),
        DeviceId::parse("phone-2").unwrap(),
        ts("2026-11-24T12:00:00Z"),
    );
    assert_eq!(
        (merged.supersedes, merged.merges.clone()),
        (Some(a.version_id), vec![b.version_id])
    );
    assert_eq!(
        head([&v1, &a, &b, &merged]),
        Some(Head::Single(merged.version_id))
    );
    // A head it does not name stays one, and the order read does not matter.
    assert_eq!(
        head([&merged, &c, &b, &a, &v1]),
        Some(Head::Forked(vec![merged.version_id, c.version_id]))
    );
    // The field is left out of every version that merges nothing.
    let json = serde_json::to_value(&a).unwrap();
    assert!(json.get("merges").is_none(), "{json}");
    let back: VersionMeta = serde_json::from_value(serde_json::to_value(&merged).unwrap()).unwrap();
    assert_eq!(back, merged);
}

#[test]
fn a_reconciling_version_names_each_other_head_once_and_amends_one() {
    let merging = |supersedes: Option<u128>, merges: &[u128]| {
        let mut v = visit();
        v.meta.supersedes = supersedes.map(|s| VersionId(Uuid::from_u128(s)));
        v.meta.merges = merges
            .iter()
            .map(|&m| VersionId(Uuid::from_u128(m)))
            .collect();
        v.validate()
    };
    assert!(merging(Some(2), &[3, 4]).is_ok());
    for (supersedes, merges) in [
        (None, &[3][..]),
        (Some(2), &[3, 3]),
        (Some(2), &[2]),
        (Some(2), &[10]),
    ] {
        let e = merging(supersedes, merges).unwrap_err();
        assert_eq!(e.field, "meta.merges", "{supersedes:?} {merges:?}: {e}");
    }
    let too_many: Vec<u128> = (100..100 + MAX_MERGES as u128 + 1).collect();
    let e = merging(Some(2), &too_many).unwrap_err();
    assert_eq!(e.field, "meta.merges");
    assert!(e.to_string().contains(&MAX_MERGES.to_string()), "{e}");
}

fn review_refused(r: &MedicationReviewRecord) -> ValidationError {
    r.validate().unwrap_err()
}

#[test]
fn a_stop_reduce_switch_or_start_action_must_name_its_medicine() {
    let mut r = review();
    r.content.actions[0].medicine = None;
    assert_eq!(review_refused(&r).field, "content.actions[0].medicine");
}

#[test]
fn a_changed_medicine_must_be_one_that_was_reviewed() {
    let mut r = review();
    r.content.actions[0].medicine = Some(short("Diazepam 2 mg"));
    assert_eq!(review_refused(&r).field, "content.actions[0].medicine");
    // Starting a new medicine is the exception: it was not being taken.
    r.content.actions[0].kind = ActionKind::Start;
    assert!(r.validate().is_ok());
}

#[test]
fn an_action_must_address_a_recorded_problem() {
    let mut r = review();
    r.content.actions[1].addresses_problem = Some(5);
    assert_eq!(
        review_refused(&r).field,
        "content.actions[1].addresses_problem"
    );
}

#[test]
fn follow_up_must_be_after_the_review() {
    let mut r = review();
    r.content.follow_up_on = Some(date(2026, 11, 1));
    assert_eq!(review_refused(&r).field, "content.follow_up_on");
}

#[test]
fn stopp_start_criteria_are_parsed_and_normalised() {
    assert_eq!(
        StoppStartCriterion::parse("stopp b7").unwrap().to_string(),
        "STOPP B7"
    );
    assert_eq!(
        StoppStartCriterion::parse("START A1").unwrap().to_string(),
        "START A1"
    );
    for bad in [
        "",
        "STOP B7",
        "STOPP",
        "STOPP 7",
        "STOPP B",
        "STOPP B99",
        "START 1A",
        "STOPP B+7",
        "STOPP B 7",
    ] {
        assert_eq!(
            StoppStartCriterion::parse(bad).unwrap_err().field,
            "criterion",
            "{bad}"
        );
    }
}

#[test]
fn what_a_record_says_happened_cannot_be_later_than_it_was_written() {
    // Written at 10:45. A departure typed as the clinician leaves, a few
    // minutes ahead, is allowed; an observation an hour after the record that
    // holds it was written would become the score the escalation banner
    // reads, and is refused.
    let mut v = visit();
    v.content.departed_at = Some(ts("2026-11-24T10:55:00Z"));
    assert!(v.validate().is_ok());
    v.content.departed_at = Some(ts("2026-11-24T11:45:00Z"));
    assert_eq!(refused(&v).field, "content.departed_at");
    v.content
        .observations
        .push(ObservationSet::record(ts("2026-11-24T11:40:00Z"), observations(1), None).unwrap());
    v.content.departed_at = None;
    let e = refused(&v);
    assert_eq!(e.field, "content.observations[1].taken_at", "{e}");
    assert!(
        e.reason.contains("later than this version was written"),
        "{e}"
    );
    let mut v = visit();
    v.content.arrived_at = ts("2026-11-25T10:00:00Z");
    v.content.departed_at = None;
    v.content.observations.clear();
    assert_eq!(refused(&v).field, "content.arrived_at");

    // A review is dated: not after the day it was written, in the UK (an
    // hour ahead of UTC in summer, so 23:30 UTC is already the next day).
    let mut r = review();
    r.content.reviewed_on = date(2026, 11, 25);
    r.content.follow_up_on = None;
    assert_eq!(review_refused(&r).field, "content.reviewed_on");
    let mut r = review();
    r.meta.written_at = ts("2026-07-24T23:30:00Z");
    r.content.reviewed_on = date(2026, 7, 25);
    r.content.follow_up_on = None;
    assert!(r.validate().is_ok(), "{:?}", r.validate());
}

#[test]
fn an_outcome_or_urgency_refuses_a_field_its_kind_does_not_take_and_names_each_by_its_key() {
    use doorstep_domain::text::from_json;
    // Read as plain `ManagedAtHome` before, the urgency silently dropped.
    for (json, field, reason) in [
        (
            r#"{"kind":"managed_at_home","urgency":"emergency"}"#,
            "urgency",
            "is not part of an outcome of kind managed_at_home",
        ),
        (
            r#"{"kind":"patient_not_at_home","reference":"INC-1"}"#,
            "reference",
            "is not part of an outcome of kind patient_not_at_home",
        ),
        (
            r#"{"kind":"referred_to_service","service":"Falls team"}"#,
            "urgency",
            "is required for an outcome of kind referred_to_service",
        ),
        (
            r#"{"kind":"conveyed_to_hospital","destination":" "}"#,
            "destination",
            "must not be empty",
        ),
    ] {
        let e = from_json::<Outcome>(json).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            (field, reason),
            "{json}"
        );
    }
    let e = from_json::<Outcome>(r#"{"kind":"declined","capacity":true}"#).unwrap_err();
    assert_eq!(e.field, "capacity");
    assert!(e.reason.contains("unknown field"), "{e}");
    for (json, reason) in [
        (
            r#"{"kind":"same_day","due_by":"2026-11-30"}"#,
            "is part of a routine urgency only",
        ),
        (
            r#"{"kind":"routine"}"#,
            "is required for an urgency of kind routine",
        ),
    ] {
        let e = from_json::<Urgency>(json).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            ("due_by", reason),
            "{json}"
        );
    }
    // In a record, the path runs into the outcome.
    let mut json = serde_json::to_value(visit()).unwrap();
    json["content"]["outcome"] =
        serde_json::json!({"kind": "conveyed_to_hospital", "destination": ""});
    let e = parse_checked::<VisitRecord>(&json.to_string()).unwrap_err();
    assert_eq!(e.field, "content.outcome.destination");
    let fine = from_json::<Outcome>(r#"{"kind":"managed_at_home"}"#);
    assert_eq!(fine.unwrap(), Outcome::ManagedAtHome);
}

#[test]
fn a_version_whose_json_leaves_out_what_it_supersedes_is_refused() {
    // An amendment whose link was lost must not read as a new record's first version.
    let mut json = serde_json::to_value(visit()).unwrap();
    json["meta"].as_object_mut().unwrap().remove("supersedes");
    let e = parse_checked::<VisitRecord>(&json.to_string()).unwrap_err();
    assert!(e.reason.contains("missing field `supersedes`"), "{e}");
    assert_eq!(e.field, "meta");
    // Written as null, it is a first version, as before.
    assert!(parse_checked::<VisitRecord>(&serde_json::to_string(&visit()).unwrap()).is_ok());
}

#[test]
fn a_follow_up_due_before_the_visit_is_refused() {
    // A mistyped year would file "review chest in 48 hours" as a year overdue.
    let mut v = visit();
    v.content.follow_up[0].due = Some(date(2025, 11, 26));
    let e = refused(&v);
    assert_eq!(
        (e.field.as_str(), e.reason.as_str()),
        ("content.follow_up[0].due", "must not be before the visit")
    );
    // Due the day of the visit is fine, and that day is the UK's: a visit at
    // 00:30 summer time is on the 1st of July, not the UTC 30th of June.
    v.content.follow_up[0].due = Some(date(2026, 11, 24));
    assert!(v.validate().is_ok());
    v.meta.written_at = ts("2026-06-30T23:45:00Z");
    v.content.arrived_at = ts("2026-06-30T23:30:00Z");
    v.content.departed_at = Some(ts("2026-06-30T23:40:00Z"));
    v.content.observations.clear();
    v.content.follow_up[0].due = Some(date(2026, 6, 30));
    assert_eq!(refused(&v).field, "content.follow_up[0].due");
    v.content.follow_up[0].due = Some(date(2026, 7, 1));
    assert!(v.validate().is_ok());
}

#[test]
fn a_label_that_shows_in_another_order_than_it_says_is_refused() {
    // Stored as "gm 01" reversed, it would show as "10 mg".
    for text in ["Morphine \u{202E}gm 01", "Apixaban \u{2067}5 mg\u{2069}"] {
        let e = ShortText::parse("dose", text).unwrap_err();
        assert_eq!(e.field, "dose");
        assert!(e.reason.contains("direction"), "{e}");
    }
    // Free text refuses an override; it may hold the embeddings that text pasted
    // from a document mixing English and Arabic carries.
    assert!(FreeText::parse("treatment", "Morphine \u{202E}gm 01").is_err());
    assert!(FreeText::parse("treatment", "Interpreter: \u{202B}نعم\u{202C} (yes)").is_ok());
    // A line separator is a second line, which a label may not have; free
    // text may hold line breaks.
    assert!(ShortText::parse("dose", "Apixaban 5 mg\u{2028}twice daily").is_err());
    assert!(FreeText::parse("treatment", "Apixaban 5 mg\ntwice daily").is_ok());
    // Other scripts, and accents, are words like any other.
    assert!(ShortText::parse("name", "Zoë Ó Briain-محمد").is_ok());
}

#[test]
fn a_refused_nested_value_is_named_by_the_key_it_fills() {
    use doorstep_domain::network::Shift;
    use doorstep_domain::text::from_json;
    let e = from_json::<Shift>(r#"{"start":"16:00","end":"08:00"}"#).unwrap_err();
    assert_eq!(e.field, "end");
    let mut json = serde_json::to_value(visit()).unwrap();
    json["content"]["patient"] = "123".into();
    json["content"]["practice"] = "d99001".into();
    let e = parse_checked::<VisitRecord>(&json.to_string()).unwrap_err();
    assert_eq!(e.field, "content.patient");
    assert_eq!(e.reason, "must be exactly ten digits");
    json["content"]["patient"] = "9990000018".into();
    let e = parse_checked::<VisitRecord>(&json.to_string()).unwrap_err();
    assert_eq!(e.field, "content.practice");
    json["content"]["practice"] = "D99001".into();
    json["content"]["observations"][0]["values"]["spo2_scale"] = 3.into();
    let e = parse_checked::<VisitRecord>(&json.to_string()).unwrap_err();
    assert_eq!(e.field, "content.observations[0].values.spo2_scale");
    let e = from_json::<doorstep_domain::visit::TimeWindow>(r#"{"start":"10:00","end":"09:00"}"#)
        .unwrap_err();
    assert_eq!(e.field, "end");
}
