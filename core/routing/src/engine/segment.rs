//! Time-window segments: the summary of a run of consecutive stops that lets the search price a
//! changed route in constant time.
//!
//! A segment remembers its duration (service, travel and waiting), the time warp it forces (how
//! far a vehicle would have to travel back in time to meet every window), the earliest and
//! latest moments at which it can start without adding waiting or warp, its travel and its load.
//! Concatenating two segments gives the segment of the joined run, so a route with a stop moved,
//! swapped or cut is priced from a handful of stored prefixes and suffixes (Vidal et al. 2013).
//!
//! A stop may have no location (a clinician's break is taken wherever they are): such a segment
//! passes the locations of its neighbours through, so travel is charged between the real stops
//! on either side.

/// A stop without a location of its own, such as a break.
pub(crate) const NO_LOC: u32 = u32::MAX;

/// A square travel-time matrix in the engine's integer time unit; travel time is also the cost
/// of travel, so one matrix serves both.
#[derive(Clone, Debug)]
pub(crate) struct Matrix {
    size: usize,
    /// Row-major, one row and one column longer than `size`: the last of each, all zeros, is
    /// where [`NO_LOC`] reads, so travel to or from a break needs no branch in the hottest
    /// lookups.
    data: Vec<i64>,
    /// The same entries column by column, so that travel from many places into one is read
    /// from one short run of memory.
    into: Vec<i64>,
    longest: i64,
}

impl Matrix {
    /// Wraps row-major data of `size * size` entries.
    pub(crate) fn new(size: usize, data: Vec<i64>) -> Self {
        assert_eq!(data.len(), size * size, "matrix data must be square");
        let longest = data.iter().copied().max().unwrap_or(0);
        let stride = size + 1;
        let padded = |at: &dyn Fn(usize, usize) -> i64| -> Vec<i64> {
            (0..stride * stride)
                .map(|k| {
                    let (row, col) = (k / stride, k % stride);
                    if row == size || col == size {
                        0
                    } else {
                        at(row, col)
                    }
                })
                .collect()
        };
        Self {
            size,
            into: padded(&|row, col| data[col * size + row]),
            data: padded(&|row, col| data[row * size + col]),
            longest,
        }
    }

    /// Where location `a` reads in the padded tables: [`NO_LOC`] the zero row and column.
    #[inline]
    fn index(&self, a: u32) -> usize {
        (a as usize).min(self.size)
    }

    /// Travel from location `a` to location `b`, as [`Matrix::at`], read from the copy kept
    /// by destination: fast when `b` stays the same over many calls.
    #[inline]
    pub(crate) fn at_into(&self, a: u32, b: u32) -> i64 {
        self.into[self.index(b) * (self.size + 1) + self.index(a)]
    }

    /// The longest entry: no detour through a stop can save more travel than this, even
    /// where a supplied matrix breaks the triangle inequality.
    pub(crate) fn longest(&self) -> i64 {
        self.longest
    }

    /// Travel from location `a` to location `b`; none from or to [`NO_LOC`].
    #[inline]
    pub(crate) fn at(&self, a: u32, b: u32) -> i64 {
        self.data[self.index(a) * (self.size + 1) + self.index(b)]
    }
}

/// The summary of a run of consecutive stops (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seg {
    /// Number of stops; 0 is the empty segment, the identity of concatenation.
    pub n: u32,
    /// First location in the run, or [`NO_LOC`] when no stop has one.
    pub first: u32,
    /// Last location in the run, or [`NO_LOC`].
    pub last: u32,
    /// Service, travel and waiting, from the start of the first stop to the end of the last.
    pub dur: i64,
    /// Time warp: total lateness the run cannot avoid.
    pub tw: i64,
    /// Earliest start that adds no waiting.
    pub early: i64,
    /// Latest start that adds no time warp.
    pub late: i64,
    /// Travel inside the run.
    pub dist: i64,
    /// Load picked up in the run.
    pub load: i64,
}

impl Seg {
    /// The empty run.
    pub(crate) const EMPTY: Seg = Seg {
        n: 0,
        first: NO_LOC,
        last: NO_LOC,
        dur: 0,
        tw: 0,
        early: i64::MIN / 4,
        late: i64::MAX / 4,
        dist: 0,
        load: 0,
    };

    /// One stop at `loc` whose service of `service` must start within `[early, late]`.
    pub(crate) fn stop(loc: u32, service: i64, early: i64, late: i64, load: i64) -> Seg {
        Seg {
            n: 1,
            first: loc,
            last: loc,
            dur: service,
            tw: 0,
            early,
            late,
            dist: 0,
            load,
        }
    }

    /// The run of `self` followed by `b`.
    #[inline]
    pub(crate) fn then(&self, b: &Seg, m: &Matrix) -> Seg {
        if self.n == 0 {
            return *b;
        }
        if b.n == 0 {
            return *self;
        }
        let travel = m.at(self.last, b.first);
        let delta = self.dur - self.tw + travel;
        let wait = (b.early - delta - self.late).max(0);
        let warp = (self.early + delta - b.late).max(0);
        Seg {
            n: self.n + b.n,
            first: if self.first != NO_LOC {
                self.first
            } else {
                b.first
            },
            last: if b.last != NO_LOC { b.last } else { self.last },
            dur: self.dur + b.dur + travel + wait,
            tw: self.tw + b.tw + warp,
            early: (b.early - delta).max(self.early) - wait,
            late: (b.late - delta).min(self.late) + warp,
            dist: self.dist + b.dist + travel,
            load: self.load + b.load,
        }
    }

