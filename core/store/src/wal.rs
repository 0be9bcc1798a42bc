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
//! transaction writes, so an intact commit frame of the log's current
//! generation after the first bad frame proves that a transaction that had
//! finished is among those SQLite would drop once the log shows something
//! written after it: the very next frame intact and continuing the commit's
//! checksum, or a later intact commit. (A commit frame that fails its own
//! checksum proves nothing: it may be the torn one.)
//!
//! SQLite ignores the whole log, as silently, when its header fails its
//! checks (magic number, page size, checksum). A restart of the log cut
//! short by a power cut leaves such a header, and so does damage, and the
//! header alone cannot tell them apart with certainty: a cut write may
//! leave any mix of the old and new header's bytes, and the new one's
//! checkpoint sequence is whatever the writing connection counted. The
//! database file can. SQLite restarts a log (writes a new header over it,
//! before any frame of the new generation) only once a checkpoint has
//! copied every committed frame of it into the file, byte for byte, and
//! synced the file; so after a restart cut short the file holds the newest
//! committed version of every page the log does. The check works back from
//! the log's first frame to the header its generation was written under,
//! walks that generation's frames, and compares each page's newest
//! committed version with the file's page. Pages the file lacks would be
//! lost with the log: that is damage, never a restart, and it is reported.
//! (Where frames are damaged too, each may have held a newer version of one
//! page that a checkpoint copied before the damage, so it takes more
//! lacking pages than damaged frames.) A header that fails over frames all
//! in the file loses nothing, whatever made it, and passes.
//!
//! Block-level damage to the log's first bytes can take the first frame
//! with the header, and nothing is left to work back from. The generation
//! is then found from the first two consecutive frames where the second's
//! checksum continues the first's, and walked from there. The frames before
//! cannot be checked; those whose salts are not the pair's (a zeroed one
//! among them) count as damaged (they may be of a later generation, and
//! each may have held a newer version of a page that a checkpoint copied),
//! while those with the pair's salts are older frames of its generation and
//! can hide nothing newer.
//!
//! A failed header that passes still needs the open's help. SQLite ignores
//! the log but keeps the header's salts, and its next writer reuses them
//! for frames written from the log's start, over the older generation's
//! frames, some with the same salts; killed before a checkpoint, those
//! would follow the new frames as if damaged after them, and the next open
//! would refuse a store that loses nothing. So [`check`] says when it let
//! such a header through ([`Passed::HeaderIgnored`]), and the store empties
//! the log with a truncating checkpoint before it writes.
//!
//! [`check`] reports exactly those cases and never writes. The layout
//! and checksum are SQLite's write-ahead log format (a 32-byte header, then
//! frames of a 24-byte header and one page).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Result, StoreError};

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
/// The log's magic number; its lowest bit says the checksum reads words big-endian.
const MAGIC: u32 = 0x377f_0682;
/// The only log format version SQLite writes.
const VERSION: u32 = 3_007_000;
/// The largest page size SQLite allows: the most of a log read to work
/// back to its header.
const MAX_PAGE: usize = 65_536;
/// The database file's first bytes, where SQLCipher keeps its salt. The
/// store hands SQLCipher the salt with the key and never reads them, so
/// damage there loses nothing and is not compared.
const UNREAD_PREFIX: usize = 16;

/// Refuses, as [`StoreError::Corrupt`], a log whose committed work SQLite
/// would silently drop (see the module docs): frames of committed
/// transactions after a frame whose checksum fails, or whose salts do while
/// its checksum shows it was written in this generation; or a header SQLite
/// would ignore over committed pages the database file does not hold. A log
/// that only ends torn passes: nothing acknowledged is in its torn tail. So
/// does a failed header over frames already in the file (what a restart cut
/// short leaves), and one over frames none of which can be read (nothing in
/// the log can then be shown to be committed); the answer then says the log
/// must be restarted before anything is written (see [`Passed`]).
pub(crate) fn check(db_path: &Path) -> Result<Passed> {
    let mut path = db_path.as_os_str().to_owned();
    path.push("-wal");
    // Read a frame at a time: after a re-key killed before its checkpoint the log holds the
    // whole database, which a phone should not have to hold in memory to open it.
    let log = match std::fs::File::open(Path::new(&path)) {
        Ok(file) => std::io::BufReader::new(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Passed::Read),
        Err(e) => return Err(e.into()),
    };
    let database = std::io::BufReader::new(std::fs::File::open(db_path)?);
    match find_loss(log, database)? {
        Ok(passed) => Ok(passed),
        Err(Loss::Frames { bad_frame, frames }) => Err(StoreError::Corrupt {
            detail: format!(
                "write-ahead log frame {bad_frame} of {frames} fails its checksum and committed \
                 changes follow it"
            ),
        }),
        Err(Loss::Header { pages }) => Err(StoreError::Corrupt {
            detail: format!(
                "its write-ahead log header fails its checks, so SQLite would ignore the log, \
                 which holds {pages} committed pages not yet in the file; nothing was changed"
            ),
        }),
    }
}

