//! Evidence documents (ID copies, registry extracts, mandates): recognised by
//! content, sealed under a data key wrapped by a key that stays in the HSM.
