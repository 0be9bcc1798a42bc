//! Visit records and the version envelope every clinical record travels in.
//!
//! A record is never overwritten. Writing it creates version 1; an amendment
//! is a new [`RecordVersion`] whose [`VersionMeta::supersedes`] points at the
//! version it replaces and which says who amended it, on which device, when.
//! Two devices amending the same version both survive (see [`crate::history`]
//! for how heads and forks are found), until a clinician reconciles them: a
//! version that supersedes one head and names the others in
//! [`VersionMeta::merges`].

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::network::{ClinicianId, DeviceId, OdsCode};
use crate::news2::{Chart, MAX_ADVICE_CHARS, News2Score, Observations, Spo2Scale};
use crate::patient::Scale2Prescription;
use crate::text::{FreeText, ShortText};
use crate::visit::VisitRequestId;
use crate::{NhsNumber, ValidationError};

/// Identifies a clinical record across all its versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(pub Uuid);

/// Identifies one version of a record; made on the device (UUIDv7), so it is
/// also the idempotency key when the version is pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionId(pub Uuid);

/// Who wrote a version, where, when, and which version it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionMeta {
    /// The record this is a version of.
    pub record_id: RecordId,
    /// This version.
    pub version_id: VersionId,
    /// The version this one amends; `None` (written `null`) for the first.
    /// The key must be present: JSON that leaves it out might be an
    /// amendment whose link was lost, and must not read as a new record.
    #[serde(deserialize_with = "required")]
    pub supersedes: Option<VersionId>,
    /// The other heads of a forked record that this version reconciles
    /// (empty for any other version): with [`Self::supersedes`] they are all
    /// superseded by it, so the record has one current version again. Each
    /// must be a version of the same record; at most [`MAX_MERGES`]. Left
    /// out of the JSON when empty, so a version that merges nothing reads
    /// and writes as it did before reconciling existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merges: Vec<VersionId>,
    /// The clinician who wrote it.
    pub author: ClinicianId,
    /// The device it was written on.
    pub device: DeviceId,
    /// When it was written (device clock).
    pub written_at: Timestamp,
}

impl VersionMeta {
    /// The first version of a new record.
    pub fn first(
        record_id: RecordId,
        version_id: VersionId,
        author: ClinicianId,
        device: DeviceId,
        written_at: Timestamp,
    ) -> Self {
        Self {
            record_id,
            version_id,
            supersedes: None,
            merges: Vec::new(),
            author,
            device,
            written_at,
        }
    }

    /// A version amending this one: same record, new id, pointing back here.
    pub fn amend(
        &self,
        version_id: VersionId,
        author: ClinicianId,
        device: DeviceId,
        written_at: Timestamp,
    ) -> Self {
        Self {
            record_id: self.record_id,
            version_id,
            supersedes: Some(self.version_id),
            merges: Vec::new(),
            author,
            device,
            written_at,
        }
    }

    /// A version reconciling a fork: it amends this head (the one whose
    /// content the clinician kept or started from) and supersedes the
    /// `others` too, so the record reads as one line again everywhere.
    pub fn reconcile(
        &self,
        others: &[VersionId],
        version_id: VersionId,
        author: ClinicianId,
        device: DeviceId,
        written_at: Timestamp,
    ) -> Self {
        Self {
            merges: others.to_vec(),
            ..self.amend(version_id, author, device, written_at)
        }
    }
}

/// Most versions one record may have. A record is amended a handful of
/// times in its life (a correction, a result come back, a fork reconciled);
/// a thousand is a device amending in a loop. Every push that touches a
/// record, and every listing of its fork, reads its whole history, so the
/// bound keeps one record from slowing the endpoint for the network. The
/// device store and the endpoint both refuse a version past it.
pub const MAX_VERSIONS_PER_RECORD: usize = 1_000;

/// Most heads one version reconciles besides the one it amends. A fork is
/// two devices amending the same version while apart; a real one has two or
/// three heads. The bound keeps a record's size bounded (see
/// [`MAX_RECORD_JSON_BYTES`]).
pub const MAX_MERGES: usize = 16;

/// One version of a clinical record: the envelope and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordVersion<T> {
    /// Identity and provenance.
    pub meta: VersionMeta,
    /// The clinical content of this version.
    pub content: T,
}

/// Most NEWS2 sets one visit record holds. Observations every 15 minutes
/// through a 24-hour wait for an ambulance come to 97; a real visit takes a
/// handful. The bound keeps one record, and so one push, small (see
/// [`MAX_RECORD_JSON_BYTES`]).
pub const MAX_OBSERVATION_SETS: usize = 100;