/// How a log that loses nothing is to be opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Passed {
    /// SQLite reads the log as it is (or there is none, or it is shorter
    /// than a header).
    Read,
    /// SQLite ignores the log because its header fails, yet keeps that
    /// header's salts and checkpoint sequence, and its next writer reuses
    /// those salts (new ones only at sequence 0) for frames written from the
    /// start of the file, over frames of the log's earlier generation that
    /// may carry the same salts. Killed before a checkpoint, those old
    /// frames would follow the new ones as if damaged after them, and the
    /// next open would refuse a store that loses nothing. So the open
    /// restarts the log (a truncating checkpoint) once the key is verified
    /// and before it writes: nothing in the log is read by SQLite, so
    /// nothing is lost with it.
    HeaderIgnored,
}

/// How a log loses committed work.
#[derive(Debug, PartialEq, Eq)]
enum Loss {
    /// Its first bad frame (1-based) is followed by commits; `frames` is how
    /// many whole frames it holds.
    Frames { bad_frame: usize, frames: usize },
    /// Its header fails while it holds `pages` committed pages the database
    /// file does not.
    Header { pages: usize },
}

/// What frames of one generation of the log are checked against: the fields
/// of the header it was written under. Its frames carry its salts, and their
/// checksums run on from its own.
#[derive(Debug, PartialEq, Eq)]
struct Generation {
    /// Whether checksums read words big-endian (the magic number's lowest bit).
    big_endian: bool,
    page_size: usize,
    salts: [u8; 8],
    /// The header's checksum, which the first frame's continues.
    seed: (u32, u32),
}

impl Generation {
    /// The generation `header` begins, if SQLite reads the log under it:
    /// its magic number, page size and checksum hold.
    fn of_header(header: &[u8; HEADER]) -> Option<Self> {
        let magic = be_word(&header[..4]);
        if magic & !1 != MAGIC {
            return None;
        }
        let big_endian = magic & 1 == 1;
        let page_size = page_size(be_word(&header[8..12]))?;
        let seed = checksum(big_endian, (0, 0), &header[..24]);
        (seed == (be_word(&header[24..28]), be_word(&header[28..32]))).then(|| Self {
            big_endian,
            page_size,
            salts: salts(&header[16..24]),
            seed,
        })
    }

    /// The generation the log's first frame was written under, worked back
    /// from that frame alone, for when the header on disk is not the one it
    /// was written under. `start` is the log after its header, as far as it
    /// goes up to a frame of the largest page size.
    ///
    /// For each byte order and page size, the frame's stored checksum is
    /// unwound over its contents to the header checksum it continued. A
    /// header holds the magic number, version and page size SQLite writes,
    /// a checkpoint sequence, and the frame's salts; whatever the sequence,
    /// the checksum's first word after the page size and sequence is fixed
    /// by the first three, and unwinding the salts from the header checksum
    /// must reach it. A frame that fits no header, or fits more than one
    /// (a 1 in 2^32 chance for each), has no generation that can be told.
    fn of_first_frame(start: &[u8]) -> Option<Self> {
        let mut found = None;
        for big_endian in [false, true] {
            for page_size in (9..=16).map(|shift| 1usize << shift) {
                let Some(frame) = start.get(..FRAME_HEADER + page_size) else {
                    continue;
                };
                let stored = (be_word(&frame[16..20]), be_word(&frame[20..24]));
                let after_page_number = unchecksum(big_endian, stored, &frame[FRAME_HEADER..]);
                let seed = unchecksum(big_endian, after_page_number, &frame[..8]);
                let mut fixed = [0u8; 12];
                fixed[..4].copy_from_slice(&(MAGIC | u32::from(big_endian)).to_be_bytes());
                fixed[4..8].copy_from_slice(&VERSION.to_be_bytes());
                fixed[8..].copy_from_slice(&(page_size as u32).to_be_bytes());
                let (m0, m1) = checksum(big_endian, (0, 0), &fixed[..8]);
                let expected = m0
                    .wrapping_add(word(big_endian, &fixed[8..]))
                    .wrapping_add(m1);
                if unchecksum(big_endian, seed, &frame[8..16]).0 != expected {
                    continue;
                }
                let generation = Self {
                    big_endian,
                    page_size,
                    salts: salts(&frame[8..16]),
                    seed,
                };
                if found.replace(generation).is_some() {
                    return None;
                }
            }
        }
        found
    }

