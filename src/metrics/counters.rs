//! The names of the counters `[[on_message]]` rules add to. A fixed name has its number from
//! the plan; a name made from a message (`error_{{/error/code}}`) gets one the first time it is
//! counted. A hostile server could make a new name with every message, so there are at most
//! `MAX_COUNTERS`; later names are counted under `OTHER`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// The most distinct counter names in a run.
pub const MAX_COUNTERS: usize = 1000;

/// Where names beyond `MAX_COUNTERS` are counted.
pub const OTHER: &str = "other_counters";

#[derive(Debug)]
pub struct Counters {
    inner: Mutex<Inner>,
    /// Whether each counter has its example: read without the lock, so that a server flooding
    /// malformed messages does not make every client wait on it.
    has_example: Box<[AtomicBool]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            inner: Mutex::default(),
            has_example: (0..MAX_COUNTERS).map(|_| AtomicBool::new(false)).collect(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
    /// The first message counted by a rule with `example = true`, by counter number.
    examples: HashMap<u32, Box<str>>,
}

/// An example's length at most, in characters.
const EXAMPLE_CHARS: usize = 200;

impl Counters {
    /// A registry whose first names are `fixed`, numbered in order.
    pub fn new(fixed: &[String]) -> Self {
        let counters = Counters::default();
        for name in fixed {
            counters.id(name);
        }
        counters
    }

    /// The number of counter `name`, given one if it has none yet.
    pub fn id(&self, name: &str) -> u32 {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = inner.ids.get(name) {
            return *id;
        }
        let name = if inner.names.len() + 1 >= MAX_COUNTERS {
            match inner.ids.get(OTHER) {
                Some(id) => return *id,
                None => OTHER,
            }
        } else {
            name
        };
        let id = inner.names.len() as u32;
        inner.names.push(name.into());
        inner.ids.insert(name.into(), id);
        id
    }

    /// The number of counter `name`, if it was ever counted (or is fixed).
    pub fn find(&self, name: &str) -> Option<u32> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.ids.get(name).copied()
    }

    /// Keeps `text` as counter `id`'s example unless it has one: secrets masked, cut to
    /// 200 characters (so the examples of a run are bounded as its names are).
    pub fn keep_example(&self, id: u32, text: &str) {
        let Some(flag) = self.has_example.get(id as usize) else {
            return;
        };
        if flag.load(Relaxed) {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if flag.swap(true, Relaxed) {
            return;
        }
        let example = crate::redact::excerpt(text, EXAMPLE_CHARS);
        inner.examples.insert(id, example.into());
    }

    /// The examples kept, by counter name.
    pub fn examples(&self) -> Vec<(Box<str>, Box<str>)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .examples
            .iter()
            .filter_map(|(id, text)| Some((inner.names.get(*id as usize)?.clone(), text.clone())))
            .collect()
    }

    /// Every name, by number.
    pub fn names(&self) -> Vec<Box<str>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).names.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_once_and_bounded() {
        let c = Counters::new(&["pongs".to_string()]);
        assert_eq!(c.id("pongs"), 0);
        assert_eq!(c.id("error_429"), 1);
        assert_eq!(c.id("error_429"), 1);
        c.keep_example(1, "first");
        c.keep_example(1, "second");
        c.keep_example(0, &"x".repeat(500));
        let mut examples = c.examples();
        examples.sort();
        assert_eq!(examples[0].0.as_ref(), "error_429");
        assert_eq!(examples[0].1.as_ref(), "first");
        assert_eq!(examples[1].1.chars().count(), 201, "cut, with an ellipsis");
        for i in 0..5000 {
            c.id(&format!("flood_{i}"));
        }
        let names = c.names();
        assert_eq!(names.len(), MAX_COUNTERS);
        assert_eq!(c.id("yet_another"), c.find(OTHER).unwrap());
        assert_eq!(c.find("flood_0"), Some(2));
    }
}
