//! How fast the store is where the clinician waits: saving a visit (with its
//! outbox item, `synchronous = FULL`), opening the store, and loading the
//! day's round with its patients' summaries.
//!
//! The save is measured three ways in the same run: through `Store::save` on
//! SQLCipher (what the app does: checks, JSON, lineage, two inserts, one
//! commit), and as the same two inserts in one transaction on a SQLCipher
//! connection and on a connection opened without a key. The workspace links
//! one SQLite, built with SQLCipher (features unify), so the unkeyed
//! connection is that same library with encryption off: the difference
//! between the last two is exactly the cost of encryption.
//!
//! Run with `cargo bench -p doorstep-store --bench store`. Before criterion's
//! own report it prints p50/p99 of individually timed saves.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use doorstep_store::{
    KeyProvider, KeySlot, MemoryKeyProvider, PullBatch, Store, StoreConfig, SyncCursor, schema,
};
use rusqlite::{Connection, params};
use uuid::Uuid;

#[allow(
    dead_code,
    reason = "the benchmark uses only some of the shared samples"
)]
#[path = "../tests/support/sample.rs"]
mod sample;

const TIMED_SAVES: usize = 2000;

fn arrived() -> jiff::Timestamp {
    "2026-11-24T09:00:00Z".parse().expect("valid timestamp")
}

/// A raw connection at `path` with the store's schema and durability
/// settings, keyed when `key` is given.
fn raw_store(path: &Path, key: Option<&str>) -> Connection {
    let mut conn = Connection::open(path).expect("open");
    if let Some(key) = key {
        conn.execute_batch(&format!("PRAGMA key = \"x'{key}'\";"))
            .expect("key");
    }
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("wal");
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .expect("pragmas");
    schema::migrate_to(&mut conn, schema::LATEST).expect("schema");
    conn
}

/// The two inserts `Store::save` makes, in one transaction.
fn raw_save(conn: &mut Connection, n: u32) {
    let visit = sample::new_visit(n, arrived());
    let body = serde_json::to_string(&visit).expect("json");
    let tx = conn.transaction().expect("begin");
    let now = jiff::Timestamp::now().to_string();
    tx.prepare_cached(
        "INSERT INTO record_versions
             (version_id, record_id, kind, supersedes, origin, body, stored_at)
         VALUES (?1, ?2, 'visit', NULL, 'local', ?3, ?4)",
    )
    .expect("prepare")
    .execute(params![
        visit.meta.version_id.0.to_string(),
        visit.meta.record_id.0.to_string(),
        body,
        now
    ])
    .expect("insert version");
    tx.prepare_cached(
        "INSERT INTO outbox
             (change_id, version_id, kind, record_id, state, created_at, state_changed_at)
         VALUES (?1, ?2, 'visit', ?3, 'pending', ?4, ?4)",
    )
    .expect("prepare")
    .execute(params![
        Uuid::now_v7().to_string(),
        visit.meta.version_id.0.to_string(),
        visit.meta.record_id.0.to_string(),
        now
    ])
    .expect("insert item");
    tx.commit().expect("commit");
}

fn key_hex(keys: &MemoryKeyProvider) -> String {
    let key = keys.read_key(KeySlot::Current).unwrap().unwrap();
    key.as_bytes()
        .iter()
        .chain(b"doorstep-store-1")
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Prints p50 and p99 of one labelled series of timings.
fn report(label: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{label:<44} p50 {:>7.3} ms   p99 {:>7.3} ms   ({} saves)",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times.len()
    );
}

fn timed(save: impl FnOnce()) -> Duration {
    let started = Instant::now();
    save();
    started.elapsed()
}

/// Times saves one by one, taking the three kinds in turn so that whatever
/// else the machine is doing weighs on all three alike.
fn save_percentiles(dir: &Path) {
    println!("== save a visit record + outbox item, synchronous = FULL, WAL");
    let keys = Arc::new(MemoryKeyProvider::new());
    let mut store =
        Store::open(&StoreConfig::new(dir.join("p-store.db")), keys.clone()).expect("open");
    let hex = key_hex(&keys);
    let mut cipher = raw_store(&dir.join("p-cipher.db"), Some(&hex));
    let mut plain = raw_store(&dir.join("p-plain.db"), None);
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for n in 0..TIMED_SAVES as u32 {
        times[0].push(timed(|| {
            store
                .save(&sample::new_visit(n, arrived()))
                .map(|_| ())
                .expect("save")
        }));
        times[1].push(timed(|| raw_save(&mut cipher, n)));
        times[2].push(timed(|| raw_save(&mut plain, n)));
    }
    report("Store::save, SQLCipher", &mut times[0]);
    report("same two inserts, SQLCipher", &mut times[1]);
    report("same two inserts, same SQLite without a key", &mut times[2]);
}

fn benches(c: &mut Criterion, dir: &Path) {
    let keys = Arc::new(MemoryKeyProvider::new());
    let config = StoreConfig::new(dir.join("c-store.db"));
    let mut store = Store::open(&config, keys.clone()).expect("open");
    let mut n = 0;
    c.bench_function(
        "save visit + outbox item (Store::save, SQLCipher, FULL)",
        |b| {
            b.iter(|| {
                n += 1;
                store
                    .save(black_box(&sample::new_visit(n, arrived())))
                    .expect("save")
            })
        },
    );
    let hex = key_hex(&keys);
    let mut cipher = raw_store(&dir.join("c-cipher.db"), Some(&hex));
    c.bench_function(
        "save visit + outbox item (two inserts, SQLCipher, FULL)",
        |b| {
            b.iter(|| {
                n += 1;
                raw_save(&mut cipher, n)
            })
        },
    );
    let mut plain = raw_store(&dir.join("c-plain.db"), None);
    c.bench_function(
        "save visit + outbox item (two inserts, no key, FULL)",
        |b| {
            b.iter(|| {
                n += 1;
                raw_save(&mut plain, n)
            })
        },
    );

    // A day of work on the device: the round and 80 patients among a
    // caseload of 2,000 summaries, plus the visits saved above.
    let day = jiff::civil::date(2026, 11, 24);
    let mut batch = PullBatch::new(SyncCursor("bench".into()));
    batch.rounds.push(sample::round(day, 80));
    batch.patients = (0..2000).map(sample::patient).collect();
    store.apply_pull(&batch).expect("pull");
    c.bench_function("load the day's round: 80 visits with summaries", |b| {
        b.iter(|| {
            let round = store.round(black_box(day)).expect("load").expect("round");
            assert_eq!(round.patients.len(), 80);
            round
        })
    });
    drop(store);

    let keys: Arc<dyn KeyProvider> = keys;
    c.bench_function("open the store with the raw key", |b| {
        b.iter_batched(
            || (),
            |()| Store::open(&config, keys.clone()).expect("open"),
            BatchSize::PerIteration,
        )
    });
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    save_percentiles(dir.path());
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    benches(&mut c, dir.path());
    c.final_summary();
}
