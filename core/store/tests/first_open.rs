//! Its own test binary, so that the stores opened here are the first SQLite
//! connections of the process: SQLCipher sets itself up at the first open,
//! and two threads opening at that moment must both get a working store.

use std::sync::{Arc, Barrier};

use doorstep_store::{MemoryKeyProvider, Store, StoreConfig};

#[test]
fn stores_opened_at_once_by_several_threads_at_start_up_all_open() {
    const THREADS: usize = 32;
    let dir = tempfile::tempdir().expect("temporary folder");
    let start = Arc::new(Barrier::new(THREADS));
    let opened: Vec<_> = (0..THREADS)
        .map(|n| {
            let config = StoreConfig::new(dir.path().join(format!("device-{n}.db")));
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                Store::open(&config, Arc::new(MemoryKeyProvider::new())).map(|_| ())
            })
        })
        .collect();
    for (n, thread) in opened.into_iter().enumerate() {
        let result = thread.join().expect("the thread ran to the end");
        assert!(result.is_ok(), "store {n} did not open: {result:?}");
    }
}