    /// The generation of the first two consecutive frames that show they
    /// were written one after the other in one generation, for when the
    /// header and the first frame both fail; how many frames come before the
    /// second of them (`log` is read from the first frame on); and how many
    /// of those may have hidden a newer version of a page (see
    /// [`Walk::hiding`]): those whose salts are not the pair's. Frames with
    /// the pair's salts are older frames of its generation; any other (a
    /// zeroed one among them) may be of a later generation.
    ///
    /// For each byte order and page size, the log is read a frame at a time
    /// for a pair whose salts match and whose second frame's checksum
    /// continues the checksum the first one stored (a 1 in 2^64 chance for
    /// frames that were not), neither naming page 0, which no frame holds
    /// (two zeroed frames would otherwise pass). The first frame of the pair
    /// cannot be checked, since the checksum it continued is lost, so it
    /// counts as skipped; its stored checksum is the generation's seed. A log
    /// with no such pair, or with one for more than one layout, has no
    /// generation that can be told. A log without a pair is read whole for
    /// each of the sixteen layouts: slow for a large log, but only a log
    /// damaged at its start pays it.
    fn of_frame_pair(
        log: &mut (impl Read + Seek),
    ) -> std::io::Result<Option<(Self, usize, usize)>> {
        let mut found = None;
        for big_endian in [false, true] {
            for page_size in (9..=16).map(|shift| 1usize << shift) {
                log.seek(SeekFrom::Start(HEADER as u64))?;
                let mut before = vec![0u8; FRAME_HEADER + page_size];
                let mut frame = before.clone();
                if fill(log, &mut before)? < before.len() {
                    continue;
                }
                let mut frames = 1;
                // The salts of each frame read, in order.
                let mut salts_read = vec![salts(&before[8..16])];
                while fill(log, &mut frame)? == frame.len() {
                    frames += 1;
                    salts_read.push(salts(&frame[8..16]));
                    let stored = |f: &[u8]| (be_word(&f[16..20]), be_word(&f[20..24]));
                    let pair = Self {
                        big_endian,
                        page_size,
                        salts: salts(&before[8..16]),
                        seed: stored(&before),
                    };
                    if before[8..16] == frame[8..16]
                        && be_word(&before[..4]) != 0
                        && be_word(&frame[..4]) != 0
                        && pair.checksum_of(pair.seed, &frame) == stored(&frame)
                    {
                        let skipped = frames - 1;
                        let hiding = (salts_read[..skipped].iter())
                            .filter(|&&s| s != pair.salts)
                            .count();
                        if found.replace((pair, skipped, hiding)).is_some() {
                            return Ok(None);
                        }
                        break;
                    }
                    std::mem::swap(&mut before, &mut frame);
                }
            }
        }
        Ok(found)
    }

    /// A frame's checksum, continuing from the one before it (`previous`).
    fn checksum_of(&self, previous: (u32, u32), frame: &[u8]) -> (u32, u32) {
        let sum = checksum(self.big_endian, previous, &frame[..8]);
        checksum(self.big_endian, sum, &frame[FRAME_HEADER..])
    }
}

/// A page size as a log header gives it, if SQLite allows it.
fn page_size(n: u32) -> Option<usize> {
    let n = n as usize;
    (n.is_power_of_two() && (512..=MAX_PAGE).contains(&n)).then_some(n)
}

/// The two salts, as the eight bytes a header or frame header stores them in.
fn salts(bytes: &[u8]) -> [u8; 8] {
    bytes.try_into().expect("eight bytes of salts")
}

