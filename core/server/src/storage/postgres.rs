//! The backend for an integrated care system: PostgreSQL shared by several
//! stateless endpoint instances.
//!
//! A push locks its network's counter row (`sync_networks`) for the length of
//! its transaction. That serialises pushes within one network (a handful of
//! devices) while networks proceed in parallel, makes duplicate detection safe
//! when two instances receive the same change at once, and means sequence
//! numbers commit in order, so a pull that sees change N has seen every change
//! before it. Each push costs a constant number of round trips: rows are
//! fetched with `= ANY($n)` and inserted with `UNNEST`.
//!
//! Connections use TLS (rustls, the platform's root certificates) unless the
//! URL says `sslmode=disable`. A URL that names no `sslmode` insists on TLS
//! (as `require`) when the server is on another machine: libpq's default,
//! `prefer`, falls back to plain text whenever the server answers that it has
//! no TLS, which anyone on the path can answer for it. To this machine
//! (loopback or a Unix socket) it keeps `prefer`. A `sslmode` the URL names is
//! taken as named.
//!
//! Getting a connection is bounded in time ([`CONNECTION_TIMEOUT`]): with the
//! database gone or every connection busy, a request is answered 503 within
//! seconds instead of waiting out the request timeout.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use doorstep_domain::network::{ClinicianId, DeviceId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta};
use doorstep_sync::wire::{ChangeId, ChangeKind, ChangeOutcome};
use tokio_postgres::config::SslMode;
use tokio_postgres::{NoTls, Row};
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

use super::page::{keyset_page, page_end};
use super::plan::{
    ExistingChange, Held, NamingVersion, StoredVersion, SupersededVersion, fork_of, plan_push,
};
use super::{
    CheckedChange, ForksPage, NetworkScope, PullPage, Storage, StorageError, StoredChange,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sync_networks (
    network TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_changes (
    network TEXT NOT NULL,
    seq BIGINT NOT NULL,
    change_id UUID NOT NULL,
    kind TEXT NOT NULL,
    record_id UUID NOT NULL,
    version_id UUID NOT NULL,
    supersedes UUID,
    author TEXT NOT NULL,
    device TEXT NOT NULL,
    written_at TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (network, seq),
    UNIQUE (network, change_id),
    UNIQUE (network, version_id)
);
CREATE TABLE IF NOT EXISTS sync_forks (
    network TEXT NOT NULL,
    record_id UUID NOT NULL,
    PRIMARY KEY (network, record_id)
);
CREATE TABLE IF NOT EXISTS sync_merges (
    network TEXT NOT NULL,
    version_id UUID NOT NULL,
    record_id UUID NOT NULL,
    merged UUID NOT NULL,
    ord INTEGER NOT NULL,
    PRIMARY KEY (network, version_id, merged)
);
CREATE TABLE IF NOT EXISTS sync_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL
);
INSERT INTO sync_epoch (id, epoch) VALUES (1, '') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS sync_revoked_devices (
    network TEXT NOT NULL,
    device TEXT NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (network, device)
);
";

/// The indexes the queries rely on: name, table, columns. Kept apart from the
/// tables because `CREATE INDEX IF NOT EXISTS` locks its table against writes
/// before it looks for the index, so every instance start would hold up the
/// network's pushes; [`migrate`] builds only what is missing.
const INDEXES: [(&str, &str, &str); 3] = [
    ("sync_changes_record", "sync_changes", "network, record_id"),
    (
        "sync_changes_supersedes",
        "sync_changes",
        "network, supersedes",
    ),
    ("sync_merges_record", "sync_merges", "network, record_id"),
];

/// How often an instance that finds another building an index asks again
/// whether it has finished.
const INDEX_BUILD_POLL: Duration = Duration::from_millis(100);

/// An arbitrary constant naming the advisory lock that makes concurrent
/// instances create the schema one at a time.
const SCHEMA_LOCK: i64 = 0x646f_6f72_7374_6570;

/// The advisory lock that makes concurrent instances build missing indexes
/// one at a time. Not [`SCHEMA_LOCK`]: a concurrent build waits for every
/// older transaction, so an instance whose schema transaction queued behind
/// the build's lock would deadlock with it.
const INDEX_BUILD_LOCK: i64 = 0x646f_6f72_6964_7821;

/// Longest a request waits for a pooled connection, and longest making a new
/// one (TCP, TLS and sign-in) may take, unless the URL sets its own
/// `connect_timeout`. A healthy database answers in milliseconds; past this
/// the request is answered 503 and the device tries again later.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL backend. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresStorage {
    pool: Pool,
}

