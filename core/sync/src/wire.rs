//! The sync protocol's wire types, version 1: what a device and the endpoint
//! say to each other under `/sync/v1/`.
//!
//! These types are the contract between phones already in the field and the
//! endpoint, so their JSON form is pinned by snapshot tests: a change that
//! alters a snapshot is a protocol change and needs a new version prefix.
//! Requests are strict (unknown fields are refused, so a typo never passes
//! silently); responses are lenient (a newer endpoint may add fields and an
//! older device still reads them).
//!
//! The endpoint parses a push in two steps: the envelope first, then each
//! change's record through [`doorstep_domain::record::parse_checked`], so one
//! impossible clinical value is reported against that change alone.

use doorstep_domain::medication_review::MedicationReviewRecord;
use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta, VisitRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every sync path starts with this; a breaking change to any type here gets
/// a new prefix and the old one keeps working until the last device updates.
pub const API_PREFIX: &str = "/sync/v1";
/// `POST`: push a [`PushRequest`], answered by a [`PushResponse`].
pub const PUSH_PATH: &str = "/sync/v1/push";
/// `GET ?cursor=...&limit=...`: answered by a [`PullResponse`].
pub const PULL_PATH: &str = "/sync/v1/pull";
/// `GET ?after=...&limit=...`: the network's records whose history has
/// forked, a page at a time in record id order, as a [`ForksResponse`].
pub const FORKS_PATH: &str = "/sync/v1/forks";
/// `POST /sync/v1/devices/{device}/revoke` (coordinators only), answered by a
/// [`RevokeResponse`].
pub const REVOKE_PATH: &str = "/sync/v1/devices/{device}/revoke";
/// `POST`: which of a [`HeldRequest`]'s change ids the caller's network does
/// not hold, as a [`HeldResponse`]. A device asks after its pull cursor is
/// refused, to push again what an endpoint restored from a backup lost.
pub const HELD_PATH: &str = "/sync/v1/held";

/// Most changes one push may carry. A device with more splits them into
/// several pushes, in order; the endpoint refuses a bigger batch with 413.
pub const MAX_PUSH_CHANGES: usize = 200;
/// Most changes one pull returns; a device asks for fewer with `limit`.
pub const MAX_PULL_LIMIT: u32 = 500;
/// Forked records one forks page lists when the caller names no `limit`: a
/// coordinator's screenful, each fork read from its record's whole history.
pub const DEFAULT_FORKS_LIMIT: u32 = 100;
/// Most forked records one forks page lists, as many as a pull page has
/// changes: without a bound, one listing of a network with years of forks
/// would read every forked history in one request.
pub const MAX_FORKS_LIMIT: u32 = 500;

/// Most change ids one [`HeldRequest`] may ask about (about 40 KB of JSON);
/// a device with more asks several times.
pub const MAX_HELD_IDS: usize = 1000;

/// Identifies one change in the outbox. Made on the device (UUIDv7) when the
/// change is written, it is the idempotency key: pushing the same change twice
/// stores it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChangeId(pub Uuid);

/// Which kind of record a change carries; the tag of [`ChangeBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A version of a visit record.
    VisitRecord,
    /// A version of a care-home medication review.
    MedicationReview,
}

impl ChangeKind {
    /// The tag as it appears on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::VisitRecord => "visit_record",
            ChangeKind::MedicationReview => "medication_review",
        }
    }

    /// Reads a tag written by [`ChangeKind::as_str`]; `None` for any other text.
    pub fn parse(tag: &str) -> Option<Self> {
        match tag {
            "visit_record" => Some(ChangeKind::VisitRecord),
            "medication_review" => Some(ChangeKind::MedicationReview),
            _ => None,
        }
    }
}

/// The record a change carries, tagged with its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum ChangeBody {
    /// A visit record version.
    VisitRecord(VisitRecord),
    /// A medication review version.
    MedicationReview(MedicationReviewRecord),
}

