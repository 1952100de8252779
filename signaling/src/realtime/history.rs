//! [`ChatHistory`]: the last [`HISTORY`] chat lines of a room, sent to a
//! client when it joins, and the room's chat id counter.
//!
//! Invariants: ids are assigned here, strictly increasing from 1, so every
//! client sees the same id for the same line; the ring holds at most
//! [`HISTORY`] lines in id order; a deleted line leaves the ring.

use std::collections::VecDeque;

pub const HISTORY: usize = 100;

#[derive(Debug)]
pub struct ChatHistory<T> {
    lines: VecDeque<(u64, T)>,
    next_id: u64,
}

impl<T> Default for ChatHistory<T> {
    fn default() -> Self {
        ChatHistory {
            lines: VecDeque::with_capacity(HISTORY),
            next_id: 1,
        }
    }
}

impl<T: Clone> ChatHistory<T> {
    /// The id the next line will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Appends a line built from its new id; returns the id.
    pub fn push(&mut self, make: impl FnOnce(u64) -> T) -> (u64, &T) {
        let id = self.next_id;
        self.next_id += 1;
        if self.lines.len() == HISTORY {
            self.lines.pop_front();
        }
        self.lines.push_back((id, make(id)));
        let last = self.lines.back().expect("a line was just pushed");
        (id, &last.1)
    }

    /// Removes a line; false if it is unknown or no longer in the ring.
    pub fn delete(&mut self, id: u64) -> bool {
        match self.lines.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(index) => {
                self.lines.remove(index);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `id` was ever assigned (deleting an old line is not an error).
    pub fn was_assigned(&self, id: u64) -> bool {
        id >= 1 && id < self.next_id
    }

    /// The lines in order, oldest first.
    pub fn lines(&self) -> Vec<T> {
        self.lines.iter().map(|(_, line)| line.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_hundred_in_order() {
        let mut history = ChatHistory::default();
        for n in 0..250 {
            let (id, line) = history.push(|id| format!("{id}:{n}"));
            assert_eq!(id, n + 1);
            assert_eq!(line, &format!("{id}:{n}"));
        }
        let lines = history.lines();
        assert_eq!(lines.len(), HISTORY);
        assert_eq!(lines.first().unwrap(), "151:150");
        assert_eq!(lines.last().unwrap(), "250:249");
    }

    #[test]
    fn delete_removes_only_that_line() {
        let mut history = ChatHistory::default();
        for n in 0..5 {
            history.push(|_| n);
        }
        // (id, deleted?)
        for (id, expected) in [(3, true), (3, false), (0, false), (9, false), (1, true)] {
            assert_eq!(history.delete(id), expected, "delete {id}");
        }
        assert_eq!(history.lines(), vec![1, 3, 4]);
        assert!(history.was_assigned(3));
        assert!(!history.was_assigned(6));
        assert!(!history.was_assigned(0));
        assert_eq!(history.next_id(), 6);
    }
}
