//! Assembling the endpoint: configuration, shared state, the router with its
//! layers (request ids, structured request logs, body limit), and the
//! [`Application`] that binds a socket and serves until told to stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::{JwksSource, Verifier};
use crate::error::ApiError;
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Storage, StorageError};

/// Largest request body accepted: room for a full batch of long records.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The issuer of the endpoint's own tokens unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "doorstep";
/// The audience every token must name unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "doorstep-sync";
/// File name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "doorstep-server.sqlite3";
/// Longest a request may take, body upload included: room for a full batch
/// over a poor mobile link, short enough that stalled clients do not pile up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an outside identity provider's JWKS URL is fetched again.
pub const JWKS_REFRESH: Duration = Duration::from_secs(600);
/// Longest a client may take to send a request's headers, on a new
/// connection or a kept-alive one: a phone on a poor link sends a few
/// hundred bytes of headers in far less. [`REQUEST_TIMEOUT`] starts only
/// once the headers are in, so without this a client that opens connections
/// and sends nothing would hold each for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Most connections served at once. Past it, new connections wait in the
/// listen queue until one closes, rather than the endpoint running out of
/// file descriptors (and then refusing its database connections and its
/// log too). Half the usual soft limit of 1 024 descriptors a process may
/// hold, leaving the rest for the database, its pool and the logs (raise
/// both together where `LimitNOFILE` is raised). A network's devices need a
/// fraction of it; a reverse proxy in front (usual in production) holds
/// clients' connections itself.
pub const MAX_CLIENT_CONNECTIONS: usize = 512;
/// Longest one connection is served before it is asked to close (the
/// request in flight answered first): a phone's sync takes a few requests,
/// and a client that stops reading its answers holds its place no longer.
pub const CONNECTION_LIFE: Duration = Duration::from_secs(300);
/// How long a connection asked to close (by [`CONNECTION_LIFE`] or the
/// endpoint stopping) has to finish its request before it is cut: the
/// request timeout and a little more.
pub const CLOSING_GRACE: Duration = Duration::from_secs(70);

/// How long connections may idle before their headers, and how many are
/// served at once. [`ConnectionLimits::default`] is what `doorstep serve`
/// uses; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`MAX_CLIENT_CONNECTIONS`]; at least 1.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CLIENT_CONNECTIONS,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Where changes live.
    pub storage: Arc<dyn Storage>,
    /// Which tokens are trusted; also the endpoint's own public keys, which
    /// it publishes.
    pub verifier: Arc<Verifier>,
}

/// How to run the endpoint.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Directory holding the signing key and, by default, the SQLite file.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL instead of SQLite.
    pub database: Option<String>,
    /// Most PostgreSQL connections this instance opens.
    pub max_connections: usize,
    /// Issuer of the endpoint's own tokens.
    pub issuer: String,
    /// Audience every token must name.
    pub audience: String,
    /// An outside identity provider to trust, with its issuer.
    pub outside: Option<(JwksSource, String)>,
}

impl Config {
    /// The embedded default: SQLite in `data_dir`, own tokens only.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
            database: None,
            max_connections: 16,
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            outside: None,
        }
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The signing key could not be loaded or made.
    #[error(transparent)]
    Key(#[from] crate::auth::keys::KeyError),
    /// The database could not be opened.
    #[error("database: {0}")]
    Storage(#[from] StorageError),
    /// The data directory is held by another endpoint process, or cannot be
    /// locked.
    #[error(transparent)]
    DataDir(crate::storage::sqlite::BackupError),
    /// The outside identity provider's keys could not be read, or none of
    /// them can be trusted.
    #[error("identity provider key set: {0}")]
    Jwks(String),
    /// A setting that would refuse every token (an empty audience or issuer):
    /// said when the endpoint starts rather than in every request's 401.
    #[error("settings: {0}")]
    Settings(String),
    /// The socket could not be bound.
    #[error("listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The router with every route and layer, over `state`.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                request_id = %id,
                method = %req.method(),
                path = %req.uri().path(),
                subject = tracing::field::Empty,
            )
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    Router::new()
        .merge(crate::routes::health::router())
        .merge(crate::routes::jwks::router())
        .merge(crate::routes::sync::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Opens the storage `config` names.
pub async fn open_storage(config: &Config) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match &config.database {
        Some(url) => Arc::new(PostgresStorage::connect(url, None, config.max_connections).await?),
        None => {
            crate::files::create_private_dir(&config.data_dir).map_err(|e| {
                StorageError::Task(format!("data directory {}: {e}", config.data_dir.display()))
            })?;
            Arc::new(SqliteStorage::open(&config.data_dir.join(SQLITE_FILE))?)
        }
    })
}

/// A bound, ready-to-serve endpoint.
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    /// The data directory's lock, held while this endpoint lives (none for
    /// an application made over a given state, as in tests).
    _data_dir: Option<std::fs::File>,
}

