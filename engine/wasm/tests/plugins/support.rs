//! Fixtures: the WAT components and a sandbox shared by the tests.

use std::sync::OnceLock;
use tempfile::TempDir;
use waystation_core::PluginRef;
use waystation_wasm::{HostConfig, PluginHost, Sandbox};

const SCORER: &str = include_str!("../fixtures/scorer.wat");
const NOTIFIER: &str = include_str!("../fixtures/notifier.wat");
const SLEEPER: &str = include_str!("../fixtures/sleeper.wat");
const WRONG_WORLD: &str = include_str!("../fixtures/wrong-world.wat");

/// One sandbox (engine, pool, epoch ticker) for the whole test binary, as in the server.
pub fn sandbox() -> Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            Sandbox::new(HostConfig {
                max_concurrent_calls: 8,
                ..HostConfig::default()
            })
            .unwrap()
        })
        .clone()
}

/// A host over a fresh registry directory.
pub fn host() -> (TempDir, PluginHost) {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::open(dir.path().join("plugins"), sandbox()).unwrap();
    (dir, host)
}

fn assemble(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap()
}

/// The well-behaved scorer: score = input length, logs the input.
pub fn scorer() -> Vec<u8> {
    assemble(SCORER)
}

/// The scorer with the body of `score` replaced by `body` (which may call `$log`, `$ok`,
/// `$ok-with` and `$err`, and must leave an i32 result pointer).
pub fn scorer_doing(body: &str) -> Vec<u8> {
    let start = SCORER.find(";; <score>").unwrap();
    let end = SCORER.find(";; </score>").unwrap();
    assemble(&format!("{}{body}\n{}", &SCORER[..start], &SCORER[end..]))
}

/// The well-behaved notifier: one message whose body is the input.
pub fn notifier() -> Vec<u8> {
    assemble(NOTIFIER)
}

/// A scorer that sleeps through WASI forever.
pub fn sleeper() -> Vec<u8> {
    assemble(SLEEPER)
}

/// A component exporting `run`, which is no Waystation world.
pub fn wrong_world() -> Vec<u8> {
    assemble(WRONG_WORLD)
}

/// Bodies that make the scorer misbehave.
pub mod bodies {
    /// Spins forever.
    pub const INFINITE_LOOP: &str = "(loop $spin (br $spin)) (unreachable)";
    /// Grows memory a megabyte at a time, forever.
    pub const MEMORY_BOMB: &str =
        "(loop $grow (drop (memory.grow (i32.const 16))) (br $grow)) (unreachable)";
    /// Logs a line, then executes `unreachable`.
    pub const TRAP: &str = "(call $log (i32.const 4) (i32.const 352) (i32.const 13)) (unreachable)";
    /// Returns its own error.
    pub const REFUSE: &str = "(call $err (i32.const 320) (i32.const 26))";
    /// Returns one reason of two million bytes (over the 1 MiB output cap as JSON).
    pub const BIG_REASON: &str = "(drop (memory.grow (i32.const 40)))
        (i32.store (i32.const 4096) (i32.const 131072))
        (i32.store (i32.const 4100) (i32.const 2000000))
        (call $ok-with (f64.const 1) (i32.const 4096) (i32.const 1))";
    /// Returns a million reasons, all the same empty string: tiny in guest memory, but
    /// a million host strings if lifted naively.
    pub const MILLION_REASONS: &str = "(drop (memory.grow (i32.const 130)))
        (call $ok-with (f64.const 1) (i32.const 131072) (i32.const 1000000))";
    /// Returns NaN as the score.
    pub const NAN_SCORE: &str = "(call $ok (f64.div (f64.const 0) (f64.const 0)))";
}

/// `name` as an unpinned reference.
pub fn by_name(name: &str) -> PluginRef {
    PluginRef::parse(name).unwrap()
}
