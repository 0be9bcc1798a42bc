//! Crash safety: a child process saving visits is killed with SIGKILL at
//! random moments, hundreds of times. After every kill the store opens, every
//! save the child reported is there whole with its outbox item, and nothing
//! half-written is visible (every version has its item and vice versa).
//!
//! The seed is printed; set `DOORSTEP_KILL_SEED` to replay a run.

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use doorstep_domain::record::{RecordId, VersionId, VisitContent, VisitRecord};
use doorstep_store::{ChangeId, KeyProvider, KeySlot, OutboxState};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::{Fixture, raw_connection};

const KILLS: usize = 250;

/// One save the child reported as done.
struct Acked {
    record: RecordId,
    version: VersionId,
    change: ChangeId,
}

fn parse_line(line: &str) -> Acked {
    let ids: Vec<uuid::Uuid> = line
        .split(' ')
        .map(|part| uuid::Uuid::parse_str(part).expect("the writer prints uuids"))
        .collect();
    Acked {
        record: RecordId(ids[0]),
        version: VersionId(ids[1]),
        change: ChangeId(ids[2]),
    }
}

/// Counts record versions and outbox items below the API.
fn counts(f: &Fixture) -> (i64, i64) {
    raw_connection(f)
        .query_row(
            "SELECT (SELECT count(*) FROM record_versions), (SELECT count(*) FROM outbox)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

#[test]
fn acknowledged_saves_survive_sigkill_at_random_moments() {
    let f = Fixture::default();
    drop(f.open().unwrap());
    let key = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let seed = std::env::var("DOORSTEP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            u64::from(std::process::id()) ^ jiff::Timestamp::now().as_millisecond() as u64
        });
    println!("kill test seed {seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut acked: Vec<Acked> = Vec::new();

    for kill in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep-store-crash-writer"))
            .arg(f.path())
            .env("DOORSTEP_CRASH_WRITER_KEY", &hex)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the writer starts");
        std::thread::sleep(Duration::from_micros(rng.random_range(500..25_000)));
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

        let store = f
            .open()
            .unwrap_or_else(|e| panic!("store fails to open after kill {kill}: {e}"));
        for a in &new {
            let history = store.history::<VisitContent>(a.record).unwrap();
            assert!(
                history
                    .iter()
                    .any(|v| v.version.meta.version_id == a.version),
                "acknowledged version lost at kill {kill} (seed {seed})"
            );
            let item = store
                .outbox_item(a.change)
                .unwrap()
                .expect("its outbox item");
            assert_eq!(item.version_id, a.version);
            assert_eq!(item.state, OutboxState::Pending);
        }
        drop(store);
        acked.extend(new);
        let (versions, items) = counts(&f);
        assert_eq!(
            versions, items,
            "a version without its outbox item, or the reverse, at kill {kill}"
        );
        // At most one save per kill can have committed without being reported.
        assert!(versions >= acked.len() as i64 && versions <= (acked.len() + kill + 1) as i64);
    }

    let store = f.open().unwrap();
    store.check_integrity().unwrap();
    let all = store.push_batch(usize::MAX).unwrap();
    let stored: HashSet<VersionId> = all
        .iter()
        .map(|item| {
            let version: VisitRecord = serde_json::from_str(&item.payload).expect("whole payloads");
            assert_eq!(version.meta.version_id, item.version_id);
            item.version_id
        })
        .collect();
    assert!(acked.iter().all(|a| stored.contains(&a.version)));
    assert!(
        acked.len() > KILLS,
        "the kills landed mid-work ({} saves acknowledged)",
        acked.len()
    );
    println!(
        "{KILLS} kills, {} acknowledged saves, {:?}",
        acked.len(),
        started.elapsed()
    );
}
