//! Load benchmark of the sync endpoint on loopback, bounded in time (about a
//! minute per backend). Run with
//!
//! ```text
//! cargo bench -p doorstep-server --bench load
//! ```
//!
//! and, for PostgreSQL too, with `DOORSTEP_TEST_DATABASE_URL` set (for example
//! after `eval "$(scripts/postgres start)"`).
//!
//! For each backend, in the same run and process, it measures:
//!
//! - burst: records per second stored by pushes of 100 records from 8
//!   devices in 4 networks pushing as fast as they can;
//! - sustained: single-record pushes offered at a fixed 500 requests per
//!   second, with the achieved rate and p50/p99 latency;
//!
//! each through the real endpoint (JWT verification, the domain's checks,
//! idempotency and fork detection included) and through a bare axum handler
//! that inserts the same rows into the same table shape with no checks. It
//! also times a new device's first pull of a day's round (80 records) and of
//! a whole network's day (1,000) into a real (SQLCipher) store through the
//! sync engine.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use doorstep_domain::network::{ClinicianId, DeviceId, NetworkId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta, VisitContent};
use doorstep_server::auth::{SigningKey, TokenRole, Verifier};
use doorstep_server::storage::Storage;
use doorstep_server::storage::postgres::PostgresStorage;
use doorstep_server::storage::sqlite::SqliteStorage;
use doorstep_server::token::{TokenRequest, issue};
use doorstep_server::{AppState, router};
use doorstep_store::{MemoryKeyProvider, Store, StoreConfig};
use doorstep_sync::engine::{SyncConfig, SyncEngine};
use doorstep_sync::fixtures;
use doorstep_sync::wire::{ChangeId, PushRequest};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

const BURST_SECONDS: u64 = 6;
const SUSTAINED_SECONDS: u64 = 10;
const SUSTAINED_RATE: u64 = 500;
const BATCH: usize = 100;

fn token(key: &SigningKey, network: &str, device: &str) -> String {
    issue(
        key,
        TokenRequest {
            network: NetworkId::parse(network).unwrap(),
            role: TokenRole::Paramedic,
            subject: format!("para-{device}"),
            device: Some(DeviceId::parse(device).unwrap()),
            ttl: jiff::SignedDuration::from_hours(1),
        },
        "doorstep",
        "doorstep-sync",
        jiff::Timestamp::now(),
    )
    .unwrap()
}

fn push_body(network: &str, device: &str, n: usize, seed: u64) -> Vec<u8> {
    let changes = (0..n)
        .map(|i| {
            let meta = VersionMeta::first(
                RecordId(Uuid::now_v7()),
                VersionId(Uuid::now_v7()),
                ClinicianId::parse(&format!("para-{device}")).unwrap(),
                DeviceId::parse(device).unwrap(),
                jiff::Timestamp::now(),
            );
            fixtures::visit_change(ChangeId(Uuid::now_v7()), meta, seed + i as u64)
        })
        .collect();
    serde_json::to_vec(&PushRequest {
        network: NetworkId::parse(network).unwrap(),
        device: DeviceId::parse(device).unwrap(),
        changes,
    })
    .unwrap()
}

/// The bare baseline: parse just enough to fill the same columns and insert.
#[derive(Deserialize)]
struct BarePush {
    network: String,
    changes: Vec<BareChange>,
}

#[derive(Deserialize)]
struct BareChange {
    change_id: Uuid,
    body: BareBody,
}

#[derive(Deserialize)]
struct BareBody {
    kind: String,
    record: Box<RawValue>,
}

#[derive(Deserialize)]
struct BareRecord {
    meta: VersionMeta,
}

struct BareRow {
    network: String,
    change_id: Uuid,
    kind: String,
    meta: VersionMeta,
    body: String,
}

fn bare_rows(bytes: &[u8]) -> Option<Vec<BareRow>> {
    let push: BarePush = serde_json::from_slice(bytes).ok()?;
    push.changes
        .into_iter()
        .map(|c| {
            let record: BareRecord = serde_json::from_str(c.body.record.get()).ok()?;
            Some(BareRow {
                network: push.network.clone(),
                change_id: c.change_id,
                kind: c.body.kind,
                meta: record.meta,
                body: c.body.record.get().to_owned(),
            })
        })
        .collect()
}

const BARE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bare_changes (
    network TEXT NOT NULL, seq BIGINT NOT NULL, change_id TEXT NOT NULL, kind TEXT NOT NULL,
    record_id TEXT NOT NULL, version_id TEXT NOT NULL, supersedes TEXT, author TEXT NOT NULL,
    device TEXT NOT NULL, written_at TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (network, seq))";

#[derive(Clone)]
enum Bare {
    Sqlite(
        Arc<Mutex<rusqlite::Connection>>,
        Arc<std::sync::atomic::AtomicI64>,
    ),
    Postgres(deadpool_postgres::Pool, Arc<std::sync::atomic::AtomicI64>),
}