impl ChangeBody {
    /// The version envelope: who wrote it, on which device, what it amends.
    pub fn meta(&self) -> &VersionMeta {
        match self {
            ChangeBody::VisitRecord(r) => &r.meta,
            ChangeBody::MedicationReview(r) => &r.meta,
        }
    }

    /// The kind tag.
    pub fn kind(&self) -> ChangeKind {
        match self {
            ChangeBody::VisitRecord(_) => ChangeKind::VisitRecord,
            ChangeBody::MedicationReview(_) => ChangeKind::MedicationReview,
        }
    }
}

/// One change travelling up in a push or down in a pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The idempotency key.
    pub change_id: ChangeId,
    /// What it carries.
    pub body: ChangeBody,
}

/// `POST /sync/v1/push`: a batch of the outbox, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The network the device belongs to; must be the token's network.
    pub network: NetworkId,
    /// The pushing device; must be the token's device and every change's
    /// `meta.device`.
    pub device: DeviceId,
    /// At most [`MAX_PUSH_CHANGES`], in the order they were written.
    pub changes: Vec<Change>,
}

/// Why the endpoint refused one change. The device keeps the change and shows
/// the reason; it is never pushed again as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The record breaks a rule of the clinical domain (see `field`).
    Invalid,
    /// The record's author or device is not the caller's.
    NotYours,
    /// This change id was stored before with different content.
    ChangeIdReused,
    /// This version id was stored before with different content.
    VersionIdReused,
    /// The record's earlier versions are of another kind (a visit record
    /// cannot amend a medication review).
    KindConflict,
    /// A code this build does not know; treat as a refusal.
    #[serde(other)]
    Unknown,
}

/// The endpoint's answer for one change of a push, in the order pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChangeOutcome {
    /// Stored now; the record has a single head.
    Accepted,
    /// Stored by an earlier push with the same content: nothing changed, and
    /// the device treats it exactly as [`ChangeOutcome::Accepted`].
    Duplicate,
    /// Stored now, and the record's history has forked (two devices amended
    /// the same version): both survive and a clinician must reconcile them.
    Forked {
        /// The record.
        record_id: RecordId,
        /// Its current heads, newest first.
        heads: Vec<VersionId>,
    },
    /// Not stored.
    Rejected {
        /// Why, for the device's logic.
        code: RejectCode,
        /// Which field, when one field is to blame.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// Why, for a person; never carries patient data.
        reason: String,
    },
}

impl ChangeOutcome {
    /// True when the endpoint holds the change (now or from before).
    pub fn is_stored(&self) -> bool {
        !matches!(self, ChangeOutcome::Rejected { .. })
    }
}

/// One change's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeResult {
    /// Which change.
    pub change_id: ChangeId,
    /// What happened to it.
    pub outcome: ChangeOutcome,
}

/// Whether the device may go on using its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Carry on.
    Active,
    /// The device was revoked: push everything still unsynced, then wipe the
    /// local database. Pushes are still accepted; pulls are refused.
    Revoked,
}

/// The answer to a push, one result per change, in the order pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One per change.
    pub results: Vec<ChangeResult>,
    /// Whether the device must wipe once all its changes are stored.
    pub device_status: DeviceStatus,
}

/// Where a device is in its network's stream of changes. Opaque: the device
/// stores it and sends it back, never reads it. It only moves forward.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor of a device that has pulled nothing yet.
    pub fn beginning() -> Self {
        Self(String::new())
    }

    /// Wraps a cursor the endpoint made (or one the device stored earlier).
    pub fn from_token(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The text to store and to send back as `cursor=`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for [`Cursor::beginning`].
    pub fn is_beginning(&self) -> bool {
        self.0.is_empty()
    }
}

/// The answer to a pull: the next changes of the caller's network after the
/// cursor sent, in the order the endpoint stored them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    /// The network whose changes these are: the token's. A device checks it
    /// against the network it is configured for before applying anything,
    /// so one signed in with another network's account never mixes that
    /// network's records into its store. Absent from endpoints built before
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkId>,
    /// The changes, oldest first. Each change's envelope is read leniently,
    /// as every response is; the record inside stays strict.
    #[serde(deserialize_with = "pulled_changes")]
    pub changes: Vec<Change>,
    /// Send this next time, after the changes are in the local store.
    pub cursor: Cursor,
    /// True when more changes wait: pull again straight away.
    pub more: bool,
}

