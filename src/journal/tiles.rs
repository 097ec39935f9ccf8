//! The journal's hash tiles, laid out as C2SP `tlog-tiles`: level 0 holds the
//! leaf hashes, level L the hash of every complete subtree of 256^L leaves, and
//! a tile is 256 consecutive hashes of one level. The checkpoint signer lays
//! the levels down as subtrees complete; an inclusion proof then reads
//! O(log n) hashes instead of every leaf.

use super::merkle::{self, Hash};
use crate::store::{Store, StoreError};

/// Hashes per full tile (C2SP `tlog-tiles`).
pub const TILE_WIDTH: u64 = 256;
/// log2 of [`TILE_WIDTH`]: each level spans eight levels of the binary tree.
const TILE_HEIGHT: u32 = 8;

/// Reads hashes for one proof, counting them.
pub(super) struct TileReader<'a> {
    pub store: &'a Store,
    pub read: u64,
}

impl TileReader<'_> {
    async fn hashes(&mut self, level: u8, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
        let hashes = self.store.journal_tree_hashes(level, from, to).await?;
        self.read += hashes.len() as u64;
        Ok(hashes)
    }

    /// The root of the complete subtree of `size` leaves (a power of two) at
    /// `start` (a multiple of it): at most 128 hashes of one level.
    async fn subtree_root(&mut self, start: u64, size: u64) -> Result<Hash, StoreError> {
        let height = size.trailing_zeros();
        let level = height / TILE_HEIGHT;
        let count = 1u64 << (height - level * TILE_HEIGHT);
        let first = start >> (level * TILE_HEIGHT);
        let level = u8::try_from(level)
            .map_err(|_| StoreError::Corrupt(format!("a subtree of {size} leaves")))?;
        let hashes = self.hashes(level, first, first + count).await?;
        Ok(merkle::root(&hashes))
    }

    /// RFC 9162 MTH of leaves `start..end`, where `start` is aligned to the
    /// largest power of two below `end - start` (as every range the tree's
    /// recursion makes is).
    async fn range_root(&mut self, start: u64, end: u64) -> Result<Hash, StoreError> {
        // The complete subtrees the range splits into, left to right; their
        // roots fold from the right.
        let mut pieces = Vec::new();
        let mut at = start;
        while at < end {
            let size = if end - at == 1 {
                1
            } else {
                largest_power_below(end - at + 1)
            };
            pieces.push(self.subtree_root(at, size).await?);
            at += size;
        }
        let mut root = pieces
            .pop()
            .ok_or_else(|| StoreError::Corrupt(format!("the empty range {start}..{end}")))?;
        while let Some(left) = pieces.pop() {
            root = merkle::node_hash(&left, &root);
        }
        Ok(root)
    }

    /// The RFC 9162 inclusion proof of leaf `index` in the tree of `size`
    /// leaves, from the leaf up.
    pub(super) async fn inclusion_proof(
        &mut self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        // Walk down from the whole tree, noting each sibling, then reverse.
        let mut siblings = Vec::new();
        let (mut low, mut high) = (0, size);
        while high - low > 1 {
            let split = low + largest_power_below(high - low);
            if index < split {
                siblings.push(self.range_root(split, high).await?);
                high = split;
            } else {
                siblings.push(self.subtree_root(low, split - low).await?);
                low = split;
            }
        }
        siblings.reverse();
        Ok(siblings)
    }
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn largest_power_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Lays down the hashes of every subtree of 256^L leaves completed since the
/// last call, level by level. Idempotent, and safe to race with another
/// instance: a hash's value depends only on the leaves under it.
pub async fn lay_down(store: &Store) -> Result<(), StoreError> {
    let mut below = store.journal_tree_hash_count(0).await?;
    for level in 1u8.. {
        let complete = below / TILE_WIDTH;
        if complete == 0 {
            break;
        }
        let mut have = store.journal_tree_hash_count(level).await?;
        while have < complete {
            let chunk = store
                .journal_tree_hashes(level - 1, have * TILE_WIDTH, (have + 1) * TILE_WIDTH)
                .await?;
            store
                .journal_insert_tree_hashes(level, have, &[merkle::root(&chunk)])
                .await?;
            have += 1;
        }
        below = complete;
    }
    Ok(())
}

/// The C2SP `tlog-tiles` path of a tile: `tile/<L>/<N>` with N written in
/// groups of three digits, all but the last prefixed with `x`, and `.p/<W>`
/// for a partial tile of W hashes.
pub fn tile_path(level: u8, index: u64, width: u64) -> String {
    let digits = index.to_string();
    let padded = format!("{digits:0>width$}", width = digits.len().div_ceil(3) * 3);
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(3)
        .map(|group| std::str::from_utf8(group).unwrap_or_default())
        .collect();
    let (last, rest) = groups
        .split_last()
        .map_or(("000", &[][..]), |(l, r)| (*l, r));
    let mut path = format!("tile/{level}/");
    for group in rest {
        path.push('x');
        path.push_str(group);
        path.push('/');
    }
    path.push_str(last);
    if width < TILE_WIDTH {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_follow_c2sp() {
        assert_eq!(tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(tile_path(0, 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 12, 8), "tile/1/012.p/8");
        assert_eq!(tile_path(2, 1000, 256), "tile/2/x001/000");
    }

    #[test]
    fn powers() {
        assert_eq!(largest_power_below(2), 1);
        assert_eq!(largest_power_below(3), 2);
        assert_eq!(largest_power_below(4), 2);
        assert_eq!(largest_power_below(5), 4);
        assert_eq!(largest_power_below(20_000), 16_384);
    }
}