fn pool_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Pool(e.to_string())
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_owned())
}

/// Whether `url` (a `postgres://` URL or `key=value` connection string)
/// carries a password. Given on a command line, it would be in the process
/// list for every user of the machine to read.
pub fn names_password(url: &str) -> bool {
    tokio_postgres::Config::from_str(url).is_ok_and(|config| config.get_password().is_some())
}

impl PostgresStorage {
    /// Connects to `url` (a `postgres://` URL) with up to `max_connections`,
    /// and creates the schema if it is missing. With `schema`, every table
    /// lives in that schema (created if needed): how tests share one server.
    pub async fn connect(
        url: &str,
        schema: Option<&str>,
        max_connections: usize,
    ) -> Result<Self, StorageError> {
        let mut config = tokio_postgres::Config::from_str(url)?;
        insist_on_tls_off_this_machine(url, &mut config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECTION_TIMEOUT);
        }
        if let Some(schema) = schema {
            let valid = !schema.is_empty()
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(StorageError::Config(
                    "schema name must be lowercase letters, digits and '_'".into(),
                ));
            }
            config.options(format!("-c search_path={schema}"));
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match config.get_ssl_mode() {
            SslMode::Disable => Manager::from_config(config, NoTls, manager_config),
            _ => Manager::from_config(config, tls_connector()?, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_TIMEOUT))
            .create_timeout(Some(CONNECTION_TIMEOUT))
            .recycle_timeout(Some(CONNECTION_TIMEOUT))
            .build()
            .map_err(pool_error)?;
        migrate(&pool, schema).await?;
        Ok(Self { pool })
    }
}

/// Makes `config`, read from `url`, require TLS when `url` names no `sslmode`
/// and any of its hosts is on another machine (see the module's notes).
fn insist_on_tls_off_this_machine(url: &str, config: &mut tokio_postgres::Config) {
    if names_sslmode(url) {
        return;
    }
    let this_machine = |host: &tokio_postgres::config::Host| match host {
        tokio_postgres::config::Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => true,
    };
    let local = config.get_hosts().iter().all(this_machine)
        && config.get_hostaddrs().iter().all(|ip| ip.is_loopback());
    if !local {
        config.ssl_mode(SslMode::Require);
    }
}

/// Whether `url` (a `postgres://` URL, or libpq's `key=value` words) names an
/// `sslmode` itself: as a query parameter, or as a key outside any quoted value
/// (so not in a password), spaces around `=` allowed as libpq allows them.
fn names_sslmode(url: &str) -> bool {
    // A URL's parameters follow its `?`. (Read by hand: a URL naming several
    // hosts with ports, `host1:5432,host2:5432`, is not one a URL parser takes.)
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        return rest.split_once('?').is_some_and(|(_, query)| {
            query
                .split('&')
                .any(|pair| pair.split('=').next() == Some("sslmode"))
        });
    }
    let mut rest = url.trim_start();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        let Some(after) = rest[key_end..].trim_start().strip_prefix('=') else {
            return false;
        };
        if key == "sslmode" {
            return true;
        }
        // A value ends at its closing quote, or unquoted at the first space;
        // either way a backslash makes the next character part of it.
        let value = after.trim_start();
        let (quoted, value) = match value.strip_prefix('\'') {
            Some(inside) => (true, inside),
            None => (false, value),
        };
        let mut escaped = false;
        let end = value.char_indices().find_map(|(i, c)| {
            let ends = !escaped && if quoted { c == '\'' } else { c.is_whitespace() };
            escaped = !escaped && c == '\\';
            ends.then_some(i + c.len_utf8())
        });
        rest = match end {
            Some(end) => value[end..].trim_start(),
            None if quoted => return false,
            None => "",
        };
    }
    false
}

