//! The sync API, `/sync/v1/`: push a batch of a device's outbox, pull the
//! network's changes by cursor, list forked records a page at a time, revoke
//! a device, and tell a device which of its changes the network does not
//! hold (after a restore).
//!
//! Every handler takes a [`Caller`], so the network each storage call is
//! scoped to is the verified token's. A push is checked completely before
//! anything is stored: the envelope's shape, the network and device, then
//! every record through the clinical domain's own parser; one refused change
//! refuses the batch with 422 listing each refusal, so the device can mark
//! exactly those and push the rest. A pull hands out pages bounded in changes
//! and in bytes, and a cursor that names the caller's network and the change
//! it follows; a cursor that does not match the network as stored now is
//! refused rather than trusted. Forks are listed in record id order, `limit`
//! at a time, each page going on after the record id the last one named.

use std::collections::{HashMap, HashSet};

use aws_lc_rs::digest;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use doorstep_domain::ValidationError;
use doorstep_domain::medication_review::MedicationReview;
use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_domain::record::{
    RecordId, RecordVersion, Validate, VersionId, VisitContent, WrittenContent, parse_checked,
};
use doorstep_sync::wire::{
    ChangeId, ChangeKind, ChangeOutcome, ChangeResult, Cursor, DEFAULT_FORKS_LIMIT, DeviceStatus,
    FORKS_PATH, ForksResponse, HELD_PATH, HeldRequest, HeldResponse, MAX_FORKS_LIMIT, MAX_HELD_IDS,
    MAX_PULL_LIMIT, MAX_PUSH_CHANGES, PULL_PATH, PUSH_PATH, PushResponse, REVOKE_PATH, RejectCode,
    RejectedChange, RevokeResponse,
};
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::app::AppState;
use crate::auth::{Caller, TokenRole};
use crate::error::ApiError;
use crate::storage::plan::{AMENDS_REFUSED_REASON, MERGES_REFUSED_REASON};
use crate::storage::{CheckedChange, ForksPage, PullPage};

/// The sync routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PUSH_PATH, post(push))
        .route(PULL_PATH, get(pull))
        .route(FORKS_PATH, get(forks))
        .route(REVOKE_PATH, post(revoke))
        .route(HELD_PATH, post(held))
}