/// Most follow-up tasks one visit record holds: a real visit leaves a few,
/// and the bound keeps one record small (see [`MAX_RECORD_JSON_BYTES`]).
pub const MAX_FOLLOW_UP_TASKS: usize = 50;

/// An upper bound on the compact JSON of any valid record version, visit
/// record or medication review, as the store keeps it and a push carries it.
///
/// Every text and list in a record is bounded, so its JSON is too. serde_json
/// writes a character in at most 4 bytes (UTF-8; the escapes `\n`, `\t`,
/// `\"` and `\\` take 2), except control characters, escaped as `\u00XX`
/// (6 bytes), which no text in a record may hold. The largest parts:
///
/// | record | part | bytes, at most |
/// | --- | --- | --- |
/// | visit | [`MAX_OBSERVATION_SETS`] sets, each with a cited prescription and [`crate::news2::MAX_ADVICE_CHARS`] of advice in four-byte characters (5 267 each) | 526 700 |
/// | visit | four free texts of [`crate::text::MAX_FREE_TEXT`] characters | 160 008 |
/// | visit | [`MAX_FOLLOW_UP_TASKS`] tasks (866 each) | 43 300 |
/// | review | [`crate::medication_review::MAX_MEDICINES_REVIEWED`] medicines (2 437 each) | 243 700 |
/// | review | [`crate::medication_review::MAX_PROBLEMS`] problems (1 656 each) | 165 600 |
/// | review | [`crate::medication_review::MAX_ACTIONS`] actions (1 696 each) | 169 600 |
///
/// With the envelope (its [`MAX_MERGES`] merged heads 635 bytes), ids,
/// times and separators, the largest visit record
/// is 732 335 bytes and the largest review 620 443 (`tests/domain/limits.rs`
/// builds both and checks them against this bound). The bound is under a
/// fifth of the sync endpoint's 4 MiB body limit, so any valid record
/// fits in a push on its own with ample room for the push's envelope, and
/// no record can jam a device's outbox by being too large to push.
pub const MAX_RECORD_JSON_BYTES: usize = 800_000;

/// The first instant a record may name: 1990-01-01T00:00:00Z. No visit,
/// observation, prescription, review or follow-up of this service comes
/// earlier (NEWS2 itself dates from 2017; an oxygen target prescribed in the
/// 1990s is the oldest a patient may still cite), so an earlier one is a
/// mistyped date or a device clock reset to nothing, not a fact to file in
/// a GP record.
pub const EARLIEST_RECORDED: Timestamp = Timestamp::constant(631_152_000, 0);
/// The first instant past the ones a record may name: 2100-01-01T00:00:00Z.
/// Anything later is a mistyped year. (The endpoint also bounds
/// `meta.written_at` by its own clock.)
pub const RECORDED_UNTIL: Timestamp = Timestamp::constant(4_102_444_800, 0);

/// Refuses an instant outside [`EARLIEST_RECORDED`]..[`RECORDED_UNTIL`],
/// naming the field (never the value).
pub(crate) fn plausible_instant(field: &str, at: Timestamp) -> Result<(), ValidationError> {
    if (EARLIEST_RECORDED..RECORDED_UNTIL).contains(&at) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be from 1990 to 2099: check the device's date and time, or the date typed",
        ))
    }
}

/// Deserializes a field whose key must be present even though its value may
/// be `null` (serde reads a missing `Option` as `None` unless told otherwise).
fn required<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d)
}

/// The date `at` falls on in the UK, where the practices are: a visit at
/// 00:30 in summer time is on the day the clinician saw, not the UTC day
/// before.
fn uk_date(at: Timestamp) -> Date {
    static LONDON: std::sync::LazyLock<jiff::tz::TimeZone> = std::sync::LazyLock::new(|| {
        jiff::tz::TimeZone::get("Europe/London").expect("the bundled time zone database")
    });
    at.to_zoned(LONDON.clone()).date()
}

/// Refuses a date outside the years [`plausible_instant`] allows, naming the
/// field.
pub(crate) fn plausible_date(field: &str, day: Date) -> Result<(), ValidationError> {
    if (1990..2100).contains(&day.year()) {
        Ok(())
    } else {
        Err(ValidationError::new(field, "must be from 1990 to 2099"))
    }
}

