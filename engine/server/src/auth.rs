//! Bearer tokens with roles. Secrets are random, shown once, and stored only as SHA-256.

use chrono::Utc;
use sha2::{Digest, Sha256};
use waystation_store::{Store, StoreError, TokenRecord};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token id.
    pub token_id: String,
    /// Token name: the identity recorded in histories (deciders, cancellers).
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
}

impl Caller {
    /// True when the caller holds `role`.
    pub fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The caller as history records it.
    pub fn actor(&self) -> waystation_core::Actor {
        waystation_core::Actor {
            token_id: self.token_id.clone(),
            name: self.name.clone(),
        }
    }

    /// The approver roles held, without the `approver:` prefix.
    pub fn approver_roles(&self) -> Vec<String> {
        self.roles
            .iter()
            .filter_map(|r| r.strip_prefix("approver:").map(str::to_owned))
            .collect()
    }
}

/// Checks a role name: `admin`, `developer`, `operator` or `approver:<role>`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn check_role(role: &str) -> Result<(), String> {
    let ok = matches!(role, "admin" | "developer" | "operator")
        || role.strip_prefix("approver:").is_some_and(|r| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{role}' is not a role; use admin, developer, operator or approver:<role>"
        ))
    }
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token's record and its secret (`secret`, or a new random one), not yet stored:
/// store it with `Runtime::put_token` (or [`create_token`] before the runtime runs) before
/// showing the secret.
pub fn new_token(name: &str, roles: Vec<String>, secret: Option<String>) -> (TokenRecord, String) {
    let secret = secret.unwrap_or_else(|| format!("ws_{}", random_hex(32)));
    let record = TokenRecord {
        id: format!("tok_{}", random_hex(8)),
        name: name.to_owned(),
        roles,
        secret_sha256: sha256_hex(secret.as_bytes()),
        created_at: Utc::now(),
    };
    (record, secret)
}

/// Creates a token and flushes the store (for start-up, before the runtime and its group
/// commit exist); returns its record and the secret (shown to the caller once).
///
/// # Errors
/// [`StoreError::Backend`] when the write or the flush fails (an IO error, a full disk, a lost
/// database connection); [`StoreError::Conflict`] (shared stores) when another node wrote a
/// token of the same name first.
pub fn create_token(
    store: &dyn Store,
    name: &str,
    roles: Vec<String>,
    secret: Option<String>,
) -> Result<(TokenRecord, String), StoreError> {
    let (record, secret) = new_token(name, roles, secret);
    store.put_token(&record)?;
    store.flush()?;
    Ok((record, secret))
}

/// The caller a bearer secret belongs to.
///
/// # Errors
/// [`StoreError::Backend`] when the token lookup cannot read the store (an IO error, a lost
/// database connection); [`StoreError::Corrupt`] when the stored token cannot be decoded.
pub fn authenticate(
    store: waystation_runtime::StoreReader<'_>,
    secret: &str,
) -> Result<Option<Caller>, StoreError> {
    Ok(store
        .token_by_hash(&sha256_hex(secret.as_bytes()))?
        .map(|t| Caller {
            token_id: t.id,
            name: t.name,
            roles: t.roles,
        }))
}

/// On a store with no tokens, creates the first admin token: from `preset` (the
/// `WAYSTATION_BOOTSTRAP_TOKEN` variable) or a new random secret. Returns the secret when
/// one was made, for the caller to print once.
///
/// # Errors
/// [`StoreError::Backend`] when the tokens cannot be listed or the new one cannot be written
/// and flushed; [`StoreError::Corrupt`] when a stored token cannot be decoded.
pub fn bootstrap(store: &dyn Store, preset: Option<String>) -> Result<Option<String>, StoreError> {
    if !store.tokens()?.is_empty() {
        return Ok(None);
    }
    match create_token(store, "bootstrap-admin", vec!["admin".into()], preset) {
        Ok((_, secret)) => Ok(Some(secret)),
        // Nodes started together on one new database: another made it first.
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
