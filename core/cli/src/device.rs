//! `doorstep device revoke`: tells the endpoint that a device is lost or
//! stolen, from the IT team's own machine, with a coordinator's token. The
//! device may then push what it still holds but read nothing more of the
//! network, and is told to wipe itself (docs/sync-protocol.md).
//!
//! The token comes from the `DOORSTEP_TOKEN` environment variable, never from
//! the command line, where other users of the machine and the shell's history
//! would see it. It is sent over https only (plain http only to this machine),
//! and a redirect is not followed.

use std::io::{self, Write};
use std::process::ExitCode;

use doorstep_domain::network::DeviceId;
use doorstep_sync::admin::revoke_device;
use doorstep_sync::wire::RevokeResponse;

/// The environment variable holding the coordinator's token.
const TOKEN_VARIABLE: &str = "DOORSTEP_TOKEN";

/// Options for `doorstep device`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Revoke a lost or stolen device (a coordinator's token in DOORSTEP_TOKEN);
    /// prints the endpoint's answer as JSON (the device, the network, how many
    /// changes the endpoint holds from it), with a note on stderr when that
    /// is none.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
struct RevokeArgs {
    /// The device, as its tokens name it (e.g. phone-7).
    #[arg(value_parser = parse_device)]
    device: DeviceId,
    /// The endpoint's base URL, such as `https://sync.example-pcn.nhs.uk`.
    #[arg(long)]
    endpoint: String,
}

fn parse_device(s: &str) -> Result<DeviceId, String> {
    DeviceId::parse(s).map_err(|e| e.reason)
}

/// Runs the device subcommand.
pub fn run(args: Args) -> ExitCode {
    let Action::Revoke(args) = args.action;
    match revoke(&args) {
        Ok(answer) => {
            if let Some(note) = unheard_of(&answer) {
                eprintln!("doorstep device revoke: {note}");
            }
            match serde_json::to_string(&answer) {
                Ok(json) => {
                    crate::written("device revoke", writeln!(io::stdout().lock(), "{json}"))
                }
                Err(e) => {
                    eprintln!("doorstep device revoke: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("doorstep device revoke: {e}");
            ExitCode::from(1)
        }
    }
}

/// A warning when the endpoint holds nothing from the revoked device: a phone
/// that has only pulled is revoked rightly, but so is a mistyped id, or the
/// right id under another network's token, while the lost phone stays in.
fn unheard_of(answer: &RevokeResponse) -> Option<String> {
    (answer.changes_held == Some(0)).then(|| {
        let network = answer
            .network
            .as_ref()
            .map_or("its network".to_owned(), |n| n.as_str().to_owned());
        format!(
            "revoked, but the endpoint holds no change from {} on {network}: if the device \
             has pushed before, check its id and that the token is for its network",
            answer.device.as_str()
        )
    })
}

/// The token in [`TOKEN_VARIABLE`], trimmed, or why there is none.
pub(crate) fn token_from_env() -> Result<String, String> {
    let token = match std::env::var(TOKEN_VARIABLE) {
        Ok(token) => token,
        Err(std::env::VarError::NotPresent) => String::new(),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!(
                "{TOKEN_VARIABLE} is not text: a token is letters, digits, dots, hyphens and \
                 underscores (copy it again from doorstep token issue)"
            ));
        }
    };
    if token.trim().is_empty() {
        return Err(format!(
            "no token: set {TOKEN_VARIABLE} to a token for the network \
             (doorstep token issue ...; a coordinator's to revoke a device)"
        ));
    }
    Ok(token.trim().to_owned())
}

fn revoke(args: &RevokeArgs) -> Result<RevokeResponse, String> {
    let token = token_from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime
        .block_on(revoke_device(&args.endpoint, &token, &args.device))
        .map_err(|e| e.to_string())
}
