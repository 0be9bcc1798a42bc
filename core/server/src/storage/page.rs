//! Where a pull page ends, shared by both backends: at the caller's count, or
//! before the change that would take the page's record bodies past its byte
//! budget, whichever comes first.
//!
//! A backend first reads only the sizes of the changes after the cursor (at
//! most one more than the count), calls [`page_end`], then reads the bodies of
//! the changes it chose. Reading sizes first means a change left for the next
//! page is never loaded, however large it is.

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
