//! Golden tests (to be written).
