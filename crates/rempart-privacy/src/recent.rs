//! A bounded memo of what was computed lately.

/// What was computed lately, bounded in entries and in weight (bytes): an insert that would
/// pass either bound starts the map over.
#[derive(Debug)]
pub(crate) struct Recent<K, V> {
    /// Keyed with a per-process random seed (the keys are event text: no chosen collisions),
    /// and several times faster than SipHash on the long strings the findings cache holds.
    map: std::collections::HashMap<K, V, foldhash::fast::RandomState>,
    weight: usize,
    max_entries: usize,
    max_weight: usize,
}

impl<K: std::hash::Hash + Eq, V> Recent<K, V> {
    pub(crate) fn new(max_entries: usize, max_weight: usize) -> Self {
        Recent {
            map: std::collections::HashMap::default(),
            weight: 0,
            max_entries,
            max_weight,
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V, weight: usize) {
        if self.map.len() >= self.max_entries || self.weight + weight > self.max_weight {
            self.map.clear();
            self.weight = 0;
        }
        self.weight += weight;
        self.map.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_remembered_stays_within_its_bounds() {
        let mut by_count: Recent<u32, ()> = Recent::new(3, usize::MAX);
        for k in 0..3 {
            by_count.insert(k, (), 0);
        }
        assert!(by_count.get(&0).is_some() && by_count.get(&2).is_some());
        by_count.insert(3, (), 0);
        assert_eq!((by_count.get(&0), by_count.get(&3)), (None, Some(&())));
        let mut by_weight: Recent<&str, ()> = Recent::new(100, 10);
        by_weight.insert("a", (), 6);
        by_weight.insert("b", (), 4);
        assert!(by_weight.get("a").is_some());
        by_weight.insert("c", (), 1);
        assert_eq!(
            (by_weight.get("a"), by_weight.get("c"), by_weight.weight),
            (None, Some(&()), 1)
        );
    }
}
