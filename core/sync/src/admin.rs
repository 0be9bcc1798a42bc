//! What a network's IT team asks of the endpoint from its own machine, with a
//! coordinator's token: today, revoking a lost or stolen device. The
//! `doorstep device` command is a thin shell over this.

use std::time::Duration;

use doorstep_domain::network::DeviceId;

use crate::endpoint::{UrlError, secure_url, with_causes};
use crate::wire::{ErrorBody, REVOKE_PATH, RevokeResponse};

/// Longest the endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request to the endpoint did not do what was asked, in words an IT
/// team can act on.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The endpoint's URL may not carry a token (see [`crate::endpoint`]).
    #[error(transparent)]
    Url(#[from] UrlError),
    /// No answer: wrong address, the endpoint down, a certificate refused.
    #[error("could not reach {endpoint}: {reason}")]
    Unreachable {
        /// The base URL given.
        endpoint: String,
        /// Why, with the client's causes.
        reason: String,
    },
    /// 401: the token expired, was signed by a key the endpoint does not
    /// trust, or names another audience than the endpoint's.
    #[error(
        "the endpoint refused the token (expired, not signed by a key it trusts, or for \
         another audience than its --audience): issue a new one ({0})"
    )]
    TokenRefused(String),
    /// 403: the token's role may not do this.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// Any other answer (a redirect, a 5xx, a body this build cannot read).
    #[error("the endpoint answered {status}: {reason}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// The endpoint's message, or what could not be read.
        reason: String,
    },
}

/// Revokes `device` at the endpoint at `endpoint` (its base URL, perhaps with
/// a path prefix) with a coordinator's `token`. Revoking twice is not an
/// error. No redirect is followed: the token goes where the URL says or
/// nowhere.
pub async fn revoke_device(
    endpoint: &str,
    token: &str,
    device: &DeviceId,
) -> Result<RevokeResponse, AdminError> {
    secure_url(endpoint)?;
    // A device id is a slug, which needs no escaping in a path.
    let path = REVOKE_PATH.replace("{device}", device.as_str());
    let url = secure_url(&format!("{}{path}", endpoint.trim_end_matches('/')))?;
    let unreachable = |e: reqwest::Error| AdminError::Unreachable {
        endpoint: endpoint.to_owned(),
        reason: with_causes(&e),
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(unreachable)?;
    let response = client
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(unreachable)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| AdminError::Unexpected {
            status: status.as_u16(),
            reason: format!("not a revocation answer: {e}"),
        });
    }
    let reason = serde_json::from_slice::<ErrorBody>(&bytes)
        .map(|b| b.message)
        .unwrap_or_else(|_| status.to_string());
    Err(match status.as_u16() {
        401 => AdminError::TokenRefused(reason),
        403 => AdminError::Forbidden(reason),
        other => AdminError::Unexpected {
            status: other,
            reason,
        },
    })
}