/// The push envelope as first parsed: records stay raw until each is checked
/// on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush {
    network: NetworkId,
    device: DeviceId,
    changes: Vec<RawChange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChange {
    change_id: ChangeId,
    body: RawBody,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawBody {
    kind: ChangeKind,
    record: Box<RawValue>,
}

fn refuse(
    index: usize,
    change_id: ChangeId,
    code: RejectCode,
    e: ValidationError,
) -> RejectedChange {
    RejectedChange {
        index,
        change_id: Some(change_id),
        code,
        field: Some(if e.field.is_empty() {
            "body.record".to_owned()
        } else {
            format!("body.record.{}", e.field)
        }),
        reason: e.reason,
    }
}

/// How far after the endpoint's clock a version's `written_at` may be.
/// Clinicians' phones drift and are set by hand to wrong days and zones, so
/// the leeway is generous; without a bound, a phone set years ahead would win
/// every fork it takes part in, since a fork shows its newest-written head
/// (on every device and at `/forks`) until a clinician reconciles it.
pub const WRITTEN_AT_LEEWAY: SignedDuration = SignedDuration::from_hours(24);

fn check_record<T>(
    index: usize,
    change: &RawChange,
    caller: &Caller,
    device: &DeviceId,
    now: Timestamp,
) -> Result<CheckedChange, RejectedChange>
where
    T: DeserializeOwned + Serialize + Validate + WrittenContent,
{
    let record: RecordVersion<T> = parse_checked(change.body.record.get())
        .map_err(|e| refuse(index, change.change_id, RejectCode::Invalid, e))?;
    if record.meta.device != *device {
        return Err(refuse(
            index,
            change.change_id,
            RejectCode::NotYours,
            ValidationError::new("meta.device", "is not the pushing device"),
        ));
    }
    if record.meta.author.as_str() != caller.subject() {
        return Err(refuse(
            index,
            change.change_id,
            RejectCode::NotYours,
            ValidationError::new("meta.author", "is not the signed-in clinician"),
        ));
    }
    if record.meta.written_at > now + WRITTEN_AT_LEEWAY {
        return Err(refuse(
            index,
            change.change_id,
            RejectCode::Invalid,
            ValidationError::new(
                "meta.written_at",
                format!(
                    "is more than {} hours after the endpoint's clock; \
                     check the device's date and time",
                    WRITTEN_AT_LEEWAY.as_hours()
                ),
            ),
        ));
    }
    let body = serde_json::to_string(&record).map_err(|_| {
        refuse(
            index,
            change.change_id,
            RejectCode::Invalid,
            ValidationError::new("", "cannot be stored"),
        )
    })?;
    Ok(CheckedChange {
        change_id: change.change_id,
        kind: change.body.kind,
        meta: record.meta,
        body,
    })
}

/// The places in the push of the changes in `rejected` as invalid that the
/// network holds already under the same change id, kind and record, written
/// by the caller on the calling device: what a device sends again when a
/// push's answer was lost. (Another's, or another device's, stays refused,
/// whatever is stored.) The record is compared as
/// JSON values (the device sends what it serialised from the record, and the
/// endpoint stored the same record serialised again).
async fn stored_as_sent(
    state: &AppState,
    caller: &Caller,
    changes: &[RawChange],
    rejected: &[RejectedChange],
) -> Result<HashSet<usize>, ApiError> {
    let places: HashMap<ChangeId, usize> = rejected
        .iter()
        .filter(|r| r.code == RejectCode::Invalid)
        .filter_map(|r| r.change_id.map(|id| (id, r.index)))
        .collect();
    if places.is_empty() {
        return Ok(HashSet::new());
    }
    let stored = state
        .storage
        .stored_changes(caller.scope(), places.keys().copied().collect())
        .await?;
    Ok(stored
        .into_iter()
        .filter_map(|(id, kind, body)| {
            let i = places[&id];
            let sent = changes.get(i)?;
            let owner: Owner = serde_json::from_str(sent.body.record.get()).ok()?;
            let same = owner.meta.author == caller.subject()
                && caller.device() == Some(&owner.meta.device)
                && sent.body.kind == kind
                && serde_json::from_str::<serde_json::Value>(sent.body.record.get()).ok()?
                    == serde_json::from_str::<serde_json::Value>(&body).ok()?;
            same.then_some(i)
        })
        .collect())
}

/// Who wrote a record and on which device, read from its envelope alone.
#[derive(Deserialize)]
struct Owner {
    meta: OwnerMeta,
}

#[derive(Deserialize)]
struct OwnerMeta {
    author: String,
    device: DeviceId,
}

/// The one field of a record's envelope that [`refuse_built_on_refused`]
/// needs from a change refused by the checks, read without them: the record
/// may have failed the domain's checks anywhere but in its envelope.
#[derive(Deserialize)]
struct VersionIdOnly {
    meta: MetaVersionId,
}

#[derive(Deserialize)]
struct MetaVersionId {
    version_id: VersionId,
}

/// Adds to a 422's `rejected` every change of the push that passed its
/// checks but builds on a version refused by them, or on such a change in
/// turn: one amending it, with code `invalid`, field
/// `body.record.meta.supersedes` and [`AMENDS_REFUSED_REASON`], and one
/// merging it, with field `body.record.meta.merges` and
/// [`MERGES_REFUSED_REASON`]. The list ends in push order. `checked` holds
/// the changes that passed, with their places in the push.
///
/// The device pushes again what the 422 does not name. An amendment queued
/// on top of a refused change would then reach the endpoint alone, amending
/// a version it never held, and be stored: its record forked with nothing
/// superseding what the refused change amended. Named here, the device
/// holds it back with the refused one, and correcting it puts both right.
/// A merge of the refused version would be refused when pushed again alone
/// (a version may merge only versions the endpoint holds), but a push later and
/// with a reason that does not say which refusal it follows; named here, it
/// is refused with the change it builds on, as the push plan refuses it in
/// a 200 answer, and whatever amends it is held back too. A refused change
/// whose envelope cannot be read (its record is not a record at all) names
/// no version, so nothing is refused for it.
fn refuse_built_on_refused(
    changes: &[RawChange],
    checked: &[(usize, CheckedChange)],
    rejected: &mut Vec<RejectedChange>,
) {
    let mut refused: HashSet<VersionId> = rejected
        .iter()
        .filter_map(|r| changes.get(r.index))
        .filter_map(|c| serde_json::from_str::<VersionIdOnly>(c.body.record.get()).ok())
        .map(|v| v.meta.version_id)
        .collect();
    let mut named: HashSet<usize> = HashSet::new();
    // Until nothing more is found, so that a chain is followed whatever the
    // order of its changes in the push.
    loop {
        let mut found = false;
        for (index, change) in checked {
            let (field, reason) = if change
                .meta
                .supersedes
                .is_some_and(|base| refused.contains(&base))
            {
                ("body.record.meta.supersedes", AMENDS_REFUSED_REASON)
            } else if change.meta.merges.iter().any(|m| refused.contains(m)) {
                ("body.record.meta.merges", MERGES_REFUSED_REASON)
            } else {
                continue;
            };
            if named.insert(*index) {
                refused.insert(change.meta.version_id);
                rejected.push(RejectedChange {
                    index: *index,
                    change_id: Some(change.change_id),
                    code: RejectCode::Invalid,
                    field: Some(field.to_owned()),
                    reason: reason.to_owned(),
                });
                found = true;
            }
        }
        if !found {
            break;
        }
    }
    rejected.sort_by_key(|r| r.index);
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// A request's JSON body as `T`: 413 past the body limit, 415 when not
/// labelled JSON, 400 `malformed_json` when not JSON, 400 `bad_request`
/// naming the field when not shaped as `T` (unknown fields included).
fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the body is larger than {} bytes",
                crate::app::MAX_BODY_BYTES
            ))
        } else {
            ApiError::BadRequest {
                field: None,
                reason: "the body could not be read".into(),
            }
        }
    })?;
    require_json(headers)?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::MalformedJson {
        field: None,
        reason: "not UTF-8".into(),
    })?;
    doorstep_domain::text::from_json(text).map_err(|e| {
        let field = (!e.field.is_empty()).then(|| e.field.clone());
        if e.reason.starts_with("not valid JSON") {
            ApiError::MalformedJson {
                field,
                reason: e.reason,
            }
        } else {
            ApiError::BadRequest {
                field,
                reason: e.reason,
            }
        }
    })
}