async fn bare_push(State(bare): State<Bare>, body: Bytes) -> StatusCode {
    let Some(rows) = bare_rows(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    match bare {
        Bare::Sqlite(conn, seq) => tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap();
            let tx = conn.transaction().unwrap();
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO bare_changes VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                    )
                    .unwrap();
                for r in rows {
                    let s = seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    stmt.execute(rusqlite::params![
                        r.network,
                        s,
                        r.change_id.to_string(),
                        r.kind,
                        r.meta.record_id.0.to_string(),
                        r.meta.version_id.0.to_string(),
                        r.meta.supersedes.map(|v| v.0.to_string()),
                        r.meta.author.as_str(),
                        r.meta.device.as_str(),
                        r.meta.written_at.to_string(),
                        r.body,
                    ])
                    .unwrap();
                }
            }
            tx.commit().unwrap();
            StatusCode::OK
        })
        .await
        .unwrap(),
        Bare::Postgres(pool, seq) => {
            let client = pool.get().await.unwrap();
            let n = rows.len() as i64;
            let first = seq.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            let seqs: Vec<i64> = (first..first + n).collect();
            let col = |f: &dyn Fn(&BareRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
            let networks = col(&|r| r.network.clone());
            let ids = col(&|r| r.change_id.to_string());
            let kinds = col(&|r| r.kind.clone());
            let records = col(&|r| r.meta.record_id.0.to_string());
            let versions = col(&|r| r.meta.version_id.0.to_string());
            let supersedes: Vec<Option<String>> = rows
                .iter()
                .map(|r| r.meta.supersedes.map(|v| v.0.to_string()))
                .collect();
            let authors = col(&|r| r.meta.author.as_str().to_owned());
            let devices = col(&|r| r.meta.device.as_str().to_owned());
            let written = col(&|r| r.meta.written_at.to_string());
            let bodies = col(&|r| r.body.clone());
            let stmt = client
                .prepare_cached(
                    "INSERT INTO bare_changes SELECT * FROM UNNEST($1::text[], $2::bigint[],
                     $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[])",
                )
                .await
                .unwrap();
            client
                .execute(
                    &stmt,
                    &[
                        &networks,
                        &seqs,
                        &ids,
                        &kinds,
                        &records,
                        &versions,
                        &supersedes,
                        &authors,
                        &devices,
                        &written,
                        &bodies,
                    ],
                )
                .await
                .unwrap();
            StatusCode::OK
        }
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

struct Target {
    url: String,
    key: Arc<SigningKey>,
}