/// Refuses a list longer than `max`, naming the field and the bound (never
/// the entries): every list in a record is bounded so that the record's size
/// is (see [`MAX_RECORD_JSON_BYTES`]).
pub(crate) fn at_most<T>(field: &str, list: &[T], max: usize) -> Result<(), ValidationError> {
    if list.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must have at most {max} entries"),
        ));
    }
    Ok(())
}

/// Cross-field checks a type needs beyond what its field types guarantee.
/// Every boundary calls it through [`parse_checked`] before storing anything.
pub trait Validate {
    /// Returns the first rule the value breaks, naming the field.
    fn validate(&self) -> Result<(), ValidationError>;
}

/// How far past the moment a version was written the times typed into it may
/// run: a clinician finishing the record on the doorstep may put down the
/// departure they are about to make, or round a time up, but observations
/// taken an hour after the record that holds them was written were not.
pub const TYPED_TIME_LEEWAY: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);

/// A record's content, checked against when its version was written: what it
/// says happened cannot have happened after it was written down.
pub trait WrittenContent {
    /// The first time or date in the content later than `written_at` allows
    /// ([`TYPED_TIME_LEEWAY`] for a time of day; the day it was written in
    /// the UK for a date), as the error naming its field.
    fn check_written_at(&self, written_at: Timestamp) -> Result<(), ValidationError>;
}

/// The latest day `at` can be in the UK: its UTC day an hour later, since UK
/// time is UTC or an hour ahead. Worked out without a time-zone database,
/// which a device may lack.
pub(crate) fn latest_uk_day(at: Timestamp) -> Date {
    let hour_later = at
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap_or(at);
    hour_later.to_zoned(jiff::tz::TimeZone::UTC).date()
}

impl<T: Validate + WrittenContent> Validate for RecordVersion<T> {
    fn validate(&self) -> Result<(), ValidationError> {
        let meta = &self.meta;
        plausible_instant("meta.written_at", meta.written_at)?;
        if meta.supersedes == Some(meta.version_id) {
            return Err(ValidationError::new(
                "meta.supersedes",
                "a version cannot supersede itself",
            ));
        }
        if !meta.merges.is_empty() {
            at_most("meta.merges", &meta.merges, MAX_MERGES)?;
            if meta.supersedes.is_none() {
                return Err(ValidationError::new(
                    "meta.merges",
                    "a first version has no fork to reconcile: a reconciling version \
                     supersedes one head and merges the others",
                ));
            }
            let mut named = vec![meta.version_id];
            named.extend(meta.supersedes);
            for merged in &meta.merges {
                if named.contains(merged) {
                    return Err(ValidationError::new(
                        "meta.merges",
                        "names a version twice, the version itself, or the one it supersedes",
                    ));
                }
                named.push(*merged);
            }
        }
        self.content.validate().map_err(|e| e.within("content"))?;
        self.content
            .check_written_at(meta.written_at)
            .map_err(|e| e.within("content"))
    }
}

/// Parses JSON into a checked value and runs its cross-field checks: the one
/// way records enter the store, the endpoint or the uniffi surface.
pub fn parse_checked<T>(json: &str) -> Result<T, ValidationError>
where
    T: serde::de::DeserializeOwned + Validate,
{
    let value: T = crate::text::from_json(json)?;
    value.validate()?;
    Ok(value)
}

/// A scored set of observations inside a visit record. The score is computed
/// when the set is made and checked again whenever one is read, so a stored
/// score can never disagree with its values under the chart it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawObservationSet", into = "RawObservationSet")]
pub struct ObservationSet {
    taken_at: Timestamp,
    values: Observations,
    scale2_prescription: Option<Scale2Prescription>,
    score: News2Score,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObservationSet {
    taken_at: Timestamp,
    values: Observations,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scale2_prescription: Option<Scale2Prescription>,
    score: News2Score,
}

impl ObservationSet {
    /// Scores `values` on the current chart. Scale 2 is refused unless the
    /// prescription of the 88–92 % target is cited.
    pub fn record(
        taken_at: Timestamp,
        values: Observations,
        scale2_prescription: Option<Scale2Prescription>,
    ) -> Result<Self, ValidationError> {
        Self::check_scale(&values, scale2_prescription.as_ref())?;
        Ok(Self {
            taken_at,
            values,
            scale2_prescription,
            score: Chart::CURRENT.score(&values),
        })
    }