/// What a walk of one generation's frames found.
#[derive(Debug, Default)]
struct Walk {
    /// Whole frames read, up to the end of the generation, counting those skipped.
    frames: usize,
    /// The first frame (1-based) whose checksum or salts fail.
    bad_frame: Option<usize>,
    /// Commits after the bad frame that the log shows finished: intact, and
    /// followed by an intact frame that continues their checksum or by a
    /// later intact commit of the generation (either was written after the
    /// commit was synced). A commit frame that fails its checksum is no
    /// proof of a finished transaction: the commit may be torn, or the
    /// damage may have made the field.
    finished_after_bad: usize,
    /// Each page's newest version in a transaction the log shows finished
    /// and intact: the frame holding it, by page number.
    newest: HashMap<u32, usize>,
    /// The database's size in pages after the newest of those transactions.
    database_pages: u32,
    /// Versions in intact frames of transactions that may have finished
    /// though the log cannot show it, any of which may be the newest of its
    /// page: the newest such frame, by page number.
    maybe_newer: HashMap<u32, usize>,
    /// Bad frames that a commit follows (or that carry one): each may have
    /// held the newest version of some page.
    hiding: usize,
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

/// How `log` loses committed work, if it does, or else how it is to be
/// opened; `database` is the file it belongs to, read only when the log's
/// header fails.
fn find_loss(
    mut log: impl Read + Seek,
    database: impl Read + Seek,
) -> std::io::Result<std::result::Result<Passed, Loss>> {
    let mut header = [0u8; HEADER];
    if fill(&mut log, &mut header)? < HEADER {
        return Ok(Ok(Passed::Read));
    }
    if let Some(generation) = Generation::of_header(&header) {
        let walk = walk(&mut log, &generation, 0, 0)?;
        return Ok(match walk.bad_frame {
            Some(bad_frame) if walk.finished_after_bad > 0 => Err(Loss::Frames {
                bad_frame,
                frames: walk.frames,
            }),
            _ => Ok(Passed::Read),
        });
    }
    let mut start = vec![0u8; FRAME_HEADER + MAX_PAGE];
    let read = fill(&mut log, &mut start)?;
    // Where the first frame fails too (block-level damage to the log's first
    // bytes takes both), the generation is found from later frames.
    let (generation, skipped, hiding) = match Generation::of_first_frame(&start[..read]) {
        Some(generation) => (generation, 0, 0),
        None => match Generation::of_frame_pair(&mut log)? {
            Some(found) => found,
            None => return Ok(Ok(Passed::HeaderIgnored)),
        },
    };
    log.seek(SeekFrom::Start(frame_offset(
        skipped + 1,
        generation.page_size,
    )))?;
    let walk = walk(&mut log, &generation, skipped, hiding)?;
    let pages = pages_not_in(&mut log, database, &generation, &walk)?;
    // Each bad frame may have held a newer version of one of them, which a
    // checkpoint copied into the file before the damage: only more pages
    // than that prove the file lacks what the log holds.
    Ok(if pages > walk.hiding {
        Err(Loss::Header { pages })
    } else {
        Ok(Passed::HeaderIgnored)
    })
}

/// Where frame `frame` (1-based) of a log of `page_size`-byte pages begins.
fn frame_offset(frame: usize, page_size: usize) -> u64 {
    (HEADER + (frame - 1) * (FRAME_HEADER + page_size)) as u64
}

/// Walks the frames of `generation` from the one after the first `skipped`
/// (`log` is at its start) to the end of the generation. Skipped frames
/// could not be checked; `hiding` of them count in [`Walk::hiding`], those
/// that may be of a later generation than the frames walked and so may have
/// held a newer version of a page they hold, which a checkpoint copied into
/// the file.
///
/// Until the first bad frame each frame must continue the checksum of the
/// one before; after it, a frame is intact if its checksum continues the
/// one the frame before it stored. A transaction counts in [`Walk::newest`]
/// when its commit frame is intact: at once before the first bad frame,
/// and after it once the log shows it had finished (with
/// `synchronous = FULL` the next transaction writes only after it was
/// synced): the frame after its commit is intact (its checksum continues
/// the commit's, so it was written after it), or a later commit follows.
/// One that may have finished without the log showing it (the last after
/// the bad frame with nothing intact after it, or one whose commit frame
/// is bad) goes to [`Walk::maybe_newer`].
fn walk(
    log: &mut impl Read,
    generation: &Generation,
    skipped: usize,
    hiding: usize,
) -> std::io::Result<Walk> {
    let mut walk = Walk {
        frames: skipped,
        hiding,
        ..Walk::default()
    };
    let mut frame = vec![0u8; FRAME_HEADER + generation.page_size];
    // The checksum the next frame continues: the header's, then each frame's as stored.
    let mut previous = generation.seed;
    // Intact frames of the transaction being read, as (page, frame).
    let mut transaction = Vec::new();
    // After the first bad frame: the last finished transaction, until a later commit confirms it.
    let mut unconfirmed: Option<(Vec<(u32, usize)>, u32)> = None;
    // Bad frames since the last commit.
    let mut bad_since_commit = 0;
    // Whether the frame before is the commit in `unconfirmed`.
    let mut commit_before = false;
    // Only whole frames count: a torn last one is no frame at all.
    while fill(log, &mut frame)? == frame.len() {
        walk.frames += 1;
        let follows_commit = std::mem::take(&mut commit_before);
        let word = |at: usize| be_word(&frame[at..at + 4]);
        let stored = (word(16), word(20));
        let same_generation = frame[8..16] == generation.salts;
        let chains = generation.checksum_of(previous, &frame) == stored;
        previous = stored;
        if walk.bad_frame.is_none() && !(same_generation && chains) {
            if !same_generation && !chains {
                // A frame of an earlier generation: the log ends here.
                break;
            }
            // Either its checksum fails, or its salts do while its checksum
            // chains on from this generation's frames: a frame written in
            // this generation whose salt was damaged, which SQLite takes for
            // the end of the log all the same.
            walk.bad_frame = Some(walk.frames);
        }
        let intact = same_generation && chains;
        if intact {
            // It continues the frame before it: if that was a commit, its
            // transaction had finished. (Only the very next frame: later ones
            // may be left from a transaction rolled back before it.)
            if follows_commit && let Some((confirmed, pages_then)) = unconfirmed.take() {
                walk.finished_after_bad += 1;
                record(&mut walk, confirmed, pages_then);
            }
            transaction.push((word(0), walk.frames));
        } else {
            bad_since_commit += 1;
        }
        // A commit frame gives the database's size in pages after it; others 0.
        let size = word(4);
        if !same_generation || size == 0 {
            continue;
        }
        walk.hiding += std::mem::take(&mut bad_since_commit);
        let finished = std::mem::take(&mut transaction);
        if walk.bad_frame.is_none() {
            record(&mut walk, finished, size);
            continue;
        }
        if let Some((confirmed, pages_then)) = unconfirmed.take() {
            if intact {
                walk.finished_after_bad += 1;
            }
            record(&mut walk, confirmed, pages_then);
        }
        if intact {
            unconfirmed = Some((finished, size));
            commit_before = true;
        } else {
            walk.maybe_newer.extend(finished);
        }
    }
    if let Some((never_confirmed, _)) = unconfirmed {
        walk.maybe_newer.extend(never_confirmed);
    }
    Ok(walk)
}

/// Counts a finished transaction's versions, newest last, and the
/// database's size after it.
fn record(walk: &mut Walk, transaction: Vec<(u32, usize)>, database_pages: u32) {
    walk.newest.extend(transaction);
    walk.database_pages = database_pages;
}

/// How many of the walk's newest page versions `database` does not hold
/// byte for byte (within the size its last commit gave the file), leaving
/// out any page a version in [`Walk::maybe_newer`] may have superseded.
fn pages_not_in(
    log: &mut (impl Read + Seek),
    mut database: impl Read + Seek,
    generation: &Generation,
    walk: &Walk,
) -> std::io::Result<usize> {
    let page_size = generation.page_size;
    let superseded =
        |page: u32, frame: usize| (walk.maybe_newer.get(&page)).is_some_and(|&later| later > frame);
    let mut versions: Vec<(usize, u32)> = (walk.newest.iter())
        .filter(|&(&page, &frame)| {
            (1..=walk.database_pages).contains(&page) && !superseded(page, frame)
        })
        .map(|(&page, &frame)| (frame, page))
        .collect();
    // In log order, so the log is read forwards.
    versions.sort_unstable();
    let (mut in_log, mut in_file) = (vec![0u8; page_size], vec![0u8; page_size]);
    let mut missing = 0;
    for (frame, page) in versions {
        log.seek(SeekFrom::Start(
            frame_offset(frame, page_size) + FRAME_HEADER as u64,
        ))?;
        log.read_exact(&mut in_log)?;
        database.seek(SeekFrom::Start(u64::from(page - 1) * page_size as u64))?;
        let whole = fill(&mut database, &mut in_file)? == page_size;
        let from = if page == 1 { UNREAD_PREFIX } else { 0 };
        if !whole || in_log[from..] != in_file[from..] {
            missing += 1;
        }
    }
    Ok(missing)
}

/// The 32-bit word of `b`'s four bytes, big-endian (how the log stores its fields).
fn be_word(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The 32-bit word of `b`'s four bytes as the checksum reads them.
fn word(big_endian: bool, b: &[u8]) -> u32 {
    let b = [b[0], b[1], b[2], b[3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// SQLite's log checksum of `bytes` (a multiple of 8 long), continuing from `seed`.
fn checksum(big_endian: bool, seed: (u32, u32), bytes: &[u8]) -> (u32, u32) {
    let (mut s0, mut s1) = seed;
    for pair in bytes.chunks_exact(8) {
        s0 = s0
            .wrapping_add(word(big_endian, &pair[..4]))
            .wrapping_add(s1);
        s1 = s1
            .wrapping_add(word(big_endian, &pair[4..]))
            .wrapping_add(s0);
    }
    (s0, s1)
}

/// The checksum that [`checksum`] continued from to reach `end` over
/// `bytes`: each step undone, from the last pair back.
fn unchecksum(big_endian: bool, end: (u32, u32), bytes: &[u8]) -> (u32, u32) {
    let (mut s0, mut s1) = end;
    for pair in bytes.chunks_exact(8).rev() {
        s1 = s1
            .wrapping_sub(word(big_endian, &pair[4..]))
            .wrapping_sub(s0);
        s0 = s0
            .wrapping_sub(word(big_endian, &pair[..4]))
            .wrapping_sub(s1);
    }
    (s0, s1)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    const PAGE: usize = 512;

    /// A log of `transactions` (the pages each writes, a frame each, the
    /// last frame its commit), little- or big-endian, of pages of
    /// `page_size` bytes, begun at checkpoint `sequence`. Each frame's page
    /// is a version of its own.
    fn log_of(
        big_endian: bool,
        page_size: usize,
        sequence: u32,
        transactions: &[&[u32]],
    ) -> Vec<u8> {
        let magic = MAGIC | u32::from(big_endian);
        let mut out = Vec::new();
        for w in [
            magic,
            VERSION,
            page_size as u32,
            sequence,
            0xdead_beef,
            0x1234_5678,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        let mut sum = checksum(big_endian, (0, 0), &out);
        out.extend_from_slice(&sum.0.to_be_bytes());
        out.extend_from_slice(&sum.1.to_be_bytes());
        let (mut frame_no, mut database_pages) = (0u32, 0u32);
        for pages in transactions {
            for (f, &page_no) in pages.iter().enumerate() {
                frame_no += 1;
                database_pages = database_pages.max(page_no);
                let commit = if f + 1 == pages.len() {
                    database_pages
                } else {
                    0
                };
                let mut head = Vec::new();
                head.extend_from_slice(&page_no.to_be_bytes());
                head.extend_from_slice(&commit.to_be_bytes());
                let page: Vec<u8> = (0..page_size)
                    .map(|i| (i as u32 * 7 + frame_no * 31 + page_no) as u8)
                    .collect();
                sum = checksum(big_endian, sum, &head);
                sum = checksum(big_endian, sum, &page);
                out.extend_from_slice(&head);
                out.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
                out.extend_from_slice(&0x1234_5678_u32.to_be_bytes());
                out.extend_from_slice(&sum.0.to_be_bytes());
                out.extend_from_slice(&sum.1.to_be_bytes());
                out.extend_from_slice(&page);
            }
        }
        out
    }

    /// A log of `commits` (frames per transaction), each frame a page of its
    /// own, with 512-byte pages.
    fn log(big_endian: bool, commits: &[usize]) -> Vec<u8> {
        let mut next = 1;
        let transactions: Vec<Vec<u32>> = (commits.iter())
            .map(|&frames| {
                next += frames as u32;
                (next - frames as u32..next).collect()
            })
            .collect();
        let transactions: Vec<&[u32]> = transactions.iter().map(Vec::as_slice).collect();
        log_of(big_endian, PAGE, 3, &transactions)
    }

    /// Where frame `frame` (1-based) of a log of 512-byte pages begins.
    fn frame_at(frame: usize) -> usize {
        HEADER + (frame - 1) * (FRAME_HEADER + PAGE)
    }

    /// Damages a byte of frame `frame`'s page, so its checksum fails.
    fn damage(log: &mut [u8], frame: usize) {
        log[frame_at(frame) + FRAME_HEADER + 100] ^= 0xff;
    }

    /// The database file a checkpoint of `log`'s first `through` frames
    /// leaves (an empty file for none).
    fn database(log: &[u8], through: usize) -> Vec<u8> {
        let mut file = Vec::new();
        for frame in 1..=through {
            let at = frame_at(frame);
            let page = be_word(&log[at..at + 4]) as usize;
            let start = (page - 1) * PAGE;
            if file.len() < start + PAGE {
                file.resize(start + PAGE, 0);
            }
            file[start..start + PAGE]
                .copy_from_slice(&log[at + FRAME_HEADER..at + FRAME_HEADER + PAGE]);
        }
        file
    }

    fn loss(log: &[u8], database: &[u8]) -> Option<Loss> {
        find_loss(Cursor::new(log), Cursor::new(database))
            .unwrap()
            .err()
    }

    /// The header SQLite writes over `log`'s when it restarts the log: the
    /// same magic number, version and page size, the next checkpoint
    /// sequence, salt-1 one more, a new salt-2, and their checksum.
    fn restart_header(log: &[u8]) -> Vec<u8> {
        let mut header = log[..HEADER].to_vec();
        let big_endian = header[3] & 1 == 1;
        let sequence = be_word(&header[12..16]) + 1;
        let salt_1 = be_word(&header[16..20]) + 1;
        header[12..16].copy_from_slice(&sequence.to_be_bytes());
        header[16..20].copy_from_slice(&salt_1.to_be_bytes());
        header[20..24].copy_from_slice(&0x5eed_f00d_u32.to_be_bytes());
        let sum = checksum(big_endian, (0, 0), &header[..24]);
        header[24..28].copy_from_slice(&sum.0.to_be_bytes());
        header[28..32].copy_from_slice(&sum.1.to_be_bytes());
        header
    }

    #[test]
    fn an_intact_log_passes_either_byte_order() {
        assert_eq!(loss(&log(false, &[2, 1, 3]), &[]), None);
        assert_eq!(loss(&log(true, &[2, 1, 3]), &[]), None);
    }

    #[test]
    fn damage_followed_by_later_commits_is_found() {
        let mut bytes = log(false, &[2, 1, 3, 1]);
        damage(&mut bytes, 2);
        assert_eq!(
            loss(&bytes, &[]),
            Some(Loss::Frames {
                bad_frame: 2,
                frames: 7
            })
        );
    }

    #[test]
    fn a_commit_the_next_transaction_continues_after_damage_is_found() {
        // Saves [1], [2], [3], then [4, 5, 6] cut after frames 4 and 5, with
        // frame 2 damaged: frame 4 continues save 3's commit, so save 3 had
        // finished, and SQLite would drop it.
        let mut bytes = log_of(false, PAGE, 3, &[&[1], &[2], &[3], &[4, 5, 6]]);
        bytes.truncate(frame_at(6));
        damage(&mut bytes, 2);
        assert_eq!(
            loss(&bytes, &[]),
            Some(Loss::Frames {
                bad_frame: 2,
                frames: 5
            })
        );
        // With nothing after save 3's commit, it may be the torn one.
        bytes.truncate(frame_at(4));
        assert_eq!(loss(&bytes, &[]), None);
    }

    #[test]
    fn frames_left_from_a_rolled_back_transaction_prove_no_commit_finished() {
        // A transaction spilled frames 3 to 5 and rolled back; save 3 then
        // wrote its commit over frame 3 and may be torn. Frame 5 continues
        // frame 4, which does not continue save 3's commit.
        let rolled_back = log_of(false, PAGE, 3, &[&[1], &[2], &[7, 4, 5, 6]]);
        let mut bytes = log_of(false, PAGE, 3, &[&[1], &[2], &[3]]);
        bytes.extend_from_slice(&rolled_back[frame_at(4)..frame_at(6)]);
        damage(&mut bytes, 2);
        assert_eq!(loss(&bytes, &[]), None);
    }

    #[test]
    fn a_torn_last_transaction_is_what_a_power_cut_leaves_and_passes() {
        let mut bytes = log(true, &[2, 1, 3]);
        damage(&mut bytes, 5);
        assert_eq!(loss(&bytes, &[]), None);
        let mut cut = log(false, &[2, 1, 3]);
        cut.truncate(cut.len() - 100);
        assert_eq!(loss(&cut, &[]), None);
    }

    #[test]
    fn a_damaged_salt_followed_by_later_commits_is_found() {
        let mut bytes = log(false, &[1, 1, 1, 1, 1]);
        // The first salt byte of frame 3's header.
        bytes[frame_at(3) + 8] ^= 1;
        assert_eq!(
            loss(&bytes, &[]),
            Some(Loss::Frames {
                bad_frame: 3,
                frames: 5
            })
        );
        // In the last commit, it only ends the log as a torn write would.
        let mut bytes = log(false, &[1, 1, 1]);
        bytes[frame_at(3) + 12] ^= 1;
        assert_eq!(loss(&bytes, &[]), None);
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
        assert_eq!(loss(&bytes, &[]), None);
    }

    #[test]
    fn the_header_a_first_frame_was_written_under_is_worked_back_from_it_alone() {
        for big_endian in [false, true] {
            for page_size in [512, 4096, 65_536] {
                let bytes = log_of(big_endian, page_size, 41, &[&[1, 2], &[3]]);
                let header: &[u8; HEADER] = bytes[..HEADER].try_into().unwrap();
                let written_under = Generation::of_header(header).expect("a valid header");
                assert_eq!(
                    Generation::of_first_frame(&bytes[HEADER..]),
                    Some(written_under),
                    "{page_size} bytes, big-endian {big_endian}"
                );
            }
        }
        // A first frame that fails its checksum fits no header.
        let mut bytes = log(false, &[2, 1]);
        damage(&mut bytes, 1);
        assert_eq!(Generation::of_first_frame(&bytes[HEADER..]), None);
    }

    #[test]
    fn a_damaged_header_over_commits_the_file_lacks_is_found() {
        for big_endian in [false, true] {
            let intact = log(big_endian, &[2, 1, 3]);
            for byte in 0..HEADER {
                let mut bytes = intact.clone();
                bytes[byte] ^= 0xff;
                assert_eq!(
                    loss(&bytes, &[]),
                    Some(Loss::Header { pages: 6 }),
                    "byte {byte}, big-endian {big_endian}"
                );
                // A checkpoint cut short copied only the first transaction.
                assert_eq!(
                    loss(&bytes, &database(&bytes, 2)),
                    Some(Loss::Header { pages: 4 }),
                    "byte {byte}, big-endian {big_endian}"
                );
            }
        }
    }

    #[test]
    fn a_damaged_header_over_commits_already_in_the_file_loses_nothing() {
        let intact = log(false, &[2, 1, 3]);
        let file = database(&intact, 6);
        for byte in 0..HEADER {
            let mut bytes = intact.clone();
            bytes[byte] ^= 0xff;
            assert_eq!(loss(&bytes, &file), None, "byte {byte}");
        }
    }

    #[test]
    fn a_restart_cut_short_anywhere_passes() {
        // SQLite restarts a log only once every frame is in the file; a write
        // cut short changes a run of bytes at one end of what it writes.
        for big_endian in [false, true] {
            let old = log(big_endian, &[2, 1, 3]);
            let file = database(&old, 6);
            let new = restart_header(&old);
            for cut in 1..HEADER {
                for from_the_end in [false, true] {
                    let mut bytes = old.clone();
                    if from_the_end {
                        bytes[cut..HEADER].copy_from_slice(&new[cut..]);
                    } else {
                        bytes[..cut].copy_from_slice(&new[..cut]);
                    }
                    assert_eq!(
                        loss(&bytes, &file),
                        None,
                        "cut at {cut}, from the end {from_the_end}, big-endian {big_endian}"
                    );
                }
            }
        }
    }

    #[test]
    fn frames_of_a_torn_last_transaction_are_not_compared() {
        // The last transaction's commit frame is torn: frames 4 and 5 were
        // never committed, and no checkpoint copies them.
        let mut bytes = log(false, &[2, 1, 3]);
        damage(&mut bytes, 6);
        bytes[20] ^= 1;
        assert_eq!(loss(&bytes, &database(&bytes, 3)), None);
        assert_eq!(loss(&bytes, &[]), Some(Loss::Header { pages: 3 }));
        // One page the file lacks proves nothing: had that commit frame
        // been damaged after a checkpoint copied it, it might have held a
        // newer version of that page.
        assert_eq!(loss(&bytes, &database(&bytes, 2)), None);
    }

    #[test]
    fn a_damaged_frame_may_hide_one_newer_version_a_checkpoint_copied() {
        // Frame 3 writes page 1 again; every commit was copied into the
        // file, then frame 3 was damaged and the header with it.
        let intact = log_of(false, PAGE, 3, &[&[1], &[2], &[1], &[3]]);
        let mut bytes = intact.clone();
        damage(&mut bytes, 3);
        bytes[20] ^= 1;
        assert_eq!(loss(&bytes, &database(&intact, 4)), None);
        // Pages 1 and 2 both lacking are more than it can explain.
        assert_eq!(loss(&bytes, &[]), Some(Loss::Header { pages: 2 }));
    }

    #[test]
    fn a_restart_cut_short_over_a_log_damaged_since_passes() {
        // Every commit was copied into the file before the restart; frame 2
        // was damaged after. Versions before it may have been superseded in
        // a frame it hid, and the last commit cannot be shown to have been
        // finished, so only frames 3 and 4 are compared.
        let intact = log(false, &[1, 1, 1, 1, 1]);
        let mut bytes = intact.clone();
        damage(&mut bytes, 2);
        // The restart's header cut short before its checksum.
        bytes[..24].copy_from_slice(&restart_header(&intact)[..24]);
        assert_eq!(loss(&bytes, &database(&intact, 5)), None);
        // The same header over a log none of which was copied loses frames
        // 3 and 4: it is damage, not a restart.
        assert_eq!(
            loss(&bytes, &database(&intact, 1)),
            Some(Loss::Header { pages: 2 })
        );
    }

    #[test]
    fn the_files_unread_first_bytes_are_not_compared() {
        let mut bytes = log(false, &[1, 1]);
        bytes[20] ^= 1;
        let mut file = database(&bytes, 2);
        for b in &mut file[..UNREAD_PREFIX] {
            *b ^= 0xff;
        }
        assert_eq!(loss(&bytes, &file), None);
        file[UNREAD_PREFIX] ^= 0xff;
        assert_eq!(loss(&bytes, &file), Some(Loss::Header { pages: 1 }));
    }

    #[test]
    fn a_header_sqlite_ignores_is_reported_for_the_open_to_restart_the_log() {
        let intact = log(false, &[2, 1]);
        let passed = |bytes: &[u8]| {
            find_loss(Cursor::new(bytes), Cursor::new(database(&intact, 3))).unwrap()
        };
        assert_eq!(passed(&intact), Ok(Passed::Read));
        let mut bytes = intact.clone();
        bytes[20] ^= 1;
        assert_eq!(passed(&bytes), Ok(Passed::HeaderIgnored));
        // Nothing in the log can be read: still ignored by SQLite.
        damage(&mut bytes, 1);
        damage(&mut bytes, 2);
        damage(&mut bytes, 3);
        assert_eq!(passed(&bytes), Ok(Passed::HeaderIgnored));
    }

    #[test]
    fn a_header_and_first_frame_gone_together_are_worked_past_from_later_frames() {
        for big_endian in [false, true] {
            let intact = log(big_endian, &[1, 1, 1, 1, 1, 1]);
            let mut bytes = intact.clone();
            // Block-level damage over the header and most of frame 1.
            bytes[..frame_at(2) - 100].fill(0);
            // Frames 1 and 2 cannot be checked; frames 3 to 6 hold pages the
            // file lacks, more than the two could explain.
            assert_eq!(
                loss(&bytes, &[]),
                Some(Loss::Header { pages: 4 }),
                "big-endian {big_endian}"
            );
            assert_eq!(
                loss(&bytes, &database(&intact, 6)),
                None,
                "big-endian {big_endian}"
            );
        }
        // Zeroed frames look like a pair that chains; they name page 0, which
        // no frame holds, and are passed over.
        let mut bytes = log(false, &[1, 1, 1, 1]);
        bytes[..frame_at(3)].fill(0);
        assert_eq!(
            Generation::of_frame_pair(&mut Cursor::new(&bytes))
                .unwrap()
                .map(|(_, skipped, hiding)| (skipped, hiding)),
            Some((3, 2))
        );
    }

    #[test]
    fn frames_before_a_pair_that_carry_its_salts_hide_nothing() {
        let intact = log(false, &[1, 1, 1, 1, 1, 1]);
        let mut bytes = intact.clone();
        // The header and most of frame 1 are gone, and frame 2's stored
        // checksum is damaged, so frames 3 and 4 are the first pair. Frames
        // 2 and 3 carry its salts: older frames of its generation, which
        // cannot have held a newer version of pages 4 to 6. Only frame 1
        // might have.
        bytes[..frame_at(2) - 100].fill(0);
        bytes[frame_at(2) + 16] ^= 0xff;
        assert_eq!(loss(&bytes, &[]), Some(Loss::Header { pages: 3 }));
        assert_eq!(
            loss(&bytes, &database(&intact, 4)),
            Some(Loss::Header { pages: 2 })
        );
        assert_eq!(loss(&bytes, &database(&intact, 5)), None);
    }

    #[test]
    fn commits_that_fail_their_checksum_prove_no_finished_transaction() {
        // Two commit frames after the first bad one, both failing: neither
        // shows a transaction that had finished.
        let mut bytes = log(false, &[1, 1, 1, 1]);
        damage(&mut bytes, 3);
        damage(&mut bytes, 4);
        assert_eq!(loss(&bytes, &[]), None);
    }
}
