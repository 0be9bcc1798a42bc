//! Who is calling: JWT verification, the endpoint's own signing key, and the
//! [`Caller`] extractor every scoped handler takes.
//!
//! A handler that touches a network's data takes a [`Caller`], and gets the
//! [`NetworkScope`] every storage call needs from [`Caller::scope`], so the
//! network a query reads is the verified token's. (`NetworkScope`'s other
//! constructor is public for tests and operator tools; handlers never call it.)

pub mod claims;
pub mod keys;
pub mod verify;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use doorstep_domain::network::{DeviceId, NetworkId};

use crate::app::AppState;
use crate::error::ApiError;
use crate::storage::NetworkScope;
pub use claims::{AccessClaims, IssuedClaims, TokenRole};
pub use keys::SigningKey;
pub use verify::{AuthError, JwksSource, Verifier};

/// The verified bearer of a request: subject, role, device and network.
#[derive(Debug, Clone)]
pub struct Caller {
    subject: String,
    role: TokenRole,
    device: Option<DeviceId>,
    scope: NetworkScope,
}

impl Caller {
    /// The caller's network: the only one its requests may touch.
    pub fn scope(&self) -> &NetworkScope {
        &self.scope
    }

    /// The caller's network id.
    pub fn network(&self) -> &NetworkId {
        self.scope.network()
    }

    /// Who: a clinician's id or a system's name.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// What they may do.
    pub fn role(&self) -> TokenRole {
        self.role
    }

    /// The device the token was issued to, if any.
    pub fn device(&self) -> Option<&DeviceId> {
        self.device.as_ref()
    }

    /// Builds the caller from verified claims.
    pub fn from_claims(claims: AccessClaims) -> Self {
        Self {
            subject: claims.sub,
            role: claims.role,
            device: claims.dev,
            scope: NetworkScope::for_verified_network(claims.net),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(AuthError::Missing))?;
        // The scheme's name is case-insensitive (RFC 9110, 11.1): some
        // practice systems' clients send `bearer`.
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or(ApiError::Unauthorized(AuthError::Missing))?;
        let claims = state
            .verifier
            .verify(token.trim())
            .map_err(ApiError::Unauthorized)?;
        let caller = Caller::from_claims(claims);
        tracing::Span::current().record("subject", caller.subject());
        Ok(caller)
    }
}