    fn check_scale(
        values: &Observations,
        prescription: Option<&Scale2Prescription>,
    ) -> Result<(), ValidationError> {
        match (values.spo2_scale(), prescription) {
            (Spo2Scale::Scale2, None) => Err(ValidationError::new(
                "values.spo2_scale",
                "Scale 2 needs the prescription of the 88-92% target to be cited",
            )),
            (Spo2Scale::Scale1, Some(_)) => Err(ValidationError::new(
                "scale2_prescription",
                "cited but the observations use Scale 1",
            )),
            _ => Ok(()),
        }
    }

    /// When the observations were taken.
    pub fn taken_at(&self) -> Timestamp {
        self.taken_at
    }

    /// The observed values.
    pub fn values(&self) -> &Observations {
        &self.values
    }

    /// The score, with the chart that made it.
    pub fn score(&self) -> &News2Score {
        &self.score
    }

    /// The prescription of the 88–92 % target that Scale 2 cites, if any.
    pub fn scale2_prescription(&self) -> Option<&Scale2Prescription> {
        self.scale2_prescription.as_ref()
    }

    /// The latest day the observations can have been taken on in the UK:
    /// their UTC day an hour later, since UK time is UTC or an hour ahead.
    /// Worked out without a time-zone database, which a device may lack.
    fn latest_uk_day(&self) -> jiff::civil::Date {
        latest_uk_day(self.taken_at)
    }
}

impl TryFrom<RawObservationSet> for ObservationSet {
    type Error = ValidationError;
    fn try_from(raw: RawObservationSet) -> Result<Self, Self::Error> {
        Self::check_scale(&raw.values, raw.scale2_prescription.as_ref())?;
        if raw.score.advice.chars().count() > MAX_ADVICE_CHARS {
            return Err(ValidationError::new(
                "score.advice",
                format!("longer than {MAX_ADVICE_CHARS} characters"),
            ));
        }
        // Shown to the clinician and sent to the GP record as free text is:
        // printable, lines and tabs aside.
        if raw
            .score
            .advice
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        {
            return Err(ValidationError::new(
                "score.advice",
                "contains control characters",
            ));
        }
        // The advice is wording shown to the clinician and may be improved
        // between releases; what must never drift is the arithmetic.
        let rescored = raw.score.chart.score(&raw.values);
        if (raw.score.total, raw.score.risk, raw.score.parameters)
            != (rescored.total, rescored.risk, rescored.parameters)
        {
            return Err(ValidationError::new(
                "score",
                "does not match the observations under the chart it names",
            ));
        }
        Ok(Self {
            taken_at: raw.taken_at,
            values: raw.values,
            scale2_prescription: raw.scale2_prescription,
            score: raw.score,
        })
    }
}

impl From<ObservationSet> for RawObservationSet {
    fn from(o: ObservationSet) -> Self {
        Self {
            taken_at: o.taken_at,
            values: o.values,
            scale2_prescription: o.scale2_prescription,
            score: o.score,
        }
    }
}

/// How quickly someone we refer to must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralUrgency {
    /// Within the hour.
    Emergency,
    /// The same day.
    Urgent,
    /// Within a few days.
    Soon,
    /// At the next routine opportunity.
    Routine,
}

/// Who must do a follow-up task or act on a medication review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOwner {
    /// The patient's GP practice.
    Gp,
    /// The care home's staff.
    CareHome,
    /// The patient's community pharmacy.
    CommunityPharmacy,
    /// The patient, resident or their family.
    ResidentOrFamily,
    /// The service's clinical pharmacist.
    Pharmacist,
    /// District or community nursing.
    DistrictNursing,
    /// The home-visiting service itself (a return visit).
    VisitingService,
    /// Adult social care.
    SocialCare,
}

/// What happened at the end of the visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "OutcomeFields")]
pub enum Outcome {
    /// Treated and left at home.
    ManagedAtHome,
    /// Referred back to the GP.
    ReferredToGp {
        /// How quickly.
        urgency: ReferralUrgency,
    },
    /// Referred to another service (falls team, district nurses, UCR, ...).
    ReferredToService {
        /// Which service.
        service: ShortText,
        /// How quickly.
        urgency: ReferralUrgency,
    },
    /// Taken to hospital by the service or by arranged transport.
    ConveyedToHospital {
        /// Which hospital or department.
        destination: ShortText,
    },
    /// Handed over to an emergency ambulance crew after a 999 call.
    EmergencyHandover {
        /// The incident or crew reference.
        reference: ShortText,
    },
    /// Nobody answered; no assessment took place.
    PatientNotAtHome,
    /// The patient declined assessment or treatment.
    Declined {
        /// True when their capacity to decide was assessed and recorded.
        capacity_assessed: bool,
    },
}