/// Pushes batches of `BATCH` from 8 devices in 4 networks for the burst
/// window; returns records stored per second.
async fn burst(client: &reqwest::Client, target: &Target) -> f64 {
    // Bodies are made ahead so the client's own work stays out of the figure.
    let work: Vec<(String, Vec<Vec<u8>>)> = (0..8)
        .map(|d| {
            let network = format!("net-{}", d % 4);
            let device = format!("dev-{d}");
            let bodies = (0..60)
                .map(|i| push_body(&network, &device, BATCH, i * 1000))
                .collect();
            (token(&target.key, &network, &device), bodies)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(BURST_SECONDS);
    let mut tasks = Vec::new();
    for (token, bodies) in work {
        let client = client.clone();
        let url = format!("{}/sync/v1/push", target.url);
        tasks.push(tokio::spawn(async move {
            let mut stored = 0usize;
            for body in bodies {
                if Instant::now() >= deadline {
                    break;
                }
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.unwrap();
                stored += BATCH;
            }
            stored
        }));
    }
    let start = Instant::now();
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap();
    }
    stored as f64 / start.elapsed().as_secs_f64()
}

/// Offers single-record pushes at `SUSTAINED_RATE` per second from 40
/// devices in 12 networks; returns (achieved req/s, p50 ms, p99 ms).
async fn sustained(client: &reqwest::Client, target: &Target) -> (f64, f64, f64) {
    let total = (SUSTAINED_RATE * SUSTAINED_SECONDS) as usize;
    let devices: Vec<(String, String)> = (0..40)
        .map(|d| {
            let network = format!("net-{}", d % 12);
            let device = format!("sdev-{d}");
            (
                token(&target.key, &network, &device),
                network + "|" + &device,
            )
        })
        .collect();
    let bodies: Vec<(String, Vec<u8>)> = (0..total)
        .map(|i| {
            let (token, names) = &devices[i % devices.len()];
            let (network, device) = names.split_once('|').unwrap();
            (token.clone(), push_body(network, device, 1, i as u64))
        })
        .collect();
    let url = format!("{}/sync/v1/push", target.url);
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / SUSTAINED_RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for (token, body) in bodies {
        ticker.tick().await;
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.bytes().await.unwrap();
            sent.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    (
        total as f64 / elapsed,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
    )
}

/// A new device's first pull of `records` records of its network into a
/// real store, through the sync engine; returns seconds.
async fn first_pull(
    target: &Target,
    storage: &Arc<dyn Storage>,
    network: &str,
    records: usize,
) -> f64 {
    let scope = doorstep_server::storage::NetworkScope::for_verified_network(
        NetworkId::parse(network).unwrap(),
    );
    let client = reqwest::Client::new();
    let writer = token(&target.key, network, "day-writer");
    for chunk in 0..records.div_ceil(BATCH) {
        let n = BATCH.min(records - chunk * BATCH);
        let response = client
            .post(format!("{}/sync/v1/push", target.url))
            .bearer_auth(&writer)
            .header("content-type", "application/json")
            .body(push_body(network, "day-writer", n, chunk as u64 * 1000))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    assert!(
        storage
            .pull(&scope, 0, u32::MAX, u64::MAX)
            .await
            .unwrap()
            .changes
            .len()
            >= records
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &StoreConfig::new(dir.path().join("device.db")),
        Arc::new(MemoryKeyProvider::new()),
    )
    .unwrap();
    let store = Arc::new(Mutex::new(store));
    let reader = token(&target.key, network, "new-phone");
    let engine = SyncEngine::new(
        SyncConfig::new(
            &target.url,
            NetworkId::parse(network).unwrap(),
            DeviceId::parse("new-phone").unwrap(),
        ),
        Arc::clone(&store),
        Arc::new(reader),
    )
    .unwrap();
    let start = Instant::now();
    engine.sync().await.unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let held = store
        .lock()
        .unwrap()
        .record_ids::<VisitContent>()
        .unwrap()
        .len();
    assert_eq!(held, records);
    seconds
}

async fn run(name: &str, storage: Arc<dyn Storage>, bare: Bare) {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::load_or_create(dir.path()).unwrap());
    // As `doorstep serve` makes it: the key files looked at on every token.
    let verifier = Arc::new(Verifier::from_dir(dir.path(), "doorstep", "doorstep-sync").unwrap());
    let state = AppState {
        storage: Arc::clone(&storage),
        verifier,
    };
    let endpoint = Target {
        url: format!("http://{}", serve(router(state)).await),
        key: Arc::clone(&key),
    };
    let bare_router = Router::new()
        .route("/sync/v1/push", post(bare_push))
        .with_state(bare);
    let baseline = Target {
        url: format!("http://{}", serve(bare_router).await),
        key,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    let burst_endpoint = burst(&client, &endpoint).await;
    let burst_bare = burst(&client, &baseline).await;
    let (rate, p50, p99) = sustained(&client, &endpoint).await;
    let (bare_rate, bare_p50, bare_p99) = sustained(&client, &baseline).await;
    let pull_80 = first_pull(&endpoint, &storage, "net-round", 80).await;
    let pull_1000 = first_pull(&endpoint, &storage, "net-day", 1000).await;
    println!(
        "| {name} | endpoint | {burst_endpoint:.0} | {rate:.0} | {p50:.1} | {p99:.1} | {:.0} ms | {:.0} ms |",
        pull_80 * 1000.0,
        pull_1000 * 1000.0
    );
    println!(
        "| {name} | bare axum insert | {burst_bare:.0} | {bare_rate:.0} | {bare_p50:.1} | {bare_p99:.1} | - | - |"
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "burst: pushes of {BATCH} records, 8 devices in 4 networks, {BURST_SECONDS} s; \
             sustained: 1-record pushes offered at {SUSTAINED_RATE}/s for {SUSTAINED_SECONDS} s \
             from 40 devices in 12 networks; first pull: a new device pulls a round's 80 records \
             (and a network day's 1,000) into its SQLCipher store"
        );
        println!(
            "| backend | handler | burst records/s | sustained req/s | p50 ms | p99 ms | first pull, 80 | first pull, 1,000 |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        let dir = tempfile::tempdir().unwrap();
        let sqlite: Arc<dyn Storage> =
            Arc::new(SqliteStorage::open(&dir.path().join("endpoint.sqlite3")).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join("bare.sqlite3")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(BARE_TABLE).unwrap();
        let bare = Bare::Sqlite(
            Arc::new(Mutex::new(conn)),
            Arc::new(std::sync::atomic::AtomicI64::new(0)),
        );
        run("SQLite", sqlite, bare).await;

        if let Ok(url) = std::env::var("DOORSTEP_TEST_DATABASE_URL") {
            let schema = format!("bench_{}", Uuid::now_v7().simple());
            let pg: Arc<dyn Storage> =
                Arc::new(PostgresStorage::connect(&url, Some(&schema), 16).await.unwrap());
            let mut config: tokio_postgres::Config = url.parse().unwrap();
            config.options(format!("-c search_path={schema}"));
            let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
            let pool = deadpool_postgres::Pool::builder(manager)
                .max_size(16)
                .build()
                .unwrap();
            pool.get()
                .await
                .unwrap()
                .batch_execute(BARE_TABLE)
                .await
                .unwrap();
            run(
                "PostgreSQL",
                pg,
                Bare::Postgres(pool, Arc::new(std::sync::atomic::AtomicI64::new(0))),
            )
            .await;
        } else {
            println!("(PostgreSQL not measured: DOORSTEP_TEST_DATABASE_URL is not set)");
        }
    });
}