/// A change as a device reads it from a pull. Unlike [`Change`], which a push
/// sends and the endpoint reads strictly, it tolerates envelope fields a newer
/// endpoint adds, so such an endpoint does not stop every older device's pulls.
/// The record it carries is still parsed strictly: a record field this build
/// does not know would be dropped if the device amended the record, so such a
/// record needs a new protocol version rather than a lenient read.
#[derive(Deserialize)]
struct PulledChange {
    change_id: ChangeId,
    body: ChangeBody,
}

fn pulled_changes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Change>, D::Error> {
    let pulled = Vec::<PulledChange>::deserialize(d)?;
    Ok(pulled
        .into_iter()
        .map(|c| Change {
            change_id: c.change_id,
            body: c.body,
        })
        .collect())
}

/// A record whose history forked, for a clinician to reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The record.
    pub record_id: RecordId,
    /// Its heads, newest first.
    pub heads: Vec<VersionId>,
}

/// The answer to `GET /sync/v1/forks`: one page of the network's forked
/// records, in record id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForksResponse {
    /// Forked records in the caller's network, at most the page's limit.
    pub forks: Vec<Fork>,
    /// Whether more forked records follow this page. Absent (false) in the
    /// answers of endpoints from before forks were paged, which listed all.
    #[serde(default)]
    pub more: bool,
    /// When `more`, the record id to send as `after` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<RecordId>,
}

/// Asks which of these changes the endpoint holds for the caller's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldRequest {
    /// The network the device belongs to; if given, must be the token's
    /// network, as in a push. Without it, a device configured for one
    /// network and signed in to another would hear that none of its changes
    /// is held. Optional so that devices built before it still ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkId>,
    /// At most [`MAX_HELD_IDS`] change ids.
    pub change_ids: Vec<ChangeId>,
}

/// The answer to a [`HeldRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldResponse {
    /// The change ids asked about that the caller's network does not hold,
    /// in the order asked.
    pub missing: Vec<ChangeId>,
}

/// The answer to a revocation. It names the network and what the endpoint
/// holds from the device, because a revocation under a mistyped id, or with
/// another network's coordinator token, succeeds too: the answer is where a
/// coordinator sees that the phone meant is still let in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeResponse {
    /// The device now revoked (revoking twice is not an error).
    pub device: DeviceId,
    /// The network it is revoked in: the coordinator token's. Absent from
    /// endpoints built before it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkId>,
    /// How many changes that network holds from the device. None (zero)
    /// means the device never pushed there: a phone that has only pulled,
    /// or a wrong id or network. Absent from older endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_held: Option<u64>,
}

/// What went wrong with a request, for the device's logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON (400).
    MalformedJson,
    /// The JSON does not have the expected shape; `field` says where (400).
    BadRequest,
    /// The body or batch is too large (413).
    PayloadTooLarge,
    /// The body is not `application/json` (415).
    UnsupportedMediaType,
    /// One or more changes were refused; see `rejected`. Nothing was stored (422).
    InvalidChanges,
    /// No valid token (401): sign in again.
    Unauthorized,
    /// The token is valid but may not do this (403).
    Forbidden,
    /// The request names a network other than the token's (403).
    WrongNetwork,
    /// This device was revoked (403): push what is left, then wipe.
    DeviceRevoked,
    /// The cursor was not made by this endpoint for this network (400).
    BadCursor,
    /// No such path (404).
    NotFound,
    /// The path does not take the request's method; the `Allow` header says
    /// which it takes (405).
    MethodNotAllowed,
    /// The endpoint failed; retry later. Details are in its log only (500).
    Internal,
    /// The endpoint is unavailable for now; retry later (503).
    Unavailable,
    /// A code this build does not know.
    #[serde(other)]
    Unknown,
}