    /// When the run ends if started as early as it can (time warp taken off).
    pub(crate) fn finish(&self) -> i64 {
        self.early + self.dur - self.tw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Matrix {
        // Three locations on a line at 0, 10 and 30.
        let pos = [0i64, 10, 30];
        let data = pos
            .iter()
            .flat_map(|a| pos.iter().map(move |b| (a - b).abs()))
            .collect();
        Matrix::new(3, data)
    }

    #[test]
    fn travel_from_or_to_nowhere_is_nothing_and_both_tables_agree() {
        let m = Matrix::new(2, vec![0, 7, 9, 0]);
        assert_eq!((m.at(0, 1), m.at(1, 0)), (7, 9));
        assert_eq!((m.at_into(0, 1), m.at_into(1, 0)), (7, 9));
        for a in [0, 1, NO_LOC] {
            assert_eq!(m.at(a, NO_LOC), 0);
            assert_eq!(m.at(NO_LOC, a), 0);
            assert_eq!(m.at_into(a, NO_LOC), 0);
            assert_eq!(m.at_into(NO_LOC, a), 0);
        }
        assert_eq!(m.longest(), 9);
    }

    #[test]
    fn concatenation_waits_for_a_window_that_opens_later() {
        let m = line();
        let a = Seg::stop(0, 5, 0, 100, 1);
        let b = Seg::stop(1, 5, 50, 60, 2);
        let ab = a.then(&b, &m);
        // Start at 0, serve 5, travel 10, arrive 15, wait until 50, serve until 55.
        assert_eq!(ab.tw, 0);
        assert_eq!(ab.dist, 10);
        assert_eq!(ab.load, 3);
        assert_eq!(ab.finish(), 55);
        // Starting later than 35 saves the waiting; ab.early is that start.
        assert_eq!(ab.early, 35);
    }

    #[test]
    fn concatenation_charges_time_warp_for_a_missed_window() {
        let m = line();
        let a = Seg::stop(0, 50, 40, 100, 0);
        let b = Seg::stop(2, 0, 0, 100, 0);
        // Start at 40, serve until 90, travel 30, arrive 120: 20 late.
        assert_eq!(a.then(&b, &m).tw, 20);
    }

    #[test]
    fn concatenation_is_associative_for_located_stops() {
        let m = line();
        let a = Seg::stop(0, 7, 0, 20, 0);
        let b = Seg::stop(1, 3, 30, 40, 0);
        let c = Seg::stop(2, 1, 10, 45, 0);
        assert_eq!(a.then(&b, &m).then(&c, &m), a.then(&b.then(&c, &m), &m));
    }

    /// What `LocalSearch::close` relies on to price a route with a tail already joined to its
    /// end depot: the join order does not matter while the tail begins and ends at a location,
    /// breaks inside it or in the head included.
    #[test]
    fn a_located_tail_may_be_joined_to_the_end_first() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(7);
        let size = 6;
        let data = (0..size * size)
            .map(|k| {
                if k / size == k % size {
                    0
                } else {
                    rng.random_range(1..40)
                }
            })
            .collect();
        let m = Matrix::new(size, data);
        let stop = |rng: &mut SmallRng, located: bool| {
            let early = rng.random_range(0..200);
            let loc = if located {
                rng.random_range(0..size as u32)
            } else {
                NO_LOC
            };
            Seg::stop(
                loc,
                rng.random_range(0..30),
                early,
                early + rng.random_range(0..80),
                1,
            )
        };
        for _ in 0..2000 {
            let mut head = stop(&mut rng, true);
            for _ in 0..rng.random_range(0..4) {
                let located = rng.random_bool(0.7);
                head = head.then(&stop(&mut rng, located), &m);
            }
            let mut tail = stop(&mut rng, true);
            for _ in 0..rng.random_range(0..3) {
                let located = rng.random_bool(0.7);
                tail = tail.then(&stop(&mut rng, located), &m);
            }
            tail = tail.then(&stop(&mut rng, true), &m);
            let end = stop(&mut rng, true);
            assert_eq!(
                head.then(&tail, &m).then(&end, &m),
                head.then(&tail.then(&end, &m), &m)
            );
        }
    }

    #[test]
    fn a_stop_without_location_passes_travel_through() {
        let m = line();
        let a = Seg::stop(0, 0, 0, 100, 0);
        let rest = Seg::stop(NO_LOC, 30, 0, 100, 0);
        let c = Seg::stop(2, 0, 0, 100, 0);
        let s = a.then(&rest, &m).then(&c, &m);
        assert_eq!(s.dist, 30);
        assert_eq!(s.finish(), 60);
    }
}
