//! The sync API, `/sync/v1/`: push a batch of a device's outbox, pull the
//! network's changes by cursor, list forked records, revoke a device.
//!
//! Every handler takes a [`Caller`], so the network each storage call is
//! scoped to is the verified token's. A push is checked completely before
//! anything is stored: the envelope's shape, the network and device, then
//! every record through the clinical domain's own parser; one refused change
//! refuses the batch with 422 listing each refusal, so the device can mark
//! exactly those and push the rest.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use doorstep_domain::ValidationError;
use doorstep_domain::medication_review::MedicationReview;
use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_domain::record::{RecordVersion, Validate, VisitContent, parse_checked};
use doorstep_sync::wire::{
    ChangeId, ChangeKind, ChangeOutcome, ChangeResult, Cursor, DeviceStatus, FORKS_PATH,
    ForksResponse, MAX_PULL_LIMIT, MAX_PUSH_CHANGES, PULL_PATH, PUSH_PATH, PushResponse,
    REVOKE_PATH, RejectCode, RejectedChange, RevokeResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::app::AppState;
use crate::auth::{Caller, TokenRole};
use crate::error::ApiError;
use crate::storage::CheckedChange;

/// The sync routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PUSH_PATH, post(push))
        .route(PULL_PATH, get(pull))
        .route(FORKS_PATH, get(forks))
        .route(REVOKE_PATH, post(revoke))
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

fn check_record<T>(
    index: usize,
    change: &RawChange,
    caller: &Caller,
    device: &DeviceId,
) -> Result<CheckedChange, RejectedChange>
where
    T: DeserializeOwned + Serialize + Validate,
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
    require_json(&headers)?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::MalformedJson {
        field: None,
        reason: "not UTF-8".into(),
    })?;
    let raw: RawPush = doorstep_domain::text::from_json(text).map_err(|e| {
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
    })?;
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
    for (i, change) in raw.changes.iter().enumerate() {
        let result = match change.body.kind {
            ChangeKind::VisitRecord => check_record::<VisitContent>(i, change, &caller, &device),
            ChangeKind::MedicationReview => {
                check_record::<MedicationReview>(i, change, &caller, &device)
            }
        };
        match result {
            Ok(c) => checked.push(c),
            Err(r) => rejected.push(r),
        }
    }
    if !rejected.is_empty() {
        return Err(ApiError::InvalidChanges { rejected, total });
    }
    let ids: Vec<ChangeId> = checked.iter().map(|c| c.change_id).collect();
    let outcomes = state.storage.push(caller.scope(), checked).await?;
    let revoked = state.storage.is_revoked(caller.scope(), &device).await?;
    let stored = outcomes.iter().filter(|o| o.is_stored()).count();
    let forked = outcomes
        .iter()
        .filter(|o| matches!(o, ChangeOutcome::Forked { .. }))
        .count();
    tracing::info!(changes = total, stored, forked, revoked, "push");
    Ok(Json(PushResponse {
        results: ids
            .into_iter()
            .zip(outcomes)
            .map(|(change_id, outcome)| ChangeResult { change_id, outcome })
            .collect(),
        device_status: if revoked {
            DeviceStatus::Revoked
        } else {
            DeviceStatus::Active
        },
    }))
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

const CURSOR_PREFIX: &str = "v1.";

fn decode_cursor(text: Option<&str>) -> Result<u64, ApiError> {
    match text {
        None | Some("") => Ok(0),
        Some(t) => t
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or(ApiError::BadCursor),
    }
}

fn encode_cursor(seq: u64) -> Cursor {
    if seq == 0 {
        Cursor::beginning()
    } else {
        Cursor::from_token(format!("{CURSOR_PREFIX}{seq}"))
    }
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
    changes: Vec<PulledChange<'a>>,
    cursor: Cursor,
    more: bool,
}

async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest {
        field: None,
        reason: format!("bad query: {}", e.body_text()),
    })?;
    if caller.role().writes_records() {
        let device = device_of(&caller)?;
        if state.storage.is_revoked(caller.scope(), device).await? {
            return Err(ApiError::DeviceRevoked);
        }
    }
    let after = decode_cursor(query.cursor.as_deref())?;
    let limit = query.limit.unwrap_or(MAX_PULL_LIMIT);
    if limit == 0 || limit > MAX_PULL_LIMIT {
        return Err(ApiError::BadRequest {
            field: Some("limit".into()),
            reason: format!("must be 1-{MAX_PULL_LIMIT}"),
        });
    }
    let mut rows = state.storage.pull(caller.scope(), after, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let cursor = encode_cursor(rows.last().map_or(after, |r| r.seq));
    let raws = rows
        .iter()
        .map(|r| RawValue::from_string(r.body.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::Internal("a stored record is not JSON".into()))?;
    let page = PulledPage {
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

async fn forks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ForksResponse>, ApiError> {
    let forks = state.storage.forks(caller.scope()).await?;
    Ok(Json(ForksResponse { forks }))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
) -> Result<Json<RevokeResponse>, ApiError> {
    if caller.role() != TokenRole::Coordinator {
        return Err(ApiError::Forbidden(
            "only a coordinator can revoke devices".into(),
        ));
    }
    let device = DeviceId::parse(&device).map_err(|e| ApiError::BadRequest {
        field: Some("device".into()),
        reason: e.reason,
    })?;
    state.storage.revoke_device(caller.scope(), &device).await?;
    tracing::info!(device = %device, "device revoked");
    Ok(Json(RevokeResponse { device }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_text_is_refused() {
        assert_eq!(decode_cursor(None).unwrap(), 0);
        assert_eq!(decode_cursor(Some("")).unwrap(), 0);
        assert_eq!(decode_cursor(Some(encode_cursor(42).as_str())).unwrap(), 42);
        assert!(encode_cursor(0).is_beginning());
        for bad in ["42", "v1.", "v1.-3", "v2.5", "v1.5x"] {
            assert!(
                matches!(decode_cursor(Some(bad)), Err(ApiError::BadCursor)),
                "{bad}"
            );
        }
    }
}