/// One change refused while checking a push, before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedChange {
    /// Its position in the batch.
    pub index: usize,
    /// Its id, when the id itself could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<ChangeId>,
    /// Why, for the device's logic.
    pub code: RejectCode,
    /// Which field, relative to the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why, for a person.
    pub reason: String,
}

/// The body of every 4xx and 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What is wrong, for a person; never carries patient data.
    pub message: String,
    /// Which field of the request, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For [`ErrorCode::InvalidChanges`]: every change refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedChange>,
}

#[cfg(test)]
mod tests {
    use doorstep_domain::network::ClinicianId;
    use doorstep_domain::record::{RecordId, VersionId, VersionMeta, parse_checked};

    use super::*;
    use crate::fixtures;

    fn meta(n: u128) -> VersionMeta {
        VersionMeta::first(
            RecordId(Uuid::from_u128(n)),
            VersionId(Uuid::from_u128(n + 1)),
            ClinicianId::parse("para-ahmed").unwrap(),
            DeviceId::parse("phone-1").unwrap(),
            fixtures::instant(),
        )
    }

    fn push() -> PushRequest {
        PushRequest {
            network: NetworkId::parse("east-dorset").unwrap(),
            device: DeviceId::parse("phone-1").unwrap(),
            changes: vec![
                fixtures::visit_change(ChangeId(Uuid::from_u128(100)), meta(1), 3),
                Change {
                    change_id: ChangeId(Uuid::from_u128(101)),
                    body: ChangeBody::MedicationReview(fixtures::medication_review(meta(5), 4)),
                },
            ],
        }
    }

    #[test]
    fn push_request_wire_form() {
        insta::assert_json_snapshot!("push_request", push());
    }

