//! `doorstep token issue`: prints a token signed with the endpoint's own key
//! (kept in the data directory, made on the first token issued, never while
//! an endpoint serves from the directory), for a clinician's device,
//! a practice system or a coordinator. `doorstep token rotate-key` replaces
//! that key, and refuses a directory without one; a running endpoint on the
//! same directory follows at its next request.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_server::app::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use doorstep_server::auth::keys::{KeyRing, SIGNING_KEY_FILE};
use doorstep_server::auth::{SigningKey, TokenRole};
use doorstep_server::storage::sqlite::SERVE_LOCK_FILE;
use doorstep_server::token::{TokenRequest, check, issue};
use jiff::SignedDuration;

/// Options for `doorstep token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Issue a token and print it on stdout.
    Issue(IssueArgs),
    /// Replace the signing key. Tokens the old key signed stay valid until
    /// they expire (at most 12 hours), unless --compromised; prints what was
    /// done as JSON. Refused, with nothing made, where --data holds no key.
    RotateKey(RotateArgs),
}

#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// The endpoint's data directory (where `doorstep serve --data` points).
    #[arg(long)]
    data: PathBuf,
    /// A key leaked: refuse at once every token the old key, or any key
    /// retired before it, signed (every device must sign in again) instead of
    /// letting them run out.
    #[arg(long)]
    compromised: bool,
}

#[derive(Debug, clap::Args)]
struct IssueArgs {
    /// The endpoint's data directory (where `doorstep serve --data` points).
    #[arg(long)]
    data: PathBuf,
    /// The network the token is scoped to.
    #[arg(long, value_parser = parse_network)]
    network: NetworkId,
    /// paramedic, clinical_pharmacist, clinician, practice_system or coordinator.
    #[arg(long, value_parser = parse_role)]
    role: TokenRole,
    /// The clinician's id or the system's name.
    #[arg(long)]
    subject: String,
    /// The device (required for roles that write records, so it can be revoked).
    #[arg(long, value_parser = parse_device)]
    device: Option<DeviceId>,
    /// Lifetime, e.g. 15m, 8h (at most 12h).
    #[arg(long, default_value = "8h", value_parser = parse_ttl)]
    ttl: SignedDuration,
    /// The `aud` the token carries: the endpoint's `doorstep serve --audience`,
    /// which refuses every token without it.
    #[arg(long, default_value = DEFAULT_AUDIENCE)]
    audience: String,
}

fn parse_network(s: &str) -> Result<NetworkId, String> {
    NetworkId::parse(s).map_err(|e| e.reason)
}

fn parse_device(s: &str) -> Result<DeviceId, String> {
    DeviceId::parse(s).map_err(|e| e.reason)
}

fn parse_role(s: &str) -> Result<TokenRole, String> {
    TokenRole::parse(s).ok_or_else(|| {
        "one of paramedic, clinical_pharmacist, clinician, practice_system, coordinator".into()
    })
}

fn parse_ttl(s: &str) -> Result<SignedDuration, String> {
    s.parse::<SignedDuration>()
        .map_err(|e| format!("not a duration such as 15m or 8h: {e}"))
}

/// Runs the token subcommand.
pub fn run(args: Args) -> ExitCode {
    match args.action {
        Action::Issue(args) => run_issue(args),
        Action::RotateKey(args) => run_rotate(&args),
    }
}

fn run_rotate(args: &RotateArgs) -> ExitCode {
    let rotated = KeyRing::rotate(&args.data, jiff::Timestamp::now(), !args.compromised)
        .map_err(|e| e.to_string())
        .and_then(|rotation| serde_json::to_string(&rotation).map_err(|e| e.to_string()));
    match rotated {
        Ok(json) => crate::written("token rotate-key", writeln!(io::stdout().lock(), "{json}")),
        Err(e) => {
            eprintln!("doorstep token rotate-key: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether an endpoint holds the serve lock of `dir` now. Only asked, never
/// held: a lock taken here is let go at once.
fn endpoint_serving(dir: &std::path::Path) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(SERVE_LOCK_FILE))
        .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

fn run_issue(args: IssueArgs) -> ExitCode {
    let request = TokenRequest {
        network: args.network,
        role: args.role,
        subject: args.subject,
        device: args.device,
        ttl: args.ttl,
    };
    // Before any key is made: a key made for a refused request would be
    // taken, at the next run, for the endpoint's own, and said to be new no
    // more.
    if let Err(e) = check(&request, &args.audience) {
        eprintln!("doorstep token issue: {e}");
        return ExitCode::FAILURE;
    }
    // While an endpoint serves from the directory, its key is made: a
    // missing file then is one removed, and a new key made here would become
    // the endpoint's at its next request and refuse every token issued.
    if endpoint_serving(&args.data) && !args.data.join(SIGNING_KEY_FILE).exists() {
        eprintln!(
            "doorstep token issue: no signing key in {}, while an endpoint serves from it: \
             put {SIGNING_KEY_FILE} back from a backup, or stop the endpoint and issue again to \
             make a new key (the endpoint, started again, refuses every token issued before)",
            args.data.display()
        );
        return ExitCode::FAILURE;
    }
    let made = !args.data.join(SIGNING_KEY_FILE).exists();
    let key = match SigningKey::load_or_create(&args.data) {
        Ok(key) => {
            // Made on first use, as documented; said, because a mistyped
            // --data makes a key no endpoint holds, and its tokens are refused.
            if made {
                eprintln!(
                    "doorstep token issue: no signing key was in {}, so a new one was made; \
                     only an endpoint serving from that directory accepts this token",
                    args.data.display()
                );
            }
            key
        }
        Err(e) => {
            eprintln!("doorstep token issue: {e}");
            return ExitCode::FAILURE;
        }
    };
    match issue(
        &key,
        request,
        DEFAULT_ISSUER,
        &args.audience,
        jiff::Timestamp::now(),
    ) {
        Ok(token) => crate::written("token issue", writeln!(io::stdout().lock(), "{token}")),
        Err(e) => {
            eprintln!("doorstep token issue: {e}");
            ExitCode::FAILURE
        }
    }
}