impl Application {
    /// Loads keys, opens storage, fetches outside keys and binds the socket.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let data_dir =
            crate::storage::sqlite::lock_data_dir(&config.data_dir).map_err(StartError::DataDir)?;
        let verifier = Arc::new(Verifier::from_dir(
            &config.data_dir,
            &config.issuer,
            &config.audience,
        )?);
        if config.audience.trim().is_empty() {
            return Err(StartError::Settings(
                "the audience is empty: every token would be refused".into(),
            ));
        }
        if let Some((source, issuer)) = &config.outside {
            if issuer.trim().is_empty() {
                return Err(StartError::Settings(
                    "the identity provider's issuer is empty: none of its tokens would pass".into(),
                ));
            }
            let jwks = source.load().await.map_err(StartError::Jwks)?;
            let count = verifier.trust_outside(&jwks, issuer);
            if count == 0 {
                return Err(StartError::Jwks(format!(
                    "none of the {} keys in it can be trusted (each needs a kid, and to be \
                     RS256 or ES256 for signing): none of the provider's tokens would pass",
                    jwks.keys.len()
                )));
            }
            tracing::info!(keys = count, issuer = %issuer, "trusting identity provider keys");
            if let JwksSource::Url(_) = source {
                spawn_refresh(Arc::clone(&verifier), source.clone(), issuer.clone());
            }
        }
        let storage = open_storage(&config).await?;
        let mut app = Self::with_state(config.listen, AppState { storage, verifier }).await?;
        app._data_dir = Some(data_dir);
        Ok(app)
    }

    /// Binds `listen` and serves `state` (for tests that share a storage).
    pub async fn with_state(listen: SocketAddr, state: AppState) -> Result<Self, StartError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        Ok(Self {
            listener,
            router: router(state),
            limits: ConnectionLimits::default(),
            _data_dir: None,
        })
    }

    /// The same endpoint under other connection limits (at least one
    /// connection is always served, and at most a million).
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = ConnectionLimits {
            max_connections: limits.max_connections.clamp(1, 1_000_000),
            ..limits
        };
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes requests in flight
    /// and closes idle connections, within [`CLOSING_GRACE`].
    ///
    /// Each connection is HTTP/1.1 with keep-alive, and must send each
    /// request's headers within the limits' header read timeout (hyper
    /// closes it otherwise); at most the limits' number are served at once,
    /// the rest waiting to be accepted; and each is closed after
    /// [`CONNECTION_LIFE`] (the request in flight answered first, with
    /// `Connection: close`), or cut [`CLOSING_GRACE`] after that, so a client
    /// that stops reading its answers cannot hold a place for good.
    /// (`axum::serve` does none of this: it gives hyper no timer, so hyper's
    /// own header timeout never runs.)
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            limits,
            _data_dir,
        } = self;
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let (closing, _) = tokio::sync::watch::channel(false);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors or memory, or a connection
                        // reset while queued: wait a little rather than
                        // spin, and go on.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let connection = http.serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
            let stop = closing.subscribe();
            tokio::spawn(async move {
                serve_for_a_while(connection, stop).await;
                drop(permit);
            });
        }
        drop(listener);
        let _ = closing.send(true);
        // Every connection gives its place back within the grace.
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(
            CLOSING_GRACE + Duration::from_secs(1),
            permits.acquire_many(all),
        )
        .await;
        Ok(())
    }
}

/// Serves one connection until it ends, [`CONNECTION_LIFE`] passes, or
/// `stop` says the endpoint is stopping; then lets it finish the request in
/// flight and close, for at most [`CLOSING_GRACE`], before dropping it.
async fn serve_for_a_while<I, S>(
    connection: hyper::server::conn::http1::Connection<I, S>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = std::pin::pin!(connection);
    let deadline = tokio::time::sleep(CONNECTION_LIFE);
    let mut deadline = std::pin::pin!(deadline);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            // Told to stop, or the serve loop is gone without telling
            // (its future dropped): either way, close.
            _ = stop.changed(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
                deadline.as_mut().reset(tokio::time::Instant::now() + CLOSING_GRACE);
            }
            () = deadline.as_mut() => {
                if closing {
                    tracing::debug!("a closing connection did not finish in time; cut");
                    return;
                }
                connection.as_mut().graceful_shutdown();
                closing = true;
                deadline.as_mut().reset(tokio::time::Instant::now() + CLOSING_GRACE);
            }
        }
    }
}

fn spawn_refresh(verifier: Arc<Verifier>, source: JwksSource, issuer: String) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(JWKS_REFRESH);
        every.tick().await;
        loop {
            every.tick().await;
            match source.load().await {
                Ok(jwks) => match verifier.trust_outside(&jwks, &issuer) {
                    0 => tracing::warn!(
                        listed = jwks.keys.len(),
                        "identity provider lists no key that can be trusted; keeping the last set"
                    ),
                    count => tracing::info!(keys = count, "identity provider keys refreshed"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "identity provider keys not refreshed; keeping the last set")
                }
            }
        }
    });
}