    #[test]
    fn push_request_round_trips_and_records_pass_the_domain_checks() {
        let request = push();
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<PushRequest>(&json).unwrap(), request);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let visit = value["changes"][0]["body"]["record"].to_string();
        parse_checked::<VisitRecord>(&visit).unwrap();
        let review = value["changes"][1]["body"]["record"].to_string();
        parse_checked::<MedicationReviewRecord>(&review).unwrap();
    }

    #[test]
    fn push_request_refuses_unknown_fields() {
        let mut value = serde_json::to_value(push()).unwrap();
        value["priority"] = serde_json::json!("high");
        assert!(serde_json::from_value::<PushRequest>(value).is_err());
    }

    #[test]
    fn push_response_wire_form_covers_every_outcome() {
        let id = |n| ChangeId(Uuid::from_u128(n));
        let response = PushResponse {
            results: vec![
                ChangeResult {
                    change_id: id(1),
                    outcome: ChangeOutcome::Accepted,
                },
                ChangeResult {
                    change_id: id(2),
                    outcome: ChangeOutcome::Duplicate,
                },
                ChangeResult {
                    change_id: id(3),
                    outcome: ChangeOutcome::Forked {
                        record_id: RecordId(Uuid::from_u128(30)),
                        heads: vec![
                            VersionId(Uuid::from_u128(32)),
                            VersionId(Uuid::from_u128(31)),
                        ],
                    },
                },
                ChangeResult {
                    change_id: id(4),
                    outcome: ChangeOutcome::Rejected {
                        code: RejectCode::ChangeIdReused,
                        field: None,
                        reason: "stored before with different content".into(),
                    },
                },
            ],
            device_status: DeviceStatus::Active,
        };
        insta::assert_json_snapshot!("push_response", response);
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(
            serde_json::from_str::<PushResponse>(&json).unwrap(),
            response
        );
    }

    #[test]
    fn pull_response_wire_form() {
        let response = PullResponse {
            network: Some(NetworkId::parse("east-dorset").unwrap()),
            changes: vec![fixtures::visit_change(
                ChangeId(Uuid::from_u128(100)),
                meta(1),
                3,
            )],
            cursor: Cursor::from_token("c1.42"),
            more: false,
        };
        insta::assert_json_snapshot!("pull_response", response);
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(
            serde_json::from_str::<PullResponse>(&json).unwrap(),
            response
        );
    }

    #[test]
    fn error_body_wire_form_names_each_refused_change() {
        let body = ErrorBody {
            code: ErrorCode::InvalidChanges,
            message: "1 of 2 changes refused; nothing was stored".into(),
            field: None,
            rejected: vec![RejectedChange {
                index: 1,
                change_id: Some(ChangeId(Uuid::from_u128(101))),
                code: RejectCode::Invalid,
                field: Some("body.record.content.departed_at".into()),
                reason: "must not be before arrived_at".into(),
            }],
        };
        insta::assert_json_snapshot!("error_body", body);
    }

    #[test]
    fn revocation_and_forks_wire_forms() {
        insta::assert_json_snapshot!(
            "revoked_push_response",
            PushResponse {
                results: vec![],
                device_status: DeviceStatus::Revoked,
            }
        );
        insta::assert_json_snapshot!(
            "device_revoked_error",
            ErrorBody {
                code: ErrorCode::DeviceRevoked,
                message: "this device was revoked: push what it holds, then wipe".into(),
                field: None,
                rejected: vec![],
            }
        );
        insta::assert_json_snapshot!(
            "forks_response",
            ForksResponse {
                forks: vec![Fork {
                    record_id: RecordId(Uuid::from_u128(30)),
                    heads: vec![VersionId(Uuid::from_u128(32))],
                }],
                more: true,
                after: Some(RecordId(Uuid::from_u128(30))),
            }
        );
    }

    #[test]
    fn held_wire_forms() {
        insta::assert_json_snapshot!(
            "held_request",
            HeldRequest {
                network: Some(NetworkId::parse("east-dorset").unwrap()),
                change_ids: vec![ChangeId(Uuid::from_u128(1)), ChangeId(Uuid::from_u128(2))],
            }
        );
        insta::assert_json_snapshot!(
            "held_response",
            HeldResponse {
                missing: vec![ChangeId(Uuid::from_u128(2))],
            }
        );
        let unknown = r#"{"network":"east-dorset","change_ids":[],"since":"yesterday"}"#;
        assert!(serde_json::from_str::<HeldRequest>(unknown).is_err());
        // As devices built before the field ask.
        let older: HeldRequest = serde_json::from_str(r#"{"change_ids":[]}"#).unwrap();
        assert_eq!(older.network, None);
    }

    #[test]
    fn responses_tolerate_fields_and_codes_added_later() {
        let json = r#"{"code":"quota_exceeded","message":"x","hint":"later"}"#;
        let body: ErrorBody = serde_json::from_str(json).unwrap();
        assert_eq!(body.code, ErrorCode::Unknown);
        let json = r#"{"results":[],"device_status":"active","server_time":"now"}"#;
        assert!(serde_json::from_str::<PushResponse>(json).is_ok());
    }

    #[test]
    fn pulled_changes_tolerate_envelope_fields_added_later_but_not_record_fields() {
        let change = fixtures::visit_change(ChangeId(Uuid::from_u128(100)), meta(1), 3);
        let mut page = serde_json::json!({"changes": [change], "cursor": "c1", "more": false});
        page["changes"][0]["stored_at"] = "2026-11-24T11:00:00Z".into();
        page["changes"][0]["body"]["origin"] = "endpoint-2".into();
        let read: PullResponse = serde_json::from_value(page.clone()).unwrap();
        assert_eq!(read.changes, vec![change]);

        page["changes"][0]["body"]["record"]["content"]["allergies"] = "none known".into();
        let e = serde_json::from_value::<PullResponse>(page).unwrap_err();
        assert!(e.to_string().contains("allergies"), "{e}");

        let mut push = serde_json::to_value(push()).unwrap();
        push["changes"][0]["stored_at"] = "2026-11-24T11:00:00Z".into();
        assert!(serde_json::from_value::<PushRequest>(push).is_err());
    }

    #[test]
    fn change_kind_tags_match_serde() {
        for kind in [ChangeKind::VisitRecord, ChangeKind::MedicationReview] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ChangeKind::parse("visit"), None);
    }
}