/// Creates the schema (once, under an advisory lock, whichever instance
/// starts first). An index whose table is made now is made with it. One
/// missing from a table that already holds the network's changes (an index a
/// newer release adds), or left unfinished by a build cut short, is built
/// after that, `CONCURRENTLY`, so pushes go on while it builds; an index
/// already in place is not touched, so an instance start locks no table.
async fn migrate(pool: &Pool, schema: Option<&str>) -> Result<(), StorageError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    refuse_read_only(&client).await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    if let Some(schema) = schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    let mut tables_before = HashSet::new();
    for (_, table, _) in INDEXES {
        if exists(&tx, table).await? {
            tables_before.insert(table);
        }
    }
    tx.batch_execute(SCHEMA).await?;
    let mut to_build = Vec::new();
    for index in INDEXES {
        let (name, table, _) = index;
        match index_state(&tx, name).await? {
            Some(true) => {}
            None if !tables_before.contains(table) => {
                tx.batch_execute(&create_index(index, "")).await?;
            }
            _ => to_build.push(index),
        }
    }
    tx.commit().await?;
    if !to_build.is_empty() {
        build_concurrently(&client, &to_build).await?;
    }
    Ok(())
}

/// Whether relation `name` exists where the session's search path finds it.
async fn exists(client: &impl GenericClient, name: &str) -> Result<bool, StorageError> {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await?;
    Ok(row.try_get(0)?)
}

