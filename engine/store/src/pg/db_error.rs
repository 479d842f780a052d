//! PostgreSQL errors as [`StoreError::Backend`]: what was being done, the server's message
//! and SQLSTATE, the client's error kept as the source. In a module of its own because the
//! store, its connections and its migrations all map errors this way.

use crate::StoreError;

/// Maps a database error to [`StoreError::Backend`], saying what was being done; the
/// error stays its source.
pub(crate) fn db(doing: &str) -> impl Fn(postgres::Error) -> StoreError + '_ {
    move |e| StoreError::backend_from(doing, Db(e))
}

/// A database error shown as [`detail`] (the server's message and SQLSTATE), with the
/// client's error as its source.
#[derive(Debug)]
pub(crate) struct Db(pub(crate) postgres::Error);

impl std::fmt::Display for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&detail(&self.0))
    }
}

impl std::error::Error for Db {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The server's message and SQLSTATE when there is one, else the client's message with
/// its causes ("error connecting to server: Connection refused (os error 111)"): the
/// client's own text alone ("db error") says nothing.
pub(crate) fn detail(e: &postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return format!("{} ({})", d.message(), d.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
