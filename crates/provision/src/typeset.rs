//! A bitset over instance-type indices: the candidate types of a NodeClaim under construction.
//! Intersections and scans of 400 types are a handful of word operations, which is what keeps
//! per-pod work small.

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TypeSet {
    words: Vec<u64>,
}

impl TypeSet {
    pub fn empty(n: usize) -> TypeSet {
        TypeSet {
            words: vec![0; n.div_ceil(64)],
        }
    }
    pub fn full(n: usize) -> TypeSet {
        let mut s = TypeSet::empty(n);
        for i in 0..n {
            s.insert(i);
        }
        s
    }
    #[inline]
    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }
    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub fn and(&self, o: &TypeSet) -> TypeSet {
        TypeSet {
            words: self
                .words
                .iter()
                .zip(&o.words)
                .map(|(a, b)| a & b)
                .collect(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// Indices in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops() {
        let mut a = TypeSet::empty(130);
        a.insert(0);
        a.insert(64);
        a.insert(129);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        let b = TypeSet::full(130);
        assert_eq!(a.and(&b), a);
        assert_eq!(b.len(), 130);
        assert!(TypeSet::empty(10).is_empty());
        assert!(a.contains(64) && !a.contains(65));
    }
}
