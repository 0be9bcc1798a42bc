//! A check of the write-ahead log before SQLite reads it.
//!
//! Until a checkpoint folds them into the main file, the day's saves live
//! only in the `-wal` file. When SQLite recovers that log on opening, it
//! reads frames while their checksums hold and silently ignores the first
//! that fails and everything after it, and its next writes go over them. A
//! torn last transaction (power lost before its commit was synced) is
//! expected to end that way, and nothing the app was told is durable is in
//! it. Damage is when a commit the app was told about follows the bad frame:
//! with `synchronous = FULL` each commit is synced before the next
//! transaction writes, so two commit frames of the log's current generation
//! after the first bad frame prove that a transaction that had finished is
//! among those SQLite would drop. [`check`] reports exactly that case and
//! never writes.
//!
//! The layout and checksum are SQLite's write-ahead log format (a 32-byte
//! header, then frames of a 24-byte header and one page).

use std::io::Read;
use std::path::Path;

use crate::error::{Result, StoreError};

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
/// The log's magic number; its lowest bit says the checksum reads words big-endian.
const MAGIC: u32 = 0x377f_0682;

/// Refuses a log in which frames of committed transactions follow a frame
/// whose checksum fails, or whose salts do while its checksum shows it was
/// written in this generation (see the module docs). A log that only ends
/// torn passes: nothing acknowledged is in its torn tail. So does a missing,
/// empty or unreadable header, which SQLite takes as no log at all. A power
/// cut while the log restarts (after a complete checkpoint, so everything
/// before is in the database) leaves such a header over frames already
/// copied, and this check cannot tell that from a damaged header over
/// frames not yet copied without comparing frames with the database's pages:
/// the second case loses what the log held, undetected.
pub(crate) fn check(db_path: &Path) -> Result<()> {
    let mut path = db_path.as_os_str().to_owned();
    path.push("-wal");
    // Read a frame at a time: after a re-key killed before its checkpoint the log holds the
    // whole database, which a phone should not have to hold in memory to open it.
    let log = match std::fs::File::open(Path::new(&path)) {
        Ok(file) => std::io::BufReader::new(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match first_lost_commit(log)? {
        None => Ok(()),
        Some(Lost { bad_frame, frames }) => Err(StoreError::Corrupt {
            detail: format!(
                "write-ahead log frame {bad_frame} of {frames} fails its checksum and committed \
                 changes follow it"
            ),
        }),
    }
}

/// Where a log loses committed work: its first bad frame (1-based) and how
/// many whole frames it holds.
#[derive(Debug, PartialEq, Eq)]
struct Lost {
    bad_frame: usize,
    frames: usize,
}

/// Reads into `buf` as much of `log` as it holds, up to its length; how much.
fn fill(log: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match log.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn first_lost_commit(mut log: impl Read) -> std::io::Result<Option<Lost>> {
    let mut header = [0u8; HEADER];
    if fill(&mut log, &mut header)? < HEADER {
        return Ok(None);
    }
    let word_in =
        |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let magic = word_in(&header, 0);
    if magic & !1 != MAGIC {
        return Ok(None);
    }
    let big_endian = magic & 1 == 1;
    let page_size = match word_in(&header, 8) {
        1 => 65_536,
        n if n.is_power_of_two() && (512..=32_768).contains(&n) => n as usize,
        _ => return Ok(None),
    };
    let salts = (word_in(&header, 16), word_in(&header, 20));
    let mut sum = checksum(big_endian, (0, 0), &header[..24]);
    if sum != (word_in(&header, 24), word_in(&header, 28)) {
        return Ok(None);
    }
    let mut frame = vec![0u8; FRAME_HEADER + page_size];
    let mut frames = 0;
    let mut bad_frame = None;
    let mut commits_after_bad = 0;
    // Only whole frames count: a torn last one is no frame at all.
    while fill(&mut log, &mut frame)? == frame.len() {
        frames += 1;
        let word = |at: usize| word_in(&frame, at);
        let same_generation = (word(8), word(12)) == salts;
        if bad_frame.is_none() {
            sum = checksum(big_endian, sum, &frame[..8]);
            sum = checksum(big_endian, sum, &frame[FRAME_HEADER..]);
            let chains = sum == (word(16), word(20));
            if !same_generation && !chains {
                // A frame of an earlier generation: the log ends here.
                return Ok(None);
            }
            if chains && same_generation {
                continue;
            }
            // Either its checksum fails, or its salts do while its checksum
            // chains on from this generation's frames: a frame written in
            // this generation whose salt was damaged, which SQLite takes for
            // the end of the log all the same.
            bad_frame = Some(frames);
        }
        if same_generation && word(4) != 0 {
            commits_after_bad += 1;
        }
    }
    let Some(bad_frame) = bad_frame else {
        return Ok(None);
    };
    Ok((commits_after_bad >= 2).then_some(Lost { bad_frame, frames }))
}

/// SQLite's log checksum of `bytes` (a multiple of 8 long), continuing from `seed`.
fn checksum(big_endian: bool, seed: (u32, u32), bytes: &[u8]) -> (u32, u32) {
    let (mut s0, mut s1) = seed;
    for pair in bytes.chunks_exact(8) {
        let read = |b: &[u8]| {
            let b = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s0 = s0.wrapping_add(read(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(read(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 512;

    /// A log of `commits` (frames per transaction), little- or big-endian.
    fn log(big_endian: bool, commits: &[usize]) -> Vec<u8> {
        let magic = MAGIC | u32::from(big_endian);
        let mut out = Vec::new();
        for w in [magic, 3_007_000, PAGE as u32, 0, 0xdead_beef, 0x1234_5678] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        let mut sum = checksum(big_endian, (0, 0), &out);
        out.extend_from_slice(&sum.0.to_be_bytes());
        out.extend_from_slice(&sum.1.to_be_bytes());
        let mut page_no = 1u32;
        for &frames in commits {
            for f in 0..frames {
                let commit = if f + 1 == frames { page_no } else { 0 };
                let mut head = Vec::new();
                head.extend_from_slice(&page_no.to_be_bytes());
                head.extend_from_slice(&commit.to_be_bytes());
                let page: Vec<u8> = (0..PAGE).map(|i| (i as u32 * 7 + page_no) as u8).collect();
                sum = checksum(big_endian, sum, &head);
                sum = checksum(big_endian, sum, &page);
                out.extend_from_slice(&head);
                out.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
                out.extend_from_slice(&0x1234_5678_u32.to_be_bytes());
                out.extend_from_slice(&sum.0.to_be_bytes());
                out.extend_from_slice(&sum.1.to_be_bytes());
                out.extend_from_slice(&page);
                page_no += 1;
            }
        }
        out
    }

    fn damage(log: &mut [u8], frame: usize) {
        log[HEADER + (frame - 1) * (FRAME_HEADER + PAGE) + FRAME_HEADER + 100] ^= 0xff;
    }

    #[test]
    fn an_intact_log_passes_either_byte_order() {
        assert_eq!(
            first_lost_commit(&log(false, &[2, 1, 3])[..]).unwrap(),
            None
        );
        assert_eq!(first_lost_commit(&log(true, &[2, 1, 3])[..]).unwrap(), None);
    }

    #[test]
    fn damage_followed_by_later_commits_is_found() {
        let mut bytes = log(false, &[2, 1, 3, 1]);
        damage(&mut bytes, 2);
        assert_eq!(
            first_lost_commit(&bytes[..]).unwrap(),
            Some(Lost {
                bad_frame: 2,
                frames: 7
            })
        );
    }

    #[test]
    fn a_torn_last_transaction_is_what_a_power_cut_leaves_and_passes() {
        let mut bytes = log(true, &[2, 1, 3]);
        damage(&mut bytes, 5);
        assert_eq!(first_lost_commit(&bytes[..]).unwrap(), None);
        let mut cut = log(false, &[2, 1, 3]);
        cut.truncate(cut.len() - 100);
        assert_eq!(first_lost_commit(&cut[..]).unwrap(), None);
    }

    #[test]
    fn a_damaged_salt_followed_by_later_commits_is_found() {
        let mut bytes = log(false, &[1, 1, 1, 1, 1]);
        // The first salt byte of frame 3's header.
        bytes[HEADER + 2 * (FRAME_HEADER + PAGE) + 8] ^= 1;
        assert_eq!(
            first_lost_commit(&bytes[..]).unwrap(),
            Some(Lost {
                bad_frame: 3,
                frames: 5
            })
        );
        // In the last commit, it only ends the log as a torn write would.
        let mut bytes = log(false, &[1, 1, 1]);
        bytes[HEADER + 2 * (FRAME_HEADER + PAGE) + 12] ^= 1;
        assert_eq!(first_lost_commit(&bytes[..]).unwrap(), None);
    }

    #[test]
    fn frames_of_an_earlier_generation_after_the_end_are_ignored() {
        let mut bytes = log(false, &[1, 1, 1, 1]);
        // The log was restarted: the header's salts changed, so every frame is
        // from the generation before and SQLite reads none of them.
        bytes[16] ^= 1;
        let sum = checksum(false, (0, 0), &bytes[..24]);
        bytes[24..28].copy_from_slice(&sum.0.to_be_bytes());
        bytes[28..32].copy_from_slice(&sum.1.to_be_bytes());
        assert_eq!(first_lost_commit(&bytes[..]).unwrap(), None);
    }
}
