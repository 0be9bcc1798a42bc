//! Where a page ends, shared by both backends. A pull page ends at the
//! caller's count, or before the change that would take the page's record
//! bodies past its byte budget, whichever comes first; a page of forks ends
//! at the caller's count.
//!
//! For a pull, a backend first reads only the sizes of the changes after the
//! cursor (at most one more than the count), calls [`page_end`], then reads
//! the bodies of the changes it chose. Reading sizes first means a change left
//! for the next page is never loaded, however large it is. For forks, it reads
//! the keys (record ids) after the caller's, at most one more than the count,
//! and [`keyset_page`] keeps the page's and names the key to go on after.

/// The end of one pull page, as decided from the sizes of what follows the
/// cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageEnd {
    /// The sequence number of the page's last change; `None` when nothing
    /// follows the cursor.
    pub last_seq: Option<i64>,
    /// True when changes follow the page's last one.
    pub more: bool,
}

/// Decides a page from `sizes`: the sequence number (as stored) and body
/// length in bytes of each change after the cursor, in order, at least `limit + 1` of them
/// when the network has that many. The page takes changes while their bodies
/// fit in `max_bytes`, at most `limit`, and always the first, so a single
/// change larger than the budget is sent alone rather than never.
pub fn page_end(sizes: &[(i64, u64)], limit: usize, max_bytes: u64) -> PageEnd {
    let mut total: u64 = 0;
    let mut last_seq = None;
    for (taken, &(seq, bytes)) in sizes.iter().enumerate() {
        total = total.saturating_add(bytes);
        if taken == limit || (taken > 0 && total > max_bytes) {
            return PageEnd {
                last_seq,
                more: true,
            };
        }
        last_seq = Some(seq);
    }
    PageEnd {
        last_seq,
        more: false,
    }
}

/// Splits `keys` (those after the caller's, in order, at most `limit + 1` of
/// them) into the page's, at most `limit` (at least 1), and the key the next
/// page starts after: the page's last, when a key beyond the page was read.
pub fn keyset_page<K: Copy>(mut keys: Vec<K>, limit: usize) -> (Vec<K>, Option<K>) {
    if keys.len() <= limit {
        return (keys, None);
    }
    keys.truncate(limit);
    let next = keys.last().copied();
    (keys, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stops_at_its_count() {
        let sizes = [(1, 10), (2, 10), (3, 10)];
        assert_eq!(
            page_end(&sizes, 2, 1_000),
            PageEnd {
                last_seq: Some(2),
                more: true
            }
        );
        assert_eq!(
            page_end(&sizes[..2], 2, 1_000),
            PageEnd {
                last_seq: Some(2),
                more: false
            }
        );
    }

    #[test]
    fn a_page_stops_before_the_change_that_would_pass_the_budget() {
        let sizes = [(4, 400), (7, 600), (9, 1)];
        assert_eq!(
            page_end(&sizes, 500, 1_000),
            PageEnd {
                last_seq: Some(7),
                more: true
            }
        );
        assert_eq!(
            page_end(&sizes, 500, 999),
            PageEnd {
                last_seq: Some(4),
                more: true
            }
        );
    }

    #[test]
    fn a_change_larger_than_the_budget_is_a_page_of_its_own() {
        let sizes = [(1, 5_000), (2, 10)];
        assert_eq!(
            page_end(&sizes, 500, 1_000),
            PageEnd {
                last_seq: Some(1),
                more: true
            }
        );
        assert_eq!(
            page_end(&sizes[..1], 500, 1_000),
            PageEnd {
                last_seq: Some(1),
                more: false
            }
        );
    }

    #[test]
    fn a_keyset_page_names_its_last_key_only_when_more_follow() {
        assert_eq!(keyset_page(vec![1, 2, 3], 2), (vec![1, 2], Some(2)));
        assert_eq!(keyset_page(vec![1, 2], 2), (vec![1, 2], None));
        assert_eq!(keyset_page(vec![1], 2), (vec![1], None));
        assert_eq!(keyset_page(Vec::<u8>::new(), 2), (vec![], None));
    }

    #[test]
    fn nothing_after_the_cursor_is_an_empty_last_page() {
        assert_eq!(
            page_end(&[], 500, 1_000),
            PageEnd {
                last_seq: None,
                more: false
            }
        );
    }
}
