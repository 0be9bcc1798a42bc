//! Crash safety: a child process saving visits and applying pull batches is
//! killed with SIGKILL at random moments, hundreds of times. After every kill
//! the store opens, every save the child reported is there whole with its
//! outbox item, every reported pull is there, and nothing half-written is
//! visible: every local version has its outbox item and vice versa, and the
//! pulled versions are exactly those of the batches up to the stored cursor.
//!
//! The seed is printed; set `DOORSTEP_KILL_SEED` to replay a run.

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use doorstep_domain::record::{RecordId, VersionId, VisitContent, VisitRecord};
use doorstep_store::{ChangeId, KeyProvider, KeySlot, OutboxState, SyncCursor};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::{Fixture, raw_connection};

const KILLS: usize = 250;

/// What the child reported as done.
enum Acked {
    Save {
        record: RecordId,
        version: VersionId,
        change: ChangeId,
    },
    Pull {
        batch: u64,
        record: RecordId,
        version: VersionId,
    },
}

fn parse_line(line: &str) -> Acked {
    let parts: Vec<&str> = line.split(' ').collect();
    let id = |i: usize| Uuid::parse_str(parts[i]).expect("the writer prints uuids");
    match parts[0] {
        "save" => Acked::Save {
            record: RecordId(id(1)),
            version: VersionId(id(2)),
            change: ChangeId(id(3)),
        },
        "pull" => Acked::Pull {
            batch: parts[1].parse().expect("a batch number"),
            record: RecordId(id(2)),
            version: VersionId(id(3)),
        },
        other => panic!("unknown line kind {other}"),
    }
}

/// Counts local versions, outbox items and pulled versions below the API.
fn counts(f: &Fixture) -> (i64, i64, i64) {
    raw_connection(f)
        .query_row(
            "SELECT (SELECT count(*) FROM record_versions WHERE origin = 'local'),
                    (SELECT count(*) FROM outbox),
                    (SELECT count(*) FROM record_versions WHERE origin = 'pulled')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap()
}

fn check_reported(store: &doorstep_store::Store, acked: &Acked, kill: usize, seed: u64) {
    match acked {
        Acked::Save {
            record,
            version,
            change,
        } => {
            let history = store.history::<VisitContent>(*record).unwrap();
            assert!(
                history
                    .iter()
                    .any(|v| v.version.meta.version_id == *version),
                "acknowledged save lost at kill {kill} (seed {seed})"
            );
            let item = store
                .outbox_item(*change)
                .unwrap()
                .expect("its outbox item");
            assert_eq!(item.version_id, *version);
            assert_eq!(item.state, OutboxState::Pending);
        }
        Acked::Pull {
            record, version, ..
        } => {
            let history = store.history::<VisitContent>(*record).unwrap();
            assert_eq!(
                history.len(),
                1,
                "acknowledged pull lost at kill {kill} (seed {seed})"
            );
            assert_eq!(history[0].version.meta.version_id, *version);
        }
    }
}

#[test]
fn acknowledged_saves_and_pulls_survive_sigkill_at_random_moments() {
    let f = Fixture::default();
    drop(f.open().unwrap());
    let key = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let seed = std::env::var("DOORSTEP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            u64::from(std::process::id()) ^ jiff::Timestamp::now().as_millisecond().unsigned_abs()
        });
    println!("kill test seed {seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut acked: Vec<Acked> = Vec::new();
    let mut mid_work_kills = 0;

    for kill in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep-store-crash-writer"))
            .arg(f.path())
            .env("DOORSTEP_CRASH_WRITER_KEY", &hex)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the writer starts");
        std::thread::sleep(Duration::from_micros(rng.random_range(2_000..50_000)));
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("the writer stopped by itself ({status}) at kill {kill}: {err}");
        }
        child.kill().expect("SIGKILL is delivered");
        child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        // Only complete lines were reported; a cut-off last line was not.
        let complete = out.rfind('\n').map_or("", |end| &out[..end]);
        let new: Vec<Acked> = complete.lines().map(parse_line).collect();
        if !new.is_empty() {
            mid_work_kills += 1;
        }

        let store = f
            .open()
            .unwrap_or_else(|e| panic!("store fails to open after kill {kill}: {e}"));
        for a in &new {
            check_reported(&store, a, kill, seed);
        }
        let cursor: u64 = match store.sync_cursor().unwrap() {
            Some(SyncCursor(c)) => c.trim_start_matches("cursor-").parse().unwrap(),
            None => 0,
        };
        drop(store);
        acked.extend(new);

        let saves = acked
            .iter()
            .filter(|a| matches!(a, Acked::Save { .. }))
            .count() as i64;
        let last_pull = acked
            .iter()
            .filter_map(|a| match a {
                Acked::Pull { batch, .. } => Some(*batch),
                Acked::Save { .. } => None,
            })
            .max()
            .unwrap_or(0);
        let (local, items, pulled) = counts(&f);
        assert_eq!(
            local, items,
            "a version without its outbox item, or the reverse, at kill {kill}"
        );
        // At most one operation per kill can have committed unreported.
        assert!(local >= saves && local <= saves + kill as i64 + 1);
        // The cursor never falls behind a reported pull; a kill may leave one
        // batch committed but unreported (the next run continues after it).
        assert!(
            cursor >= last_pull && cursor <= last_pull + kill as u64 + 1,
            "cursor {cursor} after reported pull {last_pull} at kill {kill}"
        );
        assert_eq!(
            pulled, cursor as i64,
            "pulled data and cursor moved apart at kill {kill}"
        );
    }

    let store = f.open().unwrap();
    store.check_integrity().unwrap();
    let stored: HashSet<VersionId> = store
        .push_batch(crate::up_to(usize::MAX))
        .unwrap()
        .iter()
        .map(|item| {
            let version: VisitRecord = serde_json::from_str(&item.payload).expect("whole payloads");
            assert_eq!(version.meta.version_id, item.version_id);
            item.version_id
        })
        .collect();
    let mut saves = 0;
    for a in &acked {
        if let Acked::Save { version, .. } = a {
            assert!(stored.contains(version));
            saves += 1;
        }
    }
    // Kills before the first report hit the open; most must hit the writes.
    assert!(
        mid_work_kills >= KILLS / 4,
        "only {mid_work_kills} of {KILLS} kills landed after the first write"
    );
    println!(
        "{KILLS} kills ({mid_work_kills} after the first write), {saves} acknowledged saves, \
         {} acknowledged pulls, {:?}",
        acked.len() - saves,
        started.elapsed()
    );
}
