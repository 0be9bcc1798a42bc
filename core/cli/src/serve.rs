//! `doorstep serve`: runs the sync endpoint until interrupted.
//!
//! Logs go to stderr as JSON lines (one per request, with its request id),
//! filtered by `RUST_LOG` (default `info`). Ctrl-C or SIGTERM stops accepting
//! connections and lets requests in flight finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use doorstep_server::auth::JwksSource;
use doorstep_server::{Application, Config};

/// Options for `doorstep serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on, e.g. 0.0.0.0:8080 (behind a TLS-terminating proxy).
    #[arg(long)]
    listen: SocketAddr,
    /// Directory for the signing key and, without --database, the SQLite file.
    #[arg(long)]
    data: PathBuf,
    /// PostgreSQL URL (postgres://...) to use instead of SQLite; several
    /// instances may share one database. One with a password must come from
    /// the environment variable: on the command line, other users of the
    /// machine could read it from the process list.
    #[arg(long, env = "DOORSTEP_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// Also trust this identity provider's key set (a JWKS file or https URL).
    #[arg(long, requires = "idp_issuer")]
    idp_jwks: Option<String>,
    /// The `iss` the identity provider's tokens carry.
    #[arg(long, requires = "idp_jwks")]
    idp_issuer: Option<String>,
    /// The `aud` every token must carry (give `doorstep token issue` the same).
    #[arg(long, default_value = doorstep_server::app::DEFAULT_AUDIENCE)]
    audience: String,
}

/// Starts the endpoint and serves until a shutdown signal.
pub fn run(args: Args) -> ExitCode {
    let from_environment = std::env::var("DOORSTEP_DATABASE_URL").ok() == args.database;
    if let Some(url) = &args.database
        && !from_environment
        && doorstep_server::storage::postgres::names_password(url)
    {
        eprintln!(
            "doorstep serve: --database carries a password, which every user of this machine \
             can read from the process list: give the URL in DOORSTEP_DATABASE_URL instead \
             (and change the password if others may have seen it)"
        );
        return ExitCode::from(2);
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("doorstep serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config::new(args.listen, args.data);
    config.database = args.database;
    config.audience = args.audience;
    config.outside = args
        .idp_jwks
        .zip(args.idp_issuer)
        .map(|(jwks, issuer)| (JwksSource::parse(&jwks), issuer));
    runtime.block_on(async move {
        let app = match Application::build(config).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("doorstep serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Ok(addr) = app.local_addr() {
            tracing::info!(%addr, "listening");
        }
        match app.run_until(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("doorstep serve: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
