//! The texts of the notices the RA sends, in French and English.
