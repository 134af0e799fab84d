//! The Merkle tree of RFC 9162 §2.1 (Certificate Transparency v2): tree hashes, inclusion and
//! consistency proofs, and their verification, over leaf hashes.
//!
//! Written from the RFC rather than taken from a crate: the ledger needs an incremental root
//! ([`Frontier`], O(log n) per append, persisted in checkpoints) and proofs over leaf hashes read
//! from the store, which the tree crates (that own their leaves in memory) do not offer.

use sha2::{Digest, Sha256};

use rempart_store::Hash;

/// The hash of an empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `HASH(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `HASH(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D\[n\]): the root of the tree over `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    Tree::new(leaves.to_vec()).root(leaves.len())
}

/// The inclusion proof (audit path) of leaf `index` in the tree over `leaves`, leaf side first.
/// `None` if `index` is not a leaf of that tree.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    Tree::new(leaves.to_vec()).inclusion_proof(index, leaves.len())
}

/// The consistency proof between the tree of the first `old_size` leaves and the tree over all
/// of `leaves`. `None` unless `0 < old_size <= leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    Tree::new(leaves.to_vec()).consistency_proof(old_size, leaves.len())
}

/// A tree with every perfect subtree's hash precomputed (2n hashes in all), so the root of any
/// prefix and any proof cost O(log n) lookups: an export proves each of its records without
/// rehashing the ledger per record.
#[derive(Debug, Clone)]
pub struct Tree {
    /// `levels[k][i]`: the root of leaves `i * 2^k .. (i + 1) * 2^k`.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|l| l.len() >= 2) {
            let above = below.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
            levels.push(above);
        }
        Tree { levels }
    }

    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The root of leaves `start .. start + n`, for the ranges the RFC's recursion visits.
    fn range_root(&self, start: usize, n: usize) -> Hash {
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            return self.levels[level][start / n];
        }
        let k = split(n);
        node_hash(&self.range_root(start, k), &self.range_root(start + k, n - k))
    }

    /// The root of the tree over the first `size` leaves (`size <= len`).
    pub fn root(&self, size: usize) -> Hash {
        self.range_root(0, size.min(self.len()))
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: usize, size: usize) -> Option<Vec<Hash>> {
        if index >= size || size > self.len() {
            return None;
        }
        let mut path = Vec::new();
        self.path_into(index, 0, size, &mut path);
        Some(path)
    }

    fn path_into(&self, m: usize, start: usize, n: usize, out: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path_into(m, start, k, out);
            out.push(self.range_root(start + k, n - k));
        } else {
            self.path_into(m - k, start + k, n - k, out);
            out.push(self.range_root(start, k));
        }
    }

    /// The consistency proof from the tree of `old_size` leaves to that of `size` leaves.
    pub fn consistency_proof(&self, old_size: usize, size: usize) -> Option<Vec<Hash>> {
        if old_size == 0 || old_size > size || size > self.len() {
            return None;
        }
        let mut proof = Vec::new();
        self.subproof_into(old_size, 0, size, true, &mut proof);
        Some(proof)
    }

    fn subproof_into(&self, m: usize, start: usize, n: usize, complete: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !complete {
                out.push(self.range_root(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof_into(m, start, k, complete, out);
            out.push(self.range_root(start + k, n - k));
        } else {
            self.subproof_into(m - k, start + k, n - k, false, out);
            out.push(self.range_root(start, k));
        }
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Verifies a consistency proof between the tree of `old_size` leaves with root `old_root` and
/// the tree of `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old_size == 0 || old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

/// The compact range of a growing tree: the roots of its perfect subtrees, largest first.
/// Appending costs amortized one node hash; the root costs one per subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, from the highest bit down.
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resumes a frontier saved with [`Frontier::nodes`]; `None` if the node count does not
    /// match `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (u64::from(size.count_ones()) == nodes.len() as u64).then_some(Frontier { size, nodes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        // Each trailing one bit of the old size is a subtree of the new leaf's height: merge.
        let mut merges = self.size.trailing_ones();
        while merges > 0 {
            if let Some(left) = self.nodes.pop() {
                node = node_hash(&left, &node);
            }
            merges -= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves and roots of the test tree used by Certificate Transparency implementations.
    fn ct_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).unwrap_or_default()))
        .collect()
    }

    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_match_the_certificate_transparency_test_vectors() {
        let leaves = ct_leaves();
        let mut frontier = Frontier::new();
        for (n, expected) in CT_ROOTS.iter().enumerate() {
            frontier.push(leaves[n]);
            assert_eq!(hex::encode(root(&leaves[..=n])), *expected, "MTH of {} leaves", n + 1);
            assert_eq!(
                hex::encode(frontier.root()),
                *expected,
                "frontier root of {} leaves",
                n + 1
            );
        }
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies_and_a_wrong_one_does_not() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() {
            let tree = &leaves[..n];
            let r = root(tree);
            for m in 0..n {
                let proof = inclusion_proof(tree, m).unwrap_or_default();
                assert!(
                    verify_inclusion(&tree[m], m as u64, n as u64, &proof, &r),
                    "leaf {m} of {n}"
                );
                let other = (m + 1) % n;
                if other != m {
                    assert!(!verify_inclusion(&tree[other], m as u64, n as u64, &proof, &r));
                }
            }
            for m in 1..=n {
                let proof = consistency_proof(tree, m).unwrap_or_default();
                let old = root(&tree[..m]);
                assert!(verify_consistency(m as u64, n as u64, &old, &r, &proof), "{m} -> {n}");
                if m < n {
                    let forged = leaf_hash(b"forged");
                    assert!(
                        !verify_consistency(m as u64, n as u64, &forged, &r, &proof),
                        "forged {m} -> {n}"
                    );
                }
            }
        }
    }

    /// MTH straight from the RFC's definition, to hold the precomputed tree to.
    fn naive_root(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n);
                node_hash(&naive_root(&d[..k]), &naive_root(&d[k..]))
            }
        }
    }

    #[test]
    fn tree_roots_of_every_prefix_match_the_definition() {
        let leaves: Vec<Hash> = (0u32..130).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let tree = Tree::new(leaves.clone());
        for n in 0..=leaves.len() {
            assert_eq!(tree.root(n), naive_root(&leaves[..n]), "prefix of {n}");
        }
    }

    #[test]
    fn a_frontier_resumes_from_its_parts() {
        let leaves: Vec<Hash> = (0u32..37).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut a = Frontier::new();
        for l in &leaves[..21] {
            a.push(*l);
        }
        let mut b = Frontier::from_parts(a.size(), a.nodes().to_vec()).unwrap_or_default();
        for l in &leaves[21..] {
            a.push(*l);
            b.push(*l);
        }
        assert_eq!(b.root(), root(&leaves));
        assert!(Frontier::from_parts(5, vec![leaves[0]]).is_none());
    }
}