/// `POST /sync/v1/held`: which of a device's change ids its network does not
/// hold. Only a role that pushes records may ask (a device asks about its
/// own changes, to push again what a restore lost), and only about the
/// token's network; a revoked device may too, as it may still push what it
/// holds.
async fn held(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<HeldResponse>, ApiError> {
    if !caller.role().writes_records() {
        return Err(ApiError::Forbidden(
            "only a role that pushes records may ask which are held".into(),
        ));
    }
    let request: HeldRequest = json_body(&headers, body)?;
    if request
        .network
        .as_ref()
        .is_some_and(|n| n != caller.network())
    {
        return Err(ApiError::WrongNetwork);
    }
    if request.change_ids.len() > MAX_HELD_IDS {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {MAX_HELD_IDS} change ids a request"
        )));
    }
    let asked = request.change_ids.len();
    let missing = state
        .storage
        .missing_changes(caller.scope(), request.change_ids)
        .await?;
    tracing::info!(asked, missing = missing.len(), "held");
    Ok(Json(HeldResponse { missing }))
}

fn device_of(caller: &Caller) -> Result<&DeviceId, ApiError> {
    caller
        .device()
        .ok_or_else(|| ApiError::Forbidden("the token names no device".into()))
}

async fn push(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PushResponse>, ApiError> {
    if !caller.role().writes_records() {
        return Err(ApiError::Forbidden("this role cannot push records".into()));
    }
    let device = device_of(&caller)?.clone();
    let raw: RawPush = json_body(&headers, body)?;
    if raw.network != *caller.network() {
        return Err(ApiError::WrongNetwork);
    }
    if raw.device != device {
        return Err(ApiError::Forbidden(
            "the request's device is not the token's".into(),
        ));
    }
    if raw.changes.len() > MAX_PUSH_CHANGES {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {MAX_PUSH_CHANGES} changes per push"
        )));
    }
    let total = raw.changes.len();
    let mut checked = Vec::with_capacity(total);
    let mut rejected = Vec::new();
    let now = Timestamp::now();
    for (i, change) in raw.changes.iter().enumerate() {
        let result = match change.body.kind {
            ChangeKind::VisitRecord => {
                check_record::<VisitContent>(i, change, &caller, &device, now)
            }
            ChangeKind::MedicationReview => {
                check_record::<MedicationReview>(i, change, &caller, &device, now)
            }
        };
        match result {
            Ok(c) => checked.push((i, c)),
            Err(r) => rejected.push(r),
        }
    }
    // A change refused by today's checks that the endpoint stored as sent
    // (its answer lost, the checks stricter since) is the duplicate it is:
    // refused, the device would correct a version colleagues already have,
    // forking its record.
    let held = if rejected.is_empty() {
        HashSet::new()
    } else {
        stored_as_sent(&state, &caller, &raw.changes, &rejected).await?
    };
    rejected.retain(|r| !held.contains(&r.index));
    if !rejected.is_empty() {
        refuse_built_on_refused(&raw.changes, &checked, &mut rejected);
        return Err(ApiError::InvalidChanges { rejected, total });
    }
    let (places, checked): (Vec<usize>, Vec<CheckedChange>) = checked.into_iter().unzip();
    // Read before the push, so that a database out of reach for this read
    // answers an error only while nothing of the push is stored (a revocation
    // landing in between is heard at the device's next pull, which it refuses).
    let revoked = state.storage.is_revoked(caller.scope(), &device).await?;
    let outcomes = state.storage.push(caller.scope(), checked).await?;
    let stored = outcomes.iter().filter(|o| o.is_stored()).count();
    let forked = outcomes
        .iter()
        .filter(|o| matches!(o, ChangeOutcome::Forked { .. }))
        .count();
    tracing::info!(changes = total, stored, forked, revoked, "push");
    let mut judged: Vec<Option<ChangeOutcome>> = vec![None; total];
    for (i, outcome) in places.into_iter().zip(outcomes) {
        judged[i] = Some(outcome);
    }
    Ok(Json(PushResponse {
        results: raw
            .changes
            .iter()
            .zip(judged)
            .map(|(change, outcome)| ChangeResult {
                change_id: change.change_id,
                outcome: outcome.unwrap_or(ChangeOutcome::Duplicate),
            })
            .collect(),
        device_status: if revoked {
            DeviceStatus::Revoked
        } else {
            DeviceStatus::Active
        },
    }))
}