/// An outcome as written: its kind and each field some kind has, every one
/// read where it stands, so that a refused value is named by its key
/// (`content.outcome.destination`). Read straight as the tagged enum, serde
/// gathers the fields before it knows the kind and names only the outcome,
/// and a kind with no fields would drop any it was given, unseen (a record
/// written by a newer build would lose what this one does not know).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeFields {
    kind: OutcomeKind,
    urgency: Option<ReferralUrgency>,
    service: Option<ShortText>,
    destination: Option<ShortText>,
    reference: Option<ShortText>,
    capacity_assessed: Option<bool>,
}

/// The kinds of [`Outcome`], as written in its `kind`.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeKind {
    ManagedAtHome,
    ReferredToGp,
    ReferredToService,
    ConveyedToHospital,
    EmergencyHandover,
    PatientNotAtHome,
    Declined,
}

impl TryFrom<OutcomeFields> for Outcome {
    type Error = ValidationError;
    fn try_from(f: OutcomeFields) -> Result<Self, Self::Error> {
        let (name, takes): (&str, &[&str]) = match f.kind {
            OutcomeKind::ManagedAtHome => ("managed_at_home", &[]),
            OutcomeKind::ReferredToGp => ("referred_to_gp", &["urgency"]),
            OutcomeKind::ReferredToService => ("referred_to_service", &["service", "urgency"]),
            OutcomeKind::ConveyedToHospital => ("conveyed_to_hospital", &["destination"]),
            OutcomeKind::EmergencyHandover => ("emergency_handover", &["reference"]),
            OutcomeKind::PatientNotAtHome => ("patient_not_at_home", &[]),
            OutcomeKind::Declined => ("declined", &["capacity_assessed"]),
        };
        let given = [
            ("urgency", f.urgency.is_some()),
            ("service", f.service.is_some()),
            ("destination", f.destination.is_some()),
            ("reference", f.reference.is_some()),
            ("capacity_assessed", f.capacity_assessed.is_some()),
        ];
        if let Some((field, _)) = given
            .iter()
            .find(|(field, present)| *present && !takes.contains(field))
        {
            return Err(ValidationError::new(
                *field,
                format!("is not part of an outcome of kind {name}"),
            ));
        }
        fn required<T>(field: &str, name: &str, value: Option<T>) -> Result<T, ValidationError> {
            value.ok_or_else(|| {
                ValidationError::new(field, format!("is required for an outcome of kind {name}"))
            })
        }
        Ok(match f.kind {
            OutcomeKind::ManagedAtHome => Outcome::ManagedAtHome,
            OutcomeKind::ReferredToGp => Outcome::ReferredToGp {
                urgency: required("urgency", name, f.urgency)?,
            },
            OutcomeKind::ReferredToService => Outcome::ReferredToService {
                service: required("service", name, f.service)?,
                urgency: required("urgency", name, f.urgency)?,
            },
            OutcomeKind::ConveyedToHospital => Outcome::ConveyedToHospital {
                destination: required("destination", name, f.destination)?,
            },
            OutcomeKind::EmergencyHandover => Outcome::EmergencyHandover {
                reference: required("reference", name, f.reference)?,
            },
            OutcomeKind::PatientNotAtHome => Outcome::PatientNotAtHome,
            OutcomeKind::Declined => Outcome::Declined {
                capacity_assessed: required("capacity_assessed", name, f.capacity_assessed)?,
            },
        })
    }
}

/// A task someone must do after the visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpTask {
    /// What must be done.
    pub description: ShortText,
    /// Who must do it.
    pub owner: TaskOwner,
    /// By when, if it has a date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Date>,
}

/// What a visiting clinician records about one visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitContent {
    /// The request this visit answered, if it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_request: Option<VisitRequestId>,
    /// The patient.
    pub patient: NhsNumber,
    /// The patient's registered practice: where the outcome is filed.
    pub practice: OdsCode,
    /// Arrival on scene.
    pub arrived_at: Timestamp,
    /// Departure; `None` while the visit is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departed_at: Option<Timestamp>,
    /// NEWS2 sets, in the order taken; at most [`MAX_OBSERVATION_SETS`].
    pub observations: Vec<ObservationSet>,
    /// The presenting complaint.
    pub presenting_complaint: FreeText,
    /// History, examination and impression.
    pub assessment: FreeText,
    /// Treatment given on the visit.
    pub treatment: FreeText,
    /// How the visit ended.
    pub outcome: Outcome,
    /// What the patient and carers were told to watch for and who to call.
    pub safety_netting: FreeText,
    /// Follow-up tasks with their owners; at most [`MAX_FOLLOW_UP_TASKS`].
    pub follow_up: Vec<FollowUpTask>,
}

