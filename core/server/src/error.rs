//! The one error type handlers return, and how each becomes a response.
//!
//! A caller's mistake gets a precise 4xx whose [`ErrorBody`] names the field
//! and the reason; our own fault gets a plain 500 or 503 whose detail goes to
//! the log only. No variant carries record content, so neither the response
//! nor the log can leak a patient's data.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use doorstep_sync::wire::{ErrorBody, ErrorCode, RejectedChange};

use crate::auth::AuthError;
use crate::storage::StorageError;

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("body is not valid JSON: {reason}")]
    MalformedJson {
        /// Where, as a JSON path, when known.
        field: Option<String>,
        /// What the parser said, without the input.
        reason: String,
    },
    /// The request's shape is wrong (unknown field, wrong type, bad query).
    #[error("bad request at {field:?}: {reason}")]
    BadRequest {
        /// Where, as a JSON path or parameter name.
        field: Option<String>,
        /// Why.
        reason: String,
    },
    /// Too many bytes or too many changes.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// Not `application/json`.
    #[error("body must be application/json")]
    UnsupportedMediaType,
    /// Some changes of a push failed the checks; nothing was stored.
    #[error("{} of {total} changes refused", rejected.len())]
    InvalidChanges {
        /// Every refused change.
        rejected: Vec<RejectedChange>,
        /// How many the push carried.
        total: usize,
    },
    /// No valid token.
    #[error("unauthorized: {0}")]
    Unauthorized(AuthError),
    /// Valid token, but not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request names another network than the token's.
    #[error("request names another network than the token's")]
    WrongNetwork,
    /// The device was revoked.
    #[error("device revoked")]
    DeviceRevoked,
    /// The cursor was not made by this endpoint for the caller's network as
    /// stored now (another network's, one past the network's last change, or
    /// not a cursor at all); the device pulls again from the beginning.
    #[error("cursor not made for this network's changes as stored")]
    BadCursor,
    /// No such route.
    #[error("not found")]
    NotFound,
    /// A route that does not take the request's method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Something else of ours failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, ErrorCode, String, Option<String>) {
        use ApiError::*;
        match self {
            MalformedJson { field, reason } => (
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                format!("body is not valid JSON: {reason}"),
                field.clone(),
            ),
            BadRequest { field, reason } => (
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                reason.clone(),
                field.clone(),
            ),
            PayloadTooLarge(what) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                what.clone(),
                None,
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "body must be sent as application/json".into(),
                None,
            ),
            InvalidChanges { rejected, total } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidChanges,
                format!(
                    "{} of {total} changes refused; nothing was stored",
                    rejected.len()
                ),
                None,
            ),
            Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "a valid bearer token is required; sign in again".into(),
                None,
            ),
            Forbidden(why) => (
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                why.clone(),
                None,
            ),
            WrongNetwork => (
                StatusCode::FORBIDDEN,
                ErrorCode::WrongNetwork,
                "the request names a network other than the token's".into(),
                Some("network".into()),
            ),
            DeviceRevoked => (
                StatusCode::FORBIDDEN,
                ErrorCode::DeviceRevoked,
                "this device was revoked: push what it holds, then wipe it".into(),
                None,
            ),
            BadCursor => (
                StatusCode::BAD_REQUEST,
                ErrorCode::BadCursor,
                "the cursor was not made by this endpoint for this network's changes as stored now; \
                 pull again from the beginning"
                    .into(),
                Some("cursor".into()),
            ),
            NotFound => (
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no such path".into(),
                None,
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "this path does not take that method; the Allow header says which it takes".into(),
                None,
            ),
            Storage(e) if e.is_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the endpoint's database is out of reach; nothing was lost on the device, \
                 retry later"
                    .into(),
                None,
            ),
            Storage(_) | Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the endpoint failed; nothing was lost on the device, retry later".into(),
                None,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, field) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "request refused");
        }
        let rejected = match self {
            ApiError::InvalidChanges { rejected, .. } => rejected,
            _ => Vec::new(),
        };
        let body = ErrorBody {
            code,
            message,
            field,
            rejected,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageError;

    #[test]
    fn a_database_out_of_reach_is_503_unavailable_and_a_failing_one_500_internal() {
        let parts = |e: StorageError| {
            let (status, code, message, _) = ApiError::Storage(e).parts();
            (status, code, message)
        };
        let (status, code, message) = parts(StorageError::WriterStopped);
        assert_eq!(
            (status, code),
            (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
        );
        assert!(!message.contains("writer"), "{message}");
        let (status, code, _) = parts(StorageError::Pool("timed out".into()));
        assert_eq!(
            (status, code),
            (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
        );
        let (status, code, _) = parts(StorageError::Corrupt("a row".into()));
        assert_eq!(
            (status, code),
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
        );
    }
}