/// Whether index `name` is ready to use (`Some(true)`), there but unfinished
/// (`Some(false)`: a concurrent build under way, or one cut short), or missing.
async fn index_state(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<bool>, StorageError> {
    let row = client
        .query_opt(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The statement making `index`, `CONCURRENTLY` or not (`how`).
fn create_index((name, table, columns): (&str, &str, &str), how: &str) -> String {
    format!("CREATE INDEX {how} IF NOT EXISTS {name} ON {table} ({columns})")
}

/// Builds `indexes` on tables already in use without blocking their writes,
/// one instance at a time: others wait for the one building (asking, rather
/// than queueing on the lock, since a concurrent build waits for every open
/// transaction, a queued request's included), then find the index built.
async fn build_concurrently(
    client: &deadpool_postgres::Client,
    indexes: &[(&str, &str, &str)],
) -> Result<(), StorageError> {
    loop {
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&INDEX_BUILD_LOCK])
            .await?;
        if row.try_get::<_, bool>(0)? {
            break;
        }
        tokio::time::sleep(INDEX_BUILD_POLL).await;
    }
    let built = async {
        for &index in indexes {
            match index_state(client, index.0).await? {
                Some(true) => continue,
                Some(false) => {
                    client
                        .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {}", index.0))
                        .await?
                }
                None => {}
            }
            client
                .batch_execute(&create_index(index, "CONCURRENTLY"))
                .await?;
        }
        Ok::<_, StorageError>(())
    }
    .await;
    // Released whatever happened: the connection goes back to the pool.
    let released = client
        .execute("SELECT pg_advisory_unlock($1)", &[&INDEX_BUILD_LOCK])
        .await;
    built?;
    released?;
    Ok(())
}

/// [`StorageError::ReadOnly`] when `client`'s session may not write: on a hot
/// standby, or under `default_transaction_read_only`. Asked rather than found
/// by a failing write, so the endpoint says what is wrong when it starts and
/// `/healthz` says it before any push fails.
async fn refuse_read_only(client: &tokio_postgres::Client) -> Result<(), StorageError> {
    let row = client
        .query_one("SELECT current_setting('transaction_read_only')", &[])
        .await?;
    match row.try_get::<_, &str>(0)? {
        "off" => Ok(()),
        _ => Err(StorageError::ReadOnly),
    }
}

/// A rustls connector trusting the platform's root certificates, with the
/// aws-lc crypto provider named explicitly (the process may link others).
fn tls_connector() -> Result<MakeRustlsConnect, StorageError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(loaded.certs);
    if roots.is_empty() {
        return Err(StorageError::Config(
            "no root certificates found for TLS to PostgreSQL: install ca-certificates \
             (sslmode=disable sends records in clear; only where nobody else can reach \
             the network between the endpoint and the database)"
                .into(),
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StorageError::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The columns of `sync_changes` (named `c` in the query) that
/// [`meta_from_row`] reads, and the heads each version merges from
/// `sync_merges`, in their order, as `merges`. The subquery finds a
/// version's rows by the table's primary key.
const META_COLUMNS: &str = "c.record_id, c.version_id, c.supersedes, c.author, c.device, \
     c.written_at, ARRAY(SELECT m.merged FROM sync_merges m \
     WHERE m.network = c.network AND m.version_id = c.version_id ORDER BY m.ord) AS merges";

/// A version's envelope from a row selected with [`META_COLUMNS`]: as it was
/// pushed, `merges` included, since a history read without them would show
/// a reconciled record forked.
fn meta_from_row(row: &Row) -> Result<VersionMeta, StorageError> {
    Ok(VersionMeta {
        record_id: RecordId(row.try_get("record_id")?),
        version_id: VersionId(row.try_get("version_id")?),
        supersedes: row.try_get::<_, Option<Uuid>>("supersedes")?.map(VersionId),
        merges: row
            .try_get::<_, Vec<Uuid>>("merges")?
            .into_iter()
            .map(VersionId)
            .collect(),
        author: ClinicianId::parse(row.try_get("author")?).map_err(|_| corrupt("author"))?,
        device: DeviceId::parse(row.try_get("device")?).map_err(|_| corrupt("device"))?,
        written_at: row
            .try_get::<_, &str>("written_at")?
            .parse()
            .map_err(|_| corrupt("written_at"))?,
    })
}

fn kind(text: &str) -> Result<ChangeKind, StorageError> {
    ChangeKind::parse(text).ok_or_else(|| corrupt("kind"))
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn epoch(&self) -> Result<String, StorageError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached("SELECT epoch FROM sync_epoch WHERE id = 1")
            .await?;
        Ok(client.query_one(&stmt, &[]).await?.try_get(0)?)
    }

    async fn push(
        &self,
        scope: &NetworkScope,
        changes: Vec<CheckedChange>,
    ) -> Result<Vec<ChangeOutcome>, StorageError> {
        let network = scope.network().as_str();
        let mut client = self.pool.get().await.map_err(pool_error)?;
        // Read committed, whatever the database's default: each read after the
        // lock below must see what the push that held it committed. Under
        // repeatable read or serializable (some managed databases default to
        // one) the snapshot would date from before the wait, and every push
        // that waited would fail with a serialisation error.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
            .start()
            .await?;
        let lock = tx
            .prepare_cached(
                "INSERT INTO sync_networks (network, last_seq) VALUES ($1, 0)
                 ON CONFLICT (network) DO UPDATE SET last_seq = sync_networks.last_seq
                 RETURNING last_seq",
            )
            .await?;
        let last_seq: i64 = tx.query_one(&lock, &[&network]).await?.get(0);

        let change_ids: Vec<Uuid> = changes.iter().map(|c| c.change_id.0).collect();
        let version_ids: Vec<Uuid> = changes.iter().map(|c| c.meta.version_id.0).collect();
        let superseded_ids: Vec<Uuid> = changes
            .iter()
            .flat_map(|c| c.meta.supersedes.iter().chain(&c.meta.merges))
            .map(|v| v.0)
            .collect();
        let mut record_ids: Vec<Uuid> = changes.iter().map(|c| c.meta.record_id.0).collect();
        record_ids.sort_unstable();
        record_ids.dedup();

        let select_existing = tx
            .prepare_cached(
                "SELECT change_id, version_id, kind, body FROM sync_changes
                 WHERE network = $1 AND (change_id = ANY($2) OR version_id = ANY($3))",
            )
            .await?;
        let mut existing = Vec::new();
        for row in tx
            .query(&select_existing, &[&network, &change_ids, &version_ids])
            .await?
        {
            existing.push(ExistingChange {
                change_id: ChangeId(row.try_get(0)?),
                version_id: VersionId(row.try_get(1)?),
                kind: kind(row.try_get(2)?)?,
                body: row.try_get(3)?,
            });
        }
        let select_versions = tx
            .prepare_cached(&format!(
                "SELECT {META_COLUMNS}, c.kind
                 FROM sync_changes c WHERE c.network = $1 AND c.record_id = ANY($2)"
            ))
            .await?;
        let versions = tx
            .query(&select_versions, &[&network, &record_ids])
            .await?
            .iter()
            .map(|row| {
                Ok(StoredVersion {
                    kind: kind(row.try_get("kind")?)?,
                    meta: meta_from_row(row)?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;

        let select_superseded = tx
            .prepare_cached(
                "SELECT version_id, record_id FROM sync_changes
                 WHERE network = $1 AND version_id = ANY($2)",
            )
            .await?;
        let superseded = tx
            .query(&select_superseded, &[&network, &superseded_ids])
            .await?
            .iter()
            .map(|row| {
                Ok(SupersededVersion {
                    version_id: VersionId(row.try_get(0)?),
                    record_id: RecordId(row.try_get(1)?),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;

        let select_naming = tx
            .prepare_cached(
                "SELECT supersedes, record_id FROM sync_changes
                 WHERE network = $1 AND supersedes = ANY($2)",
            )
            .await?;
        let naming = tx
            .query(&select_naming, &[&network, &version_ids])
            .await?
            .iter()
            .map(|row| {
                Ok(NamingVersion {
                    version_id: VersionId(row.try_get(0)?),
                    record_id: RecordId(row.try_get(1)?),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;

        let plan = plan_push(
            &changes,
            Held {
                existing,
                versions,
                superseded,
                naming,
            },
        );
        if !plan.inserts.is_empty() {
            let rows: Vec<&CheckedChange> = plan.inserts.iter().map(|&i| &changes[i]).collect();
            let count = i64::try_from(rows.len()).map_err(|_| corrupt("batch size"))?;
            let seqs: Vec<i64> = (last_seq + 1..=last_seq + count).collect();
            let ids: Vec<Uuid> = rows.iter().map(|c| c.change_id.0).collect();
            let kinds: Vec<&str> = rows.iter().map(|c| c.kind.as_str()).collect();
            let records: Vec<Uuid> = rows.iter().map(|c| c.meta.record_id.0).collect();
            let versions: Vec<Uuid> = rows.iter().map(|c| c.meta.version_id.0).collect();
            let supersedes: Vec<Option<Uuid>> = rows
                .iter()
                .map(|c| c.meta.supersedes.map(|s| s.0))
                .collect();
            let authors: Vec<&str> = rows.iter().map(|c| c.meta.author.as_str()).collect();
            let devices: Vec<&str> = rows.iter().map(|c| c.meta.device.as_str()).collect();
            let written: Vec<String> = rows.iter().map(|c| c.meta.written_at.to_string()).collect();
            let bodies: Vec<&str> = rows.iter().map(|c| c.body.as_str()).collect();
            let insert = tx
                .prepare_cached(
                    "INSERT INTO sync_changes (network, seq, change_id, kind, record_id,
                         version_id, supersedes, author, device, written_at, body)
                     SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::text[], $5::uuid[],
                         $6::uuid[], $7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[])",
                )
                .await?;
            tx.execute(
                &insert,
                &[
                    &network,
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
            .await?;
            let advance = tx
                .prepare_cached("UPDATE sync_networks SET last_seq = $2 WHERE network = $1")
                .await?;
            tx.execute(&advance, &[&network, &(last_seq + count)])
                .await?;
            let merging: Vec<(&CheckedChange, i32, &VersionId)> = rows
                .iter()
                .flat_map(|&c| (0..).zip(&c.meta.merges).map(move |(ord, m)| (c, ord, m)))
                .collect();
            if !merging.is_empty() {
                let versions: Vec<Uuid> = merging
                    .iter()
                    .map(|(c, _, _)| c.meta.version_id.0)
                    .collect();
                let records: Vec<Uuid> =
                    merging.iter().map(|(c, _, _)| c.meta.record_id.0).collect();
                let merged: Vec<Uuid> = merging.iter().map(|(_, _, m)| m.0).collect();
                let ords: Vec<i32> = merging.iter().map(|(_, ord, _)| *ord).collect();
                let insert_merges = tx
                    .prepare_cached(
                        "INSERT INTO sync_merges (network, version_id, record_id, merged, ord)
                         SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::int[])",
                    )
                    .await?;
                tx.execute(
                    &insert_merges,
                    &[&network, &versions, &records, &merged, &ords],
                )
                .await?;
            }
            if !plan.forked.is_empty() {
                let forked: Vec<Uuid> = plan.forked.iter().map(|r| r.0).collect();
                tx.execute(
                    "INSERT INTO sync_forks (network, record_id)
                     SELECT $1, * FROM UNNEST($2::uuid[]) ON CONFLICT DO NOTHING",
                    &[&network, &forked],
                )
                .await?;
            }
            if !plan.reconciled.is_empty() {
                let reconciled: Vec<Uuid> = plan.reconciled.iter().map(|r| r.0).collect();
                tx.execute(
                    "DELETE FROM sync_forks WHERE network = $1 AND record_id = ANY($2)",
                    &[&network, &reconciled],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(plan.outcomes)
    }

    async fn pull(
        &self,
        scope: &NetworkScope,
        after: u64,
        limit: u32,
        max_bytes: u64,
    ) -> Result<PullPage, StorageError> {
        // Sequence numbers are stored as BIGINT: nothing follows one past that.
        let Ok(after) = i64::try_from(after) else {
            return Ok(PullPage::default());
        };
        let network = scope.network().as_str();
        let client = self.pool.get().await.map_err(pool_error)?;
        // octet_length reads a stored body's size without fetching the body.
        let select_sizes = client
            .prepare_cached(
                "SELECT seq, octet_length(body)::bigint FROM sync_changes
                 WHERE network = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .await?;
        let sizes = client
            .query(&select_sizes, &[&network, &after, &(i64::from(limit) + 1)])
            .await?
            .iter()
            .map(|row| {
                let bytes: i64 = row.try_get(1)?;
                Ok((
                    row.try_get::<_, i64>(0)?,
                    u64::try_from(bytes).map_err(|_| corrupt("body size"))?,
                ))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let end = page_end(&sizes, limit as usize, max_bytes);
        let Some(last) = end.last_seq else {
            return Ok(PullPage::default());
        };
        let select_page = client
            .prepare_cached(
                "SELECT seq, change_id, kind, body FROM sync_changes
                 WHERE network = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
            )
            .await?;
        let changes = client
            .query(&select_page, &[&network, &after, &last])
            .await?
            .iter()
            .map(|row| {
                Ok(StoredChange {
                    seq: u64::try_from(row.try_get::<_, i64>(0)?).map_err(|_| corrupt("seq"))?,
                    change_id: ChangeId(row.try_get(1)?),
                    kind: kind(row.try_get(2)?)?,
                    body: row.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(PullPage {
            changes,
            more: end.more,
        })
    }

    async fn change_id_at(
        &self,
        scope: &NetworkScope,
        seq: u64,
    ) -> Result<Option<ChangeId>, StorageError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached("SELECT change_id FROM sync_changes WHERE network = $1 AND seq = $2")
            .await?;
        let row = client
            .query_opt(&stmt, &[&scope.network().as_str(), &seq])
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.map(ChangeId))
    }

    async fn forks(
        &self,
        scope: &NetworkScope,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<ForksPage, StorageError> {
        let network = scope.network().as_str();
        let client = self.pool.get().await.map_err(pool_error)?;
        let select_records = client
            .prepare_cached(
                "SELECT record_id FROM sync_forks
                 WHERE network = $1 AND ($2::uuid IS NULL OR record_id > $2)
                 ORDER BY record_id LIMIT $3",
            )
            .await?;
        let records = client
            .query(
                &select_records,
                &[&network, &after.map(|r| r.0), &(i64::from(limit) + 1)],
            )
            .await?
            .iter()
            .map(|row| row.try_get::<_, Uuid>(0))
            .collect::<Result<Vec<_>, _>>()?;
        let (records, next) = keyset_page(records, limit as usize);
        let select_versions = client
            .prepare_cached(&format!(
                "SELECT {META_COLUMNS}
                 FROM sync_changes c WHERE c.network = $1 AND c.record_id = ANY($2)
                 ORDER BY c.record_id"
            ))
            .await?;
        let rows = client
            .query(&select_versions, &[&network, &records])
            .await?;
        let mut out = Vec::new();
        let mut current: Vec<VersionMeta> = Vec::new();
        for row in &rows {
            let meta = meta_from_row(row)?;
            if current
                .first()
                .is_some_and(|m| m.record_id != meta.record_id)
            {
                out.extend(fork_of(current[0].record_id, &current));
                current.clear();
            }
            current.push(meta);
        }
        if let Some(first) = current.first() {
            out.extend(fork_of(first.record_id, &current));
        }
        Ok(ForksPage {
            forks: out,
            next: next.map(RecordId),
        })
    }

    async fn revoke_device(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<u64, StorageError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let (network, device) = (scope.network().as_str(), device.as_str());
        client
            .execute(
                "INSERT INTO sync_revoked_devices (network, device) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&network, &device],
            )
            .await?;
        let held: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM sync_changes WHERE network = $1 AND device = $2",
                &[&network, &device],
            )
            .await?
            .get(0);
        Ok(held.unsigned_abs())
    }

    async fn missing_changes(
        &self,
        scope: &NetworkScope,
        change_ids: Vec<ChangeId>,
    ) -> Result<Vec<ChangeId>, StorageError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(
                "SELECT change_id FROM sync_changes WHERE network = $1 AND change_id = ANY($2)",
            )
            .await?;
        let ids: Vec<Uuid> = change_ids.iter().map(|c| c.0).collect();
        let held = client
            .query(&stmt, &[&scope.network().as_str(), &ids])
            .await?
            .iter()
            .map(|row| row.try_get::<_, Uuid>(0))
            .collect::<Result<HashSet<_>, _>>()?;
        Ok(change_ids
            .into_iter()
            .filter(|c| !held.contains(&c.0))
            .collect())
    }

    async fn stored_changes(
        &self,
        scope: &NetworkScope,
        change_ids: Vec<ChangeId>,
    ) -> Result<Vec<(ChangeId, ChangeKind, String)>, StorageError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(
                "SELECT change_id, kind, body FROM sync_changes
                 WHERE network = $1 AND change_id = ANY($2)",
            )
            .await?;
        let ids: Vec<Uuid> = change_ids.iter().map(|c| c.0).collect();
        let mut held = HashMap::new();
        for row in client
            .query(&stmt, &[&scope.network().as_str(), &ids])
            .await?
        {
            let id: Uuid = row.try_get(0)?;
            held.insert(id, (kind(row.try_get(1)?)?, row.try_get::<_, String>(2)?));
        }
        Ok(change_ids
            .into_iter()
            .filter_map(|c| held.remove(&c.0).map(|(k, body)| (c, k, body)))
            .collect())
    }

    async fn is_revoked(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<bool, StorageError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sync_revoked_devices
                 WHERE network = $1 AND device = $2)",
            )
            .await?;
        let row = client
            .query_one(&stmt, &[&scope.network().as_str(), &device.as_str()])
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        refuse_read_only(&client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> SslMode {
        let mut config = tokio_postgres::Config::from_str(url).unwrap();
        insist_on_tls_off_this_machine(url, &mut config);
        config.get_ssl_mode()
    }

    #[test]
    fn a_url_naming_no_sslmode_insists_on_tls_to_another_machine_only() {
        assert_eq!(
            mode("postgres://u:p@db.example.nhs.uk/doorstep"),
            SslMode::Require
        );
        assert_eq!(
            mode("postgres://u:p@10.0.0.5:5432/doorstep"),
            SslMode::Require
        );
        assert_eq!(
            mode("postgres://u:p@127.0.0.1:5432,db.example.nhs.uk:5432/doorstep"),
            SslMode::Require
        );
        assert_eq!(mode("host=db.example.nhs.uk user=u"), SslMode::Require);
        assert_eq!(
            mode("postgres://u:p@127.0.0.1:5432/doorstep"),
            SslMode::Prefer
        );
        assert_eq!(mode("postgres://u:p@localhost/doorstep"), SslMode::Prefer);
        assert_eq!(mode("postgres://u:p@[::1]:5432/doorstep"), SslMode::Prefer);
        assert_eq!(mode("host=/run/postgresql user=u"), SslMode::Prefer);
        // A mode the URL names is the operator's choice.
        assert_eq!(
            mode("postgres://u:p@db.example.nhs.uk/doorstep?sslmode=disable"),
            SslMode::Disable
        );
        assert_eq!(
            mode("postgres://u:p@db.example.nhs.uk/doorstep?sslmode=prefer"),
            SslMode::Prefer
        );
        assert_eq!(
            mode("host=db.example.nhs.uk sslmode = disable"),
            SslMode::Disable
        );
        // Words inside a password are not a mode named.
        assert_eq!(
            mode("host=db.example.nhs.uk password='a sslmode=disable \\' b'"),
            SslMode::Require
        );
        assert_eq!(
            mode("postgres://u:sslmode%3Ddisable@db.example.nhs.uk/doorstep"),
            SslMode::Require
        );
        assert_eq!(
            mode("postgres://u:p@10.0.0.5:5432,10.0.0.6:5432/doorstep?sslmode=disable"),
            SslMode::Disable
        );
        assert_eq!(
            mode("host=db.example.nhs.uk password=x\\ sslmode=disable"),
            SslMode::Require
        );
    }
}