/// A query string that does not parse, or names a parameter the route does
/// not know: 400 with the parser's words (which name the parameter).
fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::BadRequest {
        field: None,
        reason: format!("bad query: {}", e.body_text()),
    }
}

/// The query of a pull; unknown parameters are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PullQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

/// Most bytes of record bodies one pull page carries (unless its first
/// change alone is larger: a page always moves the cursor). A record can be
/// up to a megabyte (more if stored before the domain bounded records); a
/// page this size still finishes over a weak mobile link, where 500 such
/// records never would.
pub const MAX_PULL_PAGE_BYTES: u64 = 1024 * 1024;

/// The cursor format's mark: a cursor is `v2.<seq>.<tag>`, where `seq` is the
/// sequence number of the last change pulled and `tag` hashes the network, the
/// sequence number and that change's id. Cursors of the first format (`v1.`,
/// which did not name their network) are refused like any foreign text.
const CURSOR_PREFIX: &str = "v2.";
/// Bytes of SHA-256 kept in a cursor's tag: 96 bits, so two networks' cursors
/// never pass for each other by chance, in 16 characters of base64url.
const CURSOR_TAG_BYTES: usize = 12;

/// A cursor after the change `change`, stored at `seq` in `network`. The
/// tag needs no secret: a cursor grants nothing (the token scopes every read),
/// it only has to be recognisably made for this network's stream as stored.
fn encode_cursor(network: &NetworkId, epoch: &str, seq: u64, change: ChangeId) -> Cursor {
    let mut named = format!(
        "doorstep pull cursor\0{}\0{seq}\0{}",
        network.as_str(),
        change.0
    );
    // A database never restored has the empty epoch, and makes the cursors
    // it made before epochs existed.
    if !epoch.is_empty() {
        named.push('\0');
        named.push_str(epoch);
    }
    let hash = digest::digest(&digest::SHA256, named.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(&hash.as_ref()[..CURSOR_TAG_BYTES]);
    Cursor::from_token(format!("{CURSOR_PREFIX}{seq}.{tag}"))
}

/// The sequence number a cursor's text claims, if it has the cursor's shape:
/// a decimal of 0 to `i64::MAX` (what storage can hold). Whether the endpoint
/// made it is checked against storage by [`resolve_cursor`].
fn cursor_seq(text: &str) -> Result<u64, ApiError> {
    let (seq, _tag) = text
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .ok_or(ApiError::BadCursor)?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadCursor);
    }
    let seq: i64 = seq.parse().map_err(|_| ApiError::BadCursor)?;
    u64::try_from(seq).map_err(|_| ApiError::BadCursor)
}

