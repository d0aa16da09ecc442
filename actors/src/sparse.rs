//! Tables that give memory back: a scheduler that once held 10,000
//! connections keeps a slot for each in its slab, long after they closed,
//! unless it shrinks it.

use slab::Slab;

/// Shrinks `slab` once it is under a quarter full (and was big). A slab
/// cannot shrink past its last live entry, so this gives back the tail
/// only; rare by construction (the capacity must have been four times the
/// length), so amortised O(1) per removal.
pub(crate) fn shrink_if_sparse<T>(slab: &mut Slab<T>) {
    if slab.capacity() >= 1024 && slab.len() * 4 < slab.capacity() {
        slab.shrink_to_fit();
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
}
