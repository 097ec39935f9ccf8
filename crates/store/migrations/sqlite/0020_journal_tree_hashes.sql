-- The journal's hash tiles (C2SP tlog-tiles): the hash of every complete
-- subtree of 256^level leaves, by level and index. Level 0 is the leaf hashes
-- themselves, kept in journal_entries. A tile is 256 consecutive hashes of
-- one level; proofs read O(log n) of them instead of every leaf.
CREATE TABLE journal_tree_hashes (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
