//! A bounded map of the most recently added entries, for work that is worth doing once: the
//! answer cache and the follow-up rewrites.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The most recent `capacity` entries by key; 0 keeps none. The oldest entry is dropped first.
pub struct Recent<V> {
    capacity: usize,
    entries: Mutex<(HashMap<String, V>, VecDeque<String>)>,
}

impl<V: Clone> Recent<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.0.get(key).cloned()
    }

    pub fn put(&self, key: String, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *entries;
        if map.insert(key.clone(), value).is_none() {
            order.push_back(key);
        }
        while map.len() > self.capacity {
            match order.pop_front() {
                Some(oldest) => {
                    map.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_entries() {
        let recent = Recent::new(2);
        recent.put("a".into(), 1);
        recent.put("b".into(), 2);
        recent.put("a".into(), 3);
        assert_eq!(recent.get("a"), Some(3), "replaced in place");
        recent.put("c".into(), 4);
        assert_eq!(recent.get("a"), None, "the oldest went first");
        assert_eq!((recent.get("b"), recent.get("c")), (Some(2), Some(4)));
        let none = Recent::new(0);
        none.put("a".into(), 1);
        assert_eq!(none.get("a"), None);
    }
}
