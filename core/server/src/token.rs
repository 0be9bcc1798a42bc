//! Issuing the endpoint's own tokens, for the embedded default: what
//! `doorstep token issue` prints for a clinician's device, a practice system
//! or a coordinator.

use doorstep_domain::network::{ClinicianId, DeviceId, NetworkId};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use crate::app::DEFAULT_AUDIENCE;
use crate::auth::keys::KeyError;
use crate::auth::{AccessClaims, IssuedClaims, SigningKey, TokenRole};

/// Longest lifetime a token may be issued with: a shift and a half.
pub const MAX_TTL: SignedDuration = SignedDuration::from_hours(12);

/// What a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The network it is scoped to.
    pub network: NetworkId,
    /// What the bearer may do.
    pub role: TokenRole,
    /// Who: a clinician's id or a system's name.
    pub subject: String,
    /// The device, required for roles that write records.
    pub device: Option<DeviceId>,
    /// How long it is valid.
    pub ttl: SignedDuration,
}

/// Why a token was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// A role that writes records needs a device, so it can be revoked.
    #[error("role {0:?} writes records: give --device")]
    DeviceRequired(TokenRole),
    /// The lifetime is shorter than a second (a token's times are whole
    /// seconds, so it would expire as it is issued) or longer than [`MAX_TTL`].
    #[error("ttl must be at least 1 second and at most 12 hours")]
    Ttl,
    /// The subject is empty or too long.
    #[error("subject must be 1-128 characters")]
    Subject,
    /// A role that writes records signs them as its subject, which must then
    /// be a clinician's id: a record's author is one, and a push is refused
    /// unless the author is the token's subject.
    #[error(
        "role {role:?} writes records as its subject, which must be a clinician's id: {reason}"
    )]
    ClinicianSubject {
        /// The role asked for.
        role: TokenRole,
        /// Why the subject is not a clinician's id.
        reason: String,
    },
    /// The audience is empty or only spaces: every endpoint refuses to
    /// start with one, so no endpoint could accept the token.
    #[error(
        "the audience is empty: give --audience the endpoint's own (its `doorstep serve \
         --audience`, {DEFAULT_AUDIENCE} unless set)"
    )]
    Audience,
    /// Signing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Whether a token for `request` and `audience` may be issued, without a
/// key: what [`issue`] refuses, asked first by a caller that would otherwise
/// make a signing key for a token it is then refused.
pub fn check(request: &TokenRequest, audience: &str) -> Result<(), IssueError> {
    if request.role.writes_records() && request.device.is_none() {
        return Err(IssueError::DeviceRequired(request.role));
    }
    if request.ttl < SignedDuration::from_secs(1) || request.ttl > MAX_TTL {
        return Err(IssueError::Ttl);
    }
    if request.subject.is_empty() || request.subject.chars().count() > 128 {
        return Err(IssueError::Subject);
    }
    if request.role.writes_records() {
        ClinicianId::parse(&request.subject).map_err(|e| IssueError::ClinicianSubject {
            role: request.role,
            reason: e.reason,
        })?;
    }
    if audience.trim().is_empty() {
        return Err(IssueError::Audience);
    }
    Ok(())
}

/// Signs a token for `request` with `key`, valid from `now`, for `issuer`
/// and `audience`, once [`check`] allows it.
pub fn issue(
    key: &SigningKey,
    request: TokenRequest,
    issuer: &str,
    audience: &str,
    now: Timestamp,
) -> Result<String, IssueError> {
    check(&request, audience)?;
    let iat = now.as_second();
    let claims = IssuedClaims {
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        iat,
        nbf: iat,
        exp: iat + request.ttl.as_secs(),
        jti: Uuid::now_v7().to_string(),
        access: AccessClaims {
            sub: request.subject,
            net: request.network,
            role: request.role,
            dev: request.device,
        },
    };
    Ok(key.sign(&claims)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_for_an_empty_audience_is_refused_as_every_endpoint_would_refuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_create(dir.path()).unwrap();
        for audience in ["", " \t"] {
            let request = TokenRequest {
                network: NetworkId::parse("east-dorset").unwrap(),
                role: TokenRole::Coordinator,
                subject: "it-desk".into(),
                device: None,
                ttl: SignedDuration::from_hours(8),
            };
            let refused =
                issue(&key, request, "doorstep", audience, Timestamp::now()).expect_err("refused");
            assert!(refused.to_string().contains("audience"), "{refused}");
        }
    }
}