/// The sequence number to pull after. The empty cursor is the beginning; any
/// other must be exactly the cursor the endpoint makes for the change it
/// names as stored now in the caller's network, so a cursor made for another
/// network, past the network's last change (a database restored from an older
/// backup) or from a stream since rewritten is refused with `bad_cursor`
/// instead of silently skipping changes.
async fn resolve_cursor(
    state: &AppState,
    caller: &Caller,
    epoch: &str,
    text: Option<&str>,
) -> Result<u64, ApiError> {
    let text = match text {
        None | Some("") => return Ok(0),
        Some(t) => t,
    };
    let seq = cursor_seq(text)?;
    let change = state.storage.change_id_at(caller.scope(), seq).await?;
    let made_here =
        change.is_some_and(|c| encode_cursor(caller.network(), epoch, seq, c).as_str() == text);
    if !made_here {
        tracing::warn!(
            "a pull cursor names no change of this network as stored now \
             (another network's cursor, or a database restored from an older backup)"
        );
        return Err(ApiError::BadCursor);
    }
    Ok(seq)
}

/// A pulled change serialised straight from its stored JSON: the same form as
/// [`doorstep_sync::wire::Change`] without parsing the record again.
#[derive(Serialize)]
struct PulledChange<'a> {
    change_id: ChangeId,
    body: PulledBody<'a>,
}

#[derive(Serialize)]
struct PulledBody<'a> {
    kind: ChangeKind,
    record: &'a RawValue,
}

#[derive(Serialize)]
struct PulledPage<'a> {
    network: &'a NetworkId,
    changes: Vec<PulledChange<'a>>,
    cursor: Cursor,
    more: bool,
}

/// A revoked device reads nothing more of its network (pull, forks): it may
/// only push what it still holds, then wipe. Callers that are not a device
/// (a practice system, a coordinator) are not revoked this way.
async fn refuse_revoked(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if caller.role().writes_records() {
        let device = device_of(caller)?;
        if state.storage.is_revoked(caller.scope(), device).await? {
            return Err(ApiError::DeviceRevoked);
        }
    }
    Ok(())
}

async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    refuse_revoked(&state, &caller).await?;
    let epoch = state.storage.epoch().await?;
    let after = resolve_cursor(&state, &caller, &epoch, query.cursor.as_deref()).await?;
    let limit = query.limit.unwrap_or(MAX_PULL_LIMIT);
    if limit == 0 || limit > MAX_PULL_LIMIT {
        return Err(ApiError::BadRequest {
            field: Some("limit".into()),
            reason: format!("must be 1-{MAX_PULL_LIMIT}"),
        });
    }
    let PullPage {
        changes: rows,
        more,
    } = state
        .storage
        .pull(caller.scope(), after, limit, MAX_PULL_PAGE_BYTES)
        .await?;
    // Again after the read: a revocation that landed while it ran withholds
    // the page, so a revoked phone is never handed one more.
    refuse_revoked(&state, &caller).await?;
    let cursor = match (rows.last(), query.cursor) {
        (Some(last), _) => encode_cursor(caller.network(), &epoch, last.seq, last.change_id),
        (None, Some(sent)) => Cursor::from_token(sent),
        (None, None) => Cursor::beginning(),
    };
    let raws = rows
        .iter()
        .map(|r| RawValue::from_string(r.body.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::Internal("a stored record is not JSON".into()))?;
    let page = PulledPage {
        network: caller.network(),
        changes: rows
            .iter()
            .zip(&raws)
            .map(|(r, raw)| PulledChange {
                change_id: r.change_id,
                body: PulledBody {
                    kind: r.kind,
                    record: raw,
                },
            })
            .collect(),
        cursor,
        more,
    };
    tracing::info!(changes = page.changes.len(), more, "pull");
    Ok(Json(page).into_response())
}

