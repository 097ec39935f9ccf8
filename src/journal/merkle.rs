//! RFC 9162 Merkle tree hashing: leaf and node hashes, the tree head (MTH) of any
//! size, the compact range ("frontier") the journal keeps in memory, and inclusion
//! and consistency proofs (§2.1.3, §2.1.4) with their verification.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ leaf input)` (RFC 9162 §2.1.1).
pub fn leaf_hash(leaf_input: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(leaf_input);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH over leaf hashes (RFC 9162 §2.1.1), for any size.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree of `leaves` (RFC 9162 §2.1.3.1).
/// `None` when the index is outside the tree.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

fn path(m: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], proof);
        proof.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], proof);
        proof.push(root(&leaves[..k]));
    }
}

/// The consistency proof between the first `old_size` leaves and all of `leaves`
/// (RFC 9162 §2.1.4.1). `None` unless `0 < old_size ≤ leaves.len()`.
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if old_size == 0 || old_size > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(old_size, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &Hash,
    proof: &[Hash],
    expected_root: &Hash,
) -> bool {
    if index >= tree_size {
        return false;
    }
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *expected_root
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size == 0 || old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *old_root && sr == *new_root
}

/// The right edge of the tree: the roots of the perfect subtrees that make up the
/// first `size` leaves, largest first. Enough to append and to compute the root
/// without rereading any leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            // A set low bit means a perfect subtree of that height is waiting for a sibling.
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// The subtree roots, concatenated, for storage beside a checkpoint.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nodes.iter().flatten().copied().collect()
    }

    /// Rebuilds a frontier of `size` leaves from [`Frontier::to_bytes`]; `None` when
    /// the bytes do not hold exactly one subtree root per set bit of `size`.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Option<Self> {
        if bytes.len() % 32 != 0 || bytes.len() / 32 != size.count_ones() as usize {
            return None;
        }
        let nodes = bytes
            .chunks_exact(32)
            .map(|chunk| chunk.try_into().ok())
            .collect::<Option<Vec<Hash>>>()?;
        Some(Self { size, nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaf inputs of the Certificate Transparency test vectors (RFC 6962 tree).
    fn ct_leaves() -> Vec<Hash> {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        inputs.iter().map(|input| leaf_hash(input)).collect()
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
    fn roots_match_the_certificate_transparency_vectors() {
        let leaves = ct_leaves();
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for (n, expected) in CT_ROOTS.iter().enumerate() {
            assert_eq!(
                hex::encode(root(&leaves[..=n])),
                *expected,
                "size {}",
                n + 1
            );
        }
    }

    #[test]
    fn inclusion_proof_matches_the_ct_vector() {
        let leaves = ct_leaves();
        let proof = inclusion_proof(0, &leaves).unwrap();
        let proof: Vec<String> = proof.iter().map(hex::encode).collect();
        assert_eq!(
            proof,
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
    }

    /// An independent MTH, written from the RFC text over raw leaf inputs.
    fn naive_mth(inputs: &[Vec<u8>]) -> Hash {
        if inputs.is_empty() {
            return Sha256::digest(b"").into();
        }
        if inputs.len() == 1 {
            let mut data = vec![0u8];
            data.extend_from_slice(&inputs[0]);
            return Sha256::digest(&data).into();
        }
        let mut k = 1;
        while k * 2 < inputs.len() {
            k *= 2;
        }
        let mut data = vec![1u8];
        data.extend_from_slice(&naive_mth(&inputs[..k]));
        data.extend_from_slice(&naive_mth(&inputs[k..]));
        Sha256::digest(&data).into()
    }

    #[test]
    fn frontier_root_matches_an_independent_mth_at_every_size() {
        let inputs: Vec<Vec<u8>> = (0u32..70).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), naive_mth(&[]));
        for n in 1..=inputs.len() {
            frontier.push(leaf_hash(&inputs[n - 1]));
            let expected = naive_mth(&inputs[..n]);
            assert_eq!(frontier.root(), expected, "size {n}");
            let leaves: Vec<Hash> = inputs[..n].iter().map(|i| leaf_hash(i)).collect();
            assert_eq!(root(&leaves), expected, "size {n}");
            let restored = Frontier::from_bytes(n as u64, &frontier.to_bytes()).unwrap();
            assert_eq!(restored, frontier);
        }
        assert!(Frontier::from_bytes(5, &[0; 32]).is_none());
    }

    #[test]
    fn proofs_verify_and_wrong_ones_do_not() {
        let leaves: Vec<Hash> = (0u32..33).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() {
            let tree = &leaves[..n];
            let r = root(tree);
            for m in 0..n {
                let proof = inclusion_proof(m, tree).unwrap();
                assert!(verify_inclusion(m as u64, n as u64, &tree[m], &proof, &r));
                assert!(!verify_inclusion(
                    m as u64,
                    n as u64,
                    &leaf_hash(b"x"),
                    &proof,
                    &r
                ));
            }
            for m in 1..=n {
                let proof = consistency_proof(m, tree).unwrap();
                let old = root(&tree[..m]);
                assert!(
                    verify_consistency(m as u64, n as u64, &old, &r, &proof),
                    "{m} {n}"
                );
                if m < n {
                    assert!(!verify_consistency(m as u64, n as u64, &r, &r, &proof));
                }
            }
        }
        assert!(inclusion_proof(3, &leaves[..3]).is_none());
        assert!(consistency_proof(0, &leaves).is_none());
    }
}
