//! Tables that give memory back: a scheduler that once held 10,000
//! connections keeps a slot for each in its slab (and the loop an entry in
//! its maps), long after they closed, unless it shrinks them.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use slab::Slab;

/// A table that can give back unused capacity.
pub trait Sparse {
    /// (entries, capacity).
    fn occupancy(&self) -> (usize, usize);
    fn shrink_to_fit(&mut self);
}

impl<T> Sparse for Slab<T> {
    fn occupancy(&self) -> (usize, usize) {
        (self.len(), self.capacity())
    }
    /// A slab cannot shrink past its last live entry: the tail only.
    fn shrink_to_fit(&mut self) {
        Slab::shrink_to_fit(self)
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Sparse for HashMap<K, V, S> {
    fn occupancy(&self) -> (usize, usize) {
        (self.len(), self.capacity())
    }
    fn shrink_to_fit(&mut self) {
        HashMap::shrink_to_fit(self)
    }
}

/// Shrinks `table` once it is under a quarter full (and was big). Rare by
/// construction (the capacity must have been four times the length), so
/// amortised O(1) per removal.
pub fn shrink_if_sparse(table: &mut impl Sparse) {
    let (len, capacity) = table.occupancy();
    if capacity >= 1024 && len * 4 < capacity {
        table.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_slab_gives_back_its_slots() {
        let mut slab = Slab::new();
        let keys: Vec<usize> = (0..10_000).map(|i| slab.insert(i)).collect();
        assert!(slab.capacity() >= 10_000);
        for key in keys.into_iter().rev() {
            slab.remove(key);
            shrink_if_sparse(&mut slab);
        }
        assert!(slab.capacity() < 1024, "capacity {}", slab.capacity());
    }

    #[test]
    fn a_busy_slab_keeps_its_slots() {
        let mut slab = Slab::new();
        let keys: Vec<usize> = (0..4_000).map(|i| slab.insert(i)).collect();
        let capacity = slab.capacity();
        for key in keys.into_iter().take(2_000) {
            slab.remove(key);
            shrink_if_sparse(&mut slab);
        }
        assert_eq!(slab.capacity(), capacity);
    }

    #[test]
    fn an_emptied_map_gives_back_its_table() {
        let mut map: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        for key in 0..10_000 {
            map.remove(&key);
            shrink_if_sparse(&mut map);
        }
        assert!(map.capacity() < 1024, "capacity {}", map.capacity());
    }
}