/// The query of a forks listing; unknown parameters are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForksQuery {
    /// The record id the previous page named as `after`; empty or absent for
    /// the first page.
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn forks(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ForksQuery>, QueryRejection>,
) -> Result<Json<ForksResponse>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    refuse_revoked(&state, &caller).await?;
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(text) => Some(uuid::Uuid::parse_str(text).map(RecordId).map_err(|_| {
            ApiError::BadRequest {
                field: Some("after".into()),
                reason: "must be a record id (a UUID): the previous page's `after`, \
                         or empty for the first page"
                    .into(),
            }
        })?),
    };
    let limit = query.limit.unwrap_or(DEFAULT_FORKS_LIMIT);
    if limit == 0 || limit > MAX_FORKS_LIMIT {
        return Err(ApiError::BadRequest {
            field: Some("limit".into()),
            reason: format!("must be 1-{MAX_FORKS_LIMIT}"),
        });
    }
    let ForksPage { forks, next } = state.storage.forks(caller.scope(), after, limit).await?;
    refuse_revoked(&state, &caller).await?;
    tracing::info!(forks = forks.len(), more = next.is_some(), "forks");
    Ok(Json(ForksResponse {
        forks,
        more: next.is_some(),
        after: next,
    }))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<RevokeResponse>, ApiError> {
    if caller.role() != TokenRole::Coordinator {
        return Err(ApiError::Forbidden(
            "only a coordinator can revoke devices".into(),
        ));
    }
    // A device id that is not valid percent-encoded UTF-8 gets the same JSON
    // error body as every other refusal, not the framework's plain text.
    let Path(device) = device.map_err(|e| ApiError::BadRequest {
        field: Some("device".into()),
        reason: format!("bad path: {}", e.body_text()),
    })?;
    let device = DeviceId::parse(&device).map_err(|e| ApiError::BadRequest {
        field: Some("device".into()),
        reason: e.reason,
    })?;
    let changes_held = state.storage.revoke_device(caller.scope(), &device).await?;
    tracing::info!(device = %device, changes_held, "device revoked");
    Ok(Json(RevokeResponse {
        device,
        network: Some(caller.scope().network().clone()),
        changes_held: Some(changes_held),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u128) -> ChangeId {
        ChangeId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_cursor_names_its_sequence_number_and_nothing_else_passes_for_one() {
        let network = NetworkId::parse("east-dorset").unwrap();
        let cursor = encode_cursor(&network, "", 42, change(7));
        assert_eq!(cursor_seq(cursor.as_str()).unwrap(), 42);
        let at_max = encode_cursor(&network, "", i64::MAX as u64, change(7));
        assert_eq!(cursor_seq(at_max.as_str()).unwrap(), i64::MAX as u64);
        for bad in [
            "42",
            "v1.42",
            "v2.",
            "v2.42",
            "v2..tag",
            "v2.-3.tag",
            "v2.+3.tag",
            "v2.5x.tag",
            "v1.9223372036854775808",
            "v2.9223372036854775808.tag",
            "v2.18446744073709551616.tag",
        ] {
            assert!(matches!(cursor_seq(bad), Err(ApiError::BadCursor)), "{bad}");
        }
    }

    #[test]
    fn a_cursor_differs_by_network_and_by_the_change_it_follows() {
        let east = NetworkId::parse("east-dorset").unwrap();
        let west = NetworkId::parse("west-dorset").unwrap();
        let cursor = encode_cursor(&east, "", 5, change(1));
        assert_eq!(cursor, encode_cursor(&east, "", 5, change(1)));
        assert_ne!(cursor, encode_cursor(&west, "", 5, change(1)));
        assert_ne!(cursor, encode_cursor(&east, "", 5, change(2)));
        assert_ne!(cursor, encode_cursor(&east, "restored", 5, change(1)));
        assert!(
            !cursor.as_str().contains("east-dorset"),
            "opaque: {cursor:?}"
        );
    }
}