/// A visit record version: what is stored, synced and sent to the GP record.
pub type VisitRecord = RecordVersion<VisitContent>;

impl Validate for VisitContent {
    fn validate(&self) -> Result<(), ValidationError> {
        at_most("observations", &self.observations, MAX_OBSERVATION_SETS)?;
        at_most("follow_up", &self.follow_up, MAX_FOLLOW_UP_TASKS)?;
        plausible_instant("arrived_at", self.arrived_at)?;
        if let Some(departed) = self.departed_at {
            plausible_instant("departed_at", departed)?;
        }
        let visited_on = uk_date(self.arrived_at);
        for (i, task) in self.follow_up.iter().enumerate() {
            if let Some(due) = task.due {
                plausible_date("due", due).map_err(|e| e.at_index("follow_up", i))?;
                // A mistyped year would file the task as long overdue, and
                // the date meant would be lost.
                if due < visited_on {
                    return Err(ValidationError::new("due", "must not be before the visit")
                        .at_index("follow_up", i));
                }
            }
        }
        if let Some(departed) = self.departed_at
            && departed < self.arrived_at
        {
            return Err(ValidationError::new(
                "departed_at",
                "must not be before arrived_at",
            ));
        }
        for (i, set) in self.observations.iter().enumerate() {
            let at = |e: ValidationError| e.at_index("observations", i);
            plausible_instant("taken_at", set.taken_at()).map_err(at)?;
            if let Some(prescription) = set.scale2_prescription() {
                plausible_date(
                    "scale2_prescription.prescribed_on",
                    prescription.prescribed_on,
                )
                .map_err(at)?;
            }
            let after_arrival = set.taken_at() >= self.arrived_at;
            let before_departure = self.departed_at.is_none_or(|d| set.taken_at() <= d);
            if !(after_arrival && before_departure) {
                return Err(ValidationError::new(
                    "taken_at",
                    "must fall between arrival and departure",
                )
                .at_index("observations", i));
            }
        }
        for (i, set) in self.observations.iter().enumerate() {
            // Scale 2 hides hypoxia unless a clinician set the 88-92% target
            // before; a prescription dated after the readings cannot be
            // that one, and is most likely a mistyped date.
            if let Some(prescription) = set.scale2_prescription()
                && prescription.prescribed_on > set.latest_uk_day()
            {
                return Err(ValidationError::new(
                    "scale2_prescription.prescribed_on",
                    "must not be after the day the observations were taken",
                )
                .at_index("observations", i));
            }
        }
        if self
            .observations
            .windows(2)
            .any(|w| w[1].taken_at() < w[0].taken_at())
        {
            return Err(ValidationError::new(
                "observations",
                "must be in the order they were taken",
            ));
        }
        if self.outcome == Outcome::PatientNotAtHome && !self.observations.is_empty() {
            return Err(ValidationError::new(
                "observations",
                "cannot be recorded when the patient was not at home",
            ));
        }
        Ok(())
    }
}

impl WrittenContent for VisitContent {
    fn check_written_at(&self, written_at: Timestamp) -> Result<(), ValidationError> {
        let latest = written_at
            .checked_add(TYPED_TIME_LEEWAY)
            .unwrap_or(written_at);
        let late = |field: &str| {
            ValidationError::new(
                field,
                "is later than this version was written: check the time typed, or the \
                 device's clock",
            )
        };
        if self.arrived_at > latest {
            return Err(late("arrived_at"));
        }
        if self.departed_at.is_some_and(|d| d > latest) {
            return Err(late("departed_at"));
        }
        // In the order they were taken, so the last is the latest.
        if let Some(i) = self
            .observations
            .iter()
            .position(|set| set.taken_at() > latest)
        {
            return Err(late("taken_at").at_index("observations", i));
        }
        Ok(())
    }
}

impl VisitContent {
    /// The most recent NEWS2 score, which drives the escalation banner.
    pub fn latest_score(&self) -> Option<&News2Score> {
        self.observations.last().map(ObservationSet::score)
    }
}
