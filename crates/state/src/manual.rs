//! Design notes (filled in below).
