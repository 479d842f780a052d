//! The wasmtime component host (being written).
