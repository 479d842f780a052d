//! API tokens: written like commands, answered after the group flush that covers them.

use crate::{Runtime, RuntimeError};
use waystation_store::TokenRecord;

impl Runtime {
    /// Stores `token`; durable when it returns, so its secret may be shown.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot write or sync the token (it must then not be
    /// handed out).
    pub async fn put_token(&self, token: &TokenRecord) -> Result<(), RuntimeError> {
        self.store.put_token(token)?;
        self.durability.durable().await?;
        Ok(())
    }

    /// Revokes token `id`; false when there is none. Durable when it returns.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot delete the token or sync the deletion; the
    /// token may then still work.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, RuntimeError> {
        let revoked = self.store.delete_token(id)?;
        if revoked {
            self.durability.durable().await?;
        }
        Ok(revoked)
    }

    /// Stores `token` and, in the same atomic batch, the idempotency record `record` of the
    /// request that made it under `key`, so a retried creation can never mint a second live
    /// token. Durable when it returns.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot write or sync the batch; nothing was written
    /// then.
    pub async fn put_token_once(
        &self,
        token: &TokenRecord,
        key: &str,
        record: &waystation_store::IdempotencyRecord,
    ) -> Result<(), RuntimeError> {
        self.store.put_token_once(token, key, record)?;
        self.durability.durable().await?;
        Ok(())
    }
}
