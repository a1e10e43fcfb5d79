//! Where each object was read, in a few bytes per object.
//!
//! A scan of a million objects keeps this for every object until the
//! report is written, so an object is not kept by its [`ObjectRef`] (five
//! strings) but by a 128-bit hash of it, and its source by the index of
//! its file and two numbers. Two different objects share a hash with a
//! probability of about n²/2¹²⁹: 10⁻²⁵ for ten million objects.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::Source;
use crate::model::ObjectRef;

/// The source of each object, for outputs that say where a finding is.
#[derive(Clone, Debug, Default)]
pub struct SourceIndex {
    /// Each file sources name, once.
    files: Vec<Arc<str>>,
    file_ids: HashMap<Arc<str>, u32>,
    /// The first definition of each object.
    by_object: Places,
    /// First definitions whose place does not fit a [`Place`].
    outsized: HashMap<ObjectKey, Source>,
    /// Second and later definitions of an object, in input order.
    later: HashMap<ObjectKey, Vec<Source>>,
    /// The first object read in each namespace, where findings about a
    /// namespace that is not itself in the input are shown.
    first_in_namespace: HashMap<String, Source>,
}

/// An object, by a hash of every field of its [`ObjectRef`]: 128 bits, in
/// four parts so that a [`Places`] entry takes 28 bytes, not 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ObjectKey([u32; 4]);

impl ObjectKey {
    fn of(object: &ObjectRef) -> ObjectKey {
        // Two hashes of differently salted input make one of 128 bits.
        let half = |salt: u8| {
            let mut hasher = DefaultHasher::new();
            salt.hash(&mut hasher);
            object.hash(&mut hasher);
            hasher.finish()
        };
        let (a, b) = (half(0), half(1));
        ObjectKey([(a >> 32) as u32, a as u32, (b >> 32) as u32, b as u32])
    }
}

/// Places by object, in about 28 bytes each. A hash map of a million
/// places would take twice that (its table has a power-of-two size, at
/// most seven eighths full) and three times that while it grows. Places
/// are first put in a small map; when it is full they are sorted into one
/// list, which is searched by halves.
#[derive(Clone, Debug, Default)]
struct Places {
    /// Sorted by key, each key once.
    sorted: Vec<(ObjectKey, Place)>,
    recent: HashMap<ObjectKey, Place>,
}

/// Places the small map of [`Places`] takes before they are sorted in.
const RECENT_PLACES: usize = 1 << 16;

impl Places {
    fn get(&self, key: &ObjectKey) -> Option<&Place> {
        match self.sorted.binary_search_by(|(k, _)| k.cmp(key)) {
            Ok(at) => Some(&self.sorted[at].1),
            Err(_) => self.recent.get(key),
        }
    }

    /// Adds a place for a key not yet in.
    fn insert(&mut self, key: ObjectKey, place: Place) {
        self.recent.insert(key, place);
        if self.recent.len() >= RECENT_PLACES {
            self.sort_in();
        }
    }

    /// Moves the small map's places into the sorted list.
    fn sort_in(&mut self) {
        let mut recent: Vec<(ObjectKey, Place)> = self.recent.drain().collect();
        recent.sort_unstable_by_key(|(key, _)| *key);
        // Merged from the back, into room made at the end of the list
        // (grown by what it needs, not doubled).
        let mut left = self.sorted.len();
        let mut right = recent.len();
        self.sorted.reserve_exact(right);
        self.sorted.extend_from_slice(&recent);
        let mut at = self.sorted.len();
        while right > 0 {
            at -= 1;
            if left > 0 && self.sorted[left - 1].0 > recent[right - 1].0 {
                left -= 1;
                self.sorted[at] = self.sorted[left];
            } else {
                right -= 1;
                self.sorted[at] = recent[right];
            }
        }
    }
}

/// A [`Source`] in 12 bytes: its file's index in [`SourceIndex::files`].
#[derive(Clone, Copy, Debug)]
struct Place {
    file: u32,
    line: u32,
    document: u32,
}

impl SourceIndex {
    /// Records where `object` is; returns the first source if the same
    /// object was already read (this one is kept as a later definition).
    pub fn insert(&mut self, object: ObjectRef, source: &Source) -> Option<Source> {
        if let Some(ns) = &object.namespace
            && !self.first_in_namespace.contains_key(ns)
        {
            self.first_in_namespace.insert(ns.clone(), source.clone());
        }
        let key = ObjectKey::of(&object);
        if let Some(first) = self.first(key) {
            self.later.entry(key).or_default().push(source.clone());
            return Some(first);
        }
        match self.place_of(source) {
            Some(place) => {
                self.by_object.insert(key, place);
            }
            None => {
                self.outsized.insert(key, source.clone());
            }
        }
        None
    }

    /// How many definitions of `object` were read.
    pub fn definitions(&self, object: &ObjectRef) -> usize {
        let key = ObjectKey::of(object);
        let first = usize::from(self.first(key).is_some());
        first + self.later.get(&key).map_or(0, Vec::len)
    }

    /// Where definition `index` (0 the first) of `object` was read.
    pub fn definition(&self, object: &ObjectRef, index: usize) -> Option<Source> {
        match index {
            0 => self.locate(object),
            _ => (self.later.get(&ObjectKey::of(object))?)
                .get(index - 1)
                .cloned(),
        }
    }

