//! What a token says about its bearer: who, in which role, in which network,
//! on which device.
//!
//! The same claim names are expected from the endpoint's own tokens and from
//! an outside identity provider's, so a network can move from the embedded
//! issuer to its trust's IdP without touching devices' logic.

use doorstep_domain::network::{DeviceId, NetworkId};
use serde::{Deserialize, Serialize};

/// The role a token grants. Decides which endpoints the bearer may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// A community paramedic's device: pushes visit records, pulls the network's.
    Paramedic,
    /// A clinical pharmacist's device: pushes medication reviews, pulls.
    ClinicalPharmacist,
    /// Another visiting clinician's device (ANP, GP, ...): pushes and pulls.
    Clinician,
    /// A practice's clinical system, server to server: reads the network's changes.
    PracticeSystem,
    /// The network's coordinator: reads, lists forks, revokes devices.
    Coordinator,
}

impl TokenRole {
    /// True for roles that write clinical records from a device.
    pub fn writes_records(self) -> bool {
        matches!(
            self,
            TokenRole::Paramedic | TokenRole::ClinicalPharmacist | TokenRole::Clinician
        )
    }

    /// Reads a role as written on the command line (`paramedic`, ...).
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }
}

/// The claims the endpoint reads after the signature and the registered
/// claims (`iss`, `aud`, `exp`, `nbf`) have been checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The bearer: a clinician's id or a system's name.
    pub sub: String,
    /// The network every query is scoped to.
    pub net: NetworkId,
    /// What the bearer may do.
    pub role: TokenRole,
    /// The device the token was issued to; required for roles that write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<DeviceId>,
}

/// The full claim set of a token the endpoint issues itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expires (Unix seconds).
    pub exp: i64,
    /// Unique id, for audit.
    pub jti: String,
    /// The access claims.
    #[serde(flatten)]
    pub access: AccessClaims,
}
