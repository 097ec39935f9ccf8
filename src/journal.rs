//! The audit journal: an append-only Merkle tree log (RFC 9162 hashing) with
//! group commit, HSM-signed checkpoints kept in and outside the database, and proofs.
// SKELETON: replaced by the real implementation.
