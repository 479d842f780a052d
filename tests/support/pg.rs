//! The local PostgreSQL the shared-store tests use (`tests/support/postgres.sh` starts it;
//! `WAYSTATION_TEST_PG_URL` points elsewhere), and a schema of its own per test.

/// The database URL: `WAYSTATION_TEST_PG_URL`, or the local `test` database.
pub fn pg_url() -> String {
    std::env::var("WAYSTATION_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own for one test (`ws_{name}_{pid}`), dropped with everything in it
/// when the value is dropped.
pub struct Schema(pub String);

impl Schema {
    /// A fresh schema name for `name`; nothing is created until a server or store opens it.
    pub fn new(name: &str) -> Schema {
        Schema(format!("ws_{name}_{}", std::process::id()))
    }

    /// The environment that puts a server on this schema.
    pub fn env(&self, url: &str) -> Vec<(String, String)> {
        vec![
            ("WAYSTATION_STORE_URL".to_owned(), url.to_owned()),
            ("WAYSTATION_STORE_SCHEMA".to_owned(), self.0.clone()),
        ]
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-q", "-d", &pg_url(), "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0))
            .output();
    }
}
