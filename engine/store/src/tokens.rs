//! API tokens, stored by the SHA-256 of the secret: the secret itself is never kept.

use crate::keys::{key, part, prefix};
use crate::kv::{Kv, Mutation};
use crate::{KvStore, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public id (for listing and revoking).
    pub id: String,
    /// What it is for, e.g. `ci-deployer`.
    pub name: String,
    /// Roles: `admin`, `developer`, `operator`, `approver:<role>`.
    pub roles: Vec<String>,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// When it was made.
    #[serde(with = "waystation_core::timestamp")]
    pub created_at: DateTime<Utc>,
}

/// Token records.
pub trait TokenStore {
    /// Stores a token, durable after the next flush.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (an IO error, a full disk, a lost database
    /// connection); nothing was written then.
    /// [`StoreError::Conflict`] (shared stores) when another node wrote a token of the same name
    /// first; nothing was written then either.
    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// Stores a token and, in the same atomic batch, the idempotency record of the request
    /// that made it: a crash leaves both or neither, so a retried creation can never mint
    /// a second live token.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (an IO error, a full disk, a lost database
    /// connection); nothing was written then. [`StoreError::Conflict`] (shared stores) when another
    /// node wrote a token of the same name or the same key first; nothing was written then either.
    fn put_token_once(
        &self,
        token: &TokenRecord,
        key: &str,
        record: &crate::IdempotencyRecord,
    ) -> Result<(), StoreError>;
    /// The token whose secret hashes to `secret_sha256`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn token_by_hash(&self, secret_sha256: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// The token called `name` (names are unique: the API refuses a second one).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn token_by_name(&self, name: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Every token.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes token `id`; false if there was none.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (an IO error, a full disk, a lost database
    /// connection); nothing was written then.
    fn delete_token(&self, id: &str) -> Result<bool, StoreError>;
}

fn record_key(id: &str) -> Vec<u8> {
    key(&[part::TOKEN, id.as_bytes()])
}

fn hash_key(hash: &str) -> Vec<u8> {
    key(&[part::TOKEN_HASH, hash.as_bytes()])
}

fn name_key(name: &str) -> Vec<u8> {
    key(&[part::TOKEN_NAME, name.as_bytes()])
}

impl<B: Kv> TokenStore for KvStore<B> {
    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(token).map_err(|e| StoreError::encode("a token", e))?;
        self.backend().apply(vec![
            Mutation::Put(record_key(&token.id), bytes),
            Mutation::Put(hash_key(&token.secret_sha256), token.id.as_bytes().to_vec()),
            Mutation::Put(name_key(&token.name), token.id.as_bytes().to_vec()),
        ])
    }

    fn put_token_once(
        &self,
        token: &TokenRecord,
        idempotency_key: &str,
        record: &crate::IdempotencyRecord,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(token).map_err(|e| StoreError::encode("a token", e))?;
        let answer = serde_json::to_vec(record)
            .map_err(|e| StoreError::encode("an idempotency record", e))?;
        let mut batch = vec![
            Mutation::Put(record_key(&token.id), bytes),
            Mutation::Put(hash_key(&token.secret_sha256), token.id.as_bytes().to_vec()),
            Mutation::Put(name_key(&token.name), token.id.as_bytes().to_vec()),
            Mutation::Put(crate::keys::idempotency(idempotency_key), answer),
        ];
        // Into the expiry queue too, like the records commands keep (see commit.rs).
        if let Some(at) = record.at {
            batch.push(Mutation::Put(
                crate::keys::idempotency_kept(at, idempotency_key),
                Vec::new(),
            ));
        }
        self.backend().apply(batch)
    }

    fn token_by_name(&self, name: &str) -> Result<Option<TokenRecord>, StoreError> {
        if let Some(id) = self.backend().get(&name_key(name))? {
            let id = String::from_utf8(id).map_err(|_| StoreError::Corrupt("token id".into()))?;
            if let Some(bytes) = self.backend().get(&record_key(&id))? {
                return serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::unreadable(format!("token {id}"), e));
            }
        }
        // Tokens made before names were indexed.
        Ok(self.tokens()?.into_iter().find(|t| t.name == name))
    }

    fn token_by_hash(&self, secret_sha256: &str) -> Result<Option<TokenRecord>, StoreError> {
        let Some(id) = self.backend().get(&hash_key(secret_sha256))? else {
            return Ok(None);
        };
        let id = String::from_utf8(id).map_err(|_| StoreError::Corrupt("token id".into()))?;
        match self.backend().get(&record_key(&id))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::unreadable(format!("token {id}"), e)),
        }
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut out = Vec::new();
        let mut bad = None;
        self.backend()
            .scan(&prefix(&[part::TOKEN]), None, &mut |_, v| {
                match serde_json::from_slice(v) {
                    Ok(t) => out.push(t),
                    Err(e) => bad = Some(StoreError::unreadable("a token", e)),
                }
                bad.is_none()
            })?;
        bad.map_or(Ok(out), Err)
    }

    fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        let Some(bytes) = self.backend().get(&record_key(id))? else {
            return Ok(false);
        };
        let token: TokenRecord = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::unreadable(format!("token {id}"), e))?;
        self.backend().apply(vec![
            Mutation::Delete(record_key(id)),
            Mutation::Delete(hash_key(&token.secret_sha256)),
            Mutation::Delete(name_key(&token.name)),
        ])?;
        Ok(true)
    }
}
