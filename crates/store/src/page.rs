//! Cursor pagination, the same for every list: a page of items ordered by a unique sortable key
//! (an id, or an event type's name), starting after (or, going back, before) a cursor.

/// The direction of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Ascending,
    Descending,
}

/// Where a page starts: strictly after `key` in the list's order, or strictly before it when
/// `backward` (the API's `prevIterator`, written `-<key>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: String,
    pub backward: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub order: Order,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: 50,
            cursor: None,
            order: Order::Ascending,
        }
    }
}

/// A page of items in the requested order. `done` is true when nothing lies beyond it in the
/// direction it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub done: bool,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            done: self.done,
        }
    }
}

/// How to read one page: the comparison with the cursor, the scan direction, and whether the
/// rows come back reversed (going backward reads against the order, then flips).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    pub(crate) ascending: bool,
    pub(crate) reverse: bool,
}

impl PageRequest {
    pub(crate) fn scan(&self) -> Scan {
        let backward = self.cursor.as_ref().is_some_and(|cursor| cursor.backward);
        let ascending = (self.order == Order::Ascending) != backward;
        Scan {
            ascending,
            reverse: backward,
        }
    }

    /// `key > ?` or `key < ?` for the cursor, in the scan's direction.
    pub(crate) fn cursor_comparison(&self) -> Option<(&'static str, &str)> {
        let cursor = self.cursor.as_ref()?;
        Some((
            if self.scan().ascending { ">" } else { "<" },
            cursor.key.as_str(),
        ))
    }

    /// Turns `limit + 1` rows read in scan order into a page.
    pub(crate) fn finish<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let done = rows.len() <= self.limit;
        rows.truncate(self.limit);
        if self.scan().reverse {
            rows.reverse();
        }
        Page { items: rows, done }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(order: Order, cursor: Option<(&str, bool)>) -> PageRequest {
        PageRequest {
            limit: 2,
            cursor: cursor.map(|(key, backward)| Cursor {
                key: key.into(),
                backward,
            }),
            order,
        }
    }

    #[test]
    fn scans_follow_order_and_direction() {
        let forward = request(Order::Ascending, Some(("b", false)));
        assert_eq!(forward.cursor_comparison(), Some((">", "b")));
        let back = request(Order::Ascending, Some(("b", true)));
        assert_eq!(back.cursor_comparison(), Some(("<", "b")));
        assert!(back.scan().reverse);
        let newest_first = request(Order::Descending, Some(("b", false)));
        assert_eq!(newest_first.cursor_comparison(), Some(("<", "b")));
        assert_eq!(request(Order::Descending, None).cursor_comparison(), None);
    }

    #[test]
    fn finish_trims_and_flips() {
        let back = request(Order::Ascending, Some(("z", true)));
        assert_eq!(
            back.finish(vec![3, 2, 1]),
            Page {
                items: vec![2, 3],
                done: false
            }
        );
        let forward = request(Order::Ascending, None);
        assert_eq!(
            forward.finish(vec![1, 2]),
            Page {
                items: vec![1, 2],
                done: true
            }
        );
    }
}
