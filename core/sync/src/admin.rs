//! What a network's IT team and clinical leads ask of the endpoint from their
//! own machines: revoking a lost or stolen device (a coordinator's token),
//! and listing the records whose history forked, to have each reconciled.
//! The `doorstep device` and `doorstep forks` commands are thin shells over
//! this.

use std::time::Duration;

use doorstep_domain::network::DeviceId;
use doorstep_domain::record::RecordId;

use crate::endpoint::{BodyError, UrlError, secure_url, with_causes};
use serde::de::DeserializeOwned;

use crate::wire::{ErrorBody, FORKS_PATH, Fork, ForksResponse, REVOKE_PATH, RevokeResponse};

/// Longest the endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Most bytes of an answer read: a page of 500 forked records lists their
/// heads' ids, far less than this even at a thousand heads each.
const MAX_ADMIN_ANSWER_BYTES: usize = 64 * 1024 * 1024;

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
    // A device id is a slug, which needs no escaping in a path.
    let path = REVOKE_PATH.replace("{device}", device.as_str());
    let client = Client::new(endpoint)?;
    let url = client.url(&path, &[])?;
    client
        .send(
            client.http.post(url).bearer_auth(token),
            "a revocation answer",
        )
        .await
}

/// Every record of the token's network whose history is forked, with its
/// heads newest first: what a clinical lead works through to have each one
/// reconciled. Follows the endpoint's pages to the last. Any role in the
/// network may ask.
pub async fn list_forks(endpoint: &str, token: &str) -> Result<Vec<Fork>, AdminError> {
    let client = Client::new(endpoint)?;
    let mut forks = Vec::new();
    let mut after: Option<RecordId> = None;
    loop {
        let place = after.map(|a| a.0.to_string());
        let query: Vec<(&str, &str)> = place.iter().map(|a| ("after", a.as_str())).collect();
        let url = client.url(FORKS_PATH, &query)?;
        let page: ForksResponse = client
            .send(client.http.get(url).bearer_auth(token), "a forks page")
            .await?;
        forks.extend(page.forks);
        if !page.more {
            return Ok(forks);
        }
        // A page promising more must say where the next one starts, past
        // where this one did (record ids only grow along the pages), so a
        // wrong endpoint cannot keep the listing going round for ever.
        match page.after {
            Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
            _ => {
                return Err(AdminError::Unexpected {
                    status: 200,
                    reason: "a forks page promised more but named no new place to go on from"
                        .into(),
                });
            }
        }
    }
}

/// An HTTP client for one endpoint: no redirects followed, a time limit on
/// every answer.
struct Client {
    endpoint: String,
    http: reqwest::Client,
}

impl Client {
    fn new(endpoint: &str) -> Result<Self, AdminError> {
        let base = secure_url(endpoint)?;
        let http = crate::endpoint::client_for(&base)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| unreachable(endpoint, &e))?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            http,
        })
    }

    /// The URL of `path` under the endpoint, with `query`, checked again as
    /// one that may carry a token.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url, AdminError> {
        let mut url = secure_url(&format!("{}{path}", self.endpoint.trim_end_matches('/')))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends `request` and reads a success's body as `T` (`what` names it
    /// in the error when it cannot be read).
    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, AdminError> {
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(&self.endpoint, &e))?;
        let status = response.status();
        let bytes = match crate::endpoint::body_within(response, MAX_ADMIN_ANSWER_BYTES).await {
            Ok(bytes) => bytes,
            Err(BodyError::Transport(e)) => return Err(unreachable(&self.endpoint, &e)),
            Err(BodyError::TooLarge { limit }) => {
                return Err(AdminError::Unexpected {
                    status: status.as_u16(),
                    reason: format!("an answer of more than {limit} bytes, not {what}"),
                });
            }
        };
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| AdminError::Unexpected {
                status: status.as_u16(),
                reason: format!("not {what}: {e}"),
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
}

fn unreachable(endpoint: &str, e: &reqwest::Error) -> AdminError {
    AdminError::Unreachable {
        endpoint: endpoint.to_owned(),
        reason: with_causes(e),
    }
}
