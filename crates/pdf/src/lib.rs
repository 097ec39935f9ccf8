//! The PDF reader and writer of sceau's seals, a crate of its own so that it
//! depends on nothing else of the service: a file read lazily and strictly
//! (`file`: the cross-reference index of every revision, objects parsed on
//! demand, the whole-file check; `file/revision.rs`: the incremental update),
//! the strict parser (`syntax`) and the objects the seal rewrites over their
//! own bytes (`patch`).

mod file;
mod patch;
mod syntax;

pub use file::{
    DECODED_FLOOR_BYTES, INDEX_FLOOR_BYTES, MAX_OBJECT_NUMBER, PdfFile, ReadError, Revision,
    XrefKind, row_budget,
};