    /// Where `object` was read; for a Namespace not in the input, where its
    /// first object was.
    pub fn locate(&self, object: &ObjectRef) -> Option<Source> {
        self.first(ObjectKey::of(object)).or_else(|| {
            (object.kind == "Namespace" && object.namespace.is_none())
                .then(|| self.first_in_namespace.get(&object.name).cloned())
                .flatten()
        })
    }

    fn first(&self, key: ObjectKey) -> Option<Source> {
        match self.by_object.get(&key) {
            Some(place) => Some(Source {
                file: Arc::clone(&self.files[place.file as usize]),
                line: place.line as usize,
                document: place.document as usize,
            }),
            None => self.outsized.get(&key).cloned(),
        }
    }

    /// `source` as a [`Place`], its file added to the files; `None` when
    /// a number does not fit.
    fn place_of(&mut self, source: &Source) -> Option<Place> {
        let line = u32::try_from(source.line).ok()?;
        let document = u32::try_from(source.document).ok()?;
        let file = match self.file_ids.entry(Arc::clone(&source.file)) {
            Entry::Occupied(id) => *id.get(),
            Entry::Vacant(slot) => {
                let id = u32::try_from(self.files.len()).ok()?;
                self.files.push(Arc::clone(&source.file));
                *slot.insert(id)
            }
        };
        Some(Place {
            file,
            line,
            document,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
            uid: None,
        }
    }

    fn source(file: &str, line: usize, document: usize) -> Source {
        Source {
            file: file.into(),
            line,
            document,
        }
    }

    #[test]
    fn places_sorted_in_are_all_found() {
        let mut places = Places::default();
        // A multiplicative hash spreads the keys; 2.5 rounds of sorting in.
        let key = |i: u32| ObjectKey([i.wrapping_mul(2_654_435_761), i, !i, 7]);
        let count = RECENT_PLACES as u32 * 5 / 2;
        for i in 0..count {
            let place = Place {
                file: i % 3,
                line: i,
                document: i / 2,
            };
            places.insert(key(i), place);
        }
        assert_eq!(places.sorted.len(), RECENT_PLACES * 2);
        assert!(places.sorted.windows(2).all(|w| w[0].0 < w[1].0));
        for i in 0..count {
            let place = places.get(&key(i)).expect("found");
            assert_eq!((place.file, place.line, place.document), (i % 3, i, i / 2));
        }
        assert!(places.get(&key(count)).is_none());
        assert!(places.get(&ObjectKey([0; 4])).is_none());
    }

    #[test]
    fn objects_are_found_where_they_were_read() {
        let mut index = SourceIndex::default();
        let pod = object("Pod", Some("a"), "web");
        let other = object("Pod", Some("b"), "web");
        assert_eq!(index.insert(pod.clone(), &source("x.yaml", 3, 0)), None);
        assert_eq!(index.insert(other.clone(), &source("y.yaml", 7, 2)), None);
        assert_eq!(index.locate(&pod), Some(source("x.yaml", 3, 0)));
        assert_eq!(index.locate(&other), Some(source("y.yaml", 7, 2)));
        assert_eq!(index.locate(&object("Pod", Some("c"), "web")), None);
        assert_eq!(index.definitions(&pod), 1);
    }

    #[test]
    fn later_definitions_are_kept_in_order() {
        let mut index = SourceIndex::default();
        let pod = object("Pod", Some("a"), "web");
        index.insert(pod.clone(), &source("x.yaml", 3, 0));
        let first = index.insert(pod.clone(), &source("y.yaml", 9, 1));
        assert_eq!(first, Some(source("x.yaml", 3, 0)));
        index.insert(pod.clone(), &source("z.yaml", 1, 0));
        assert_eq!(index.definitions(&pod), 3);
        assert_eq!(index.definition(&pod, 1), Some(source("y.yaml", 9, 1)));
        assert_eq!(index.definition(&pod, 2), Some(source("z.yaml", 1, 0)));
        assert_eq!(index.definition(&pod, 3), None);
    }

    #[test]
    fn a_namespace_not_read_is_where_its_first_object_is() {
        let mut index = SourceIndex::default();
        index.insert(object("Pod", Some("a"), "web"), &source("x.yaml", 5, 1));
        index.insert(object("Pod", Some("a"), "db"), &source("x.yaml", 9, 2));
        let namespace = object("Namespace", None, "a");
        assert_eq!(index.locate(&namespace), Some(source("x.yaml", 5, 1)));
        assert_eq!(index.locate(&object("Namespace", None, "b")), None);
    }

    #[test]
    fn places_past_four_billion_lines_are_kept_whole() {
        let mut index = SourceIndex::default();
        let pod = object("Pod", Some("a"), "web");
        let far = source("x.yaml", usize::MAX, 1);
        index.insert(pod.clone(), &far);
        assert_eq!(index.locate(&pod), Some(far));
        assert_eq!(index.definitions(&pod), 1);
    }

    #[test]
    fn every_field_of_the_object_tells_objects_apart() {
        let mut index = SourceIndex::default();
        let pod = object("Pod", Some("a"), "web");
        index.insert(pod.clone(), &source("x.yaml", 1, 0));
        let mut other_uid = pod.clone();
        other_uid.uid = Some("u".into());
        let mut other_version = pod.clone();
        other_version.api_version = "v2".into();
        for other in [
            other_uid,
            other_version,
            object("Service", Some("a"), "web"),
        ] {
            assert_eq!(index.locate(&other), None, "{other:?}");
        }
    }
}
