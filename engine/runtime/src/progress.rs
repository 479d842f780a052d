//! Customer progress links (issue 16): a signed, revocable, unguessable link per instance
//! that opens a small public page showing what the definition marks customer-visible.
//!
//! A link is `{base}/p/{instance}.{generation}.{signature}`: the signature is HMAC-SHA256
//! over the instance id and the link's generation under the server's key (in the data
//! directory, made on the first start), cut to 128 bits. Nobody can make one without the
//! key; the instance keeps its generation ([`waystation_core::InstanceState::progress_link`]),
//! so revoking (generation + 1, one commit with a history entry) ends every link given out
//! before. Nothing is stored per link.
//!
//! Notifier plugins get the link in their default input as `instance.progress_link`, so a
//! welcome message can carry it (a notify with its own `input` expression does not).

use crate::{Runtime, RuntimeError};
use chrono::TimeDelta;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::sync::Arc;
use waystation_core::definition::progress::{customer_view, CustomerProgress};
use waystation_core::plugin::CallOutcome;
use waystation_core::{
    Effect, HistoryEntry, HistoryEvent, PluginFailure, PluginInvoker, PluginRef, Status, World,
};
use waystation_store::{Commit, Store};

/// Bytes of the signature kept in a link (128 bits: not guessable, short enough to read).
const SIGNATURE_BYTES: usize = 16;

/// Makes and checks links with one key.
pub struct ProgressLinks {
    // The HMAC key: secret, from the data directory.
    key: Vec<u8>,
    // Where the public page is reached, without a trailing slash.
    base: String,
}

impl std::fmt::Debug for ProgressLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressLinks")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ProgressLinks {
    /// Links signed with `key`, on the page at `base_url` (e.g. `https://track.example.com`).
    pub fn new(key: Vec<u8>, base_url: &str) -> ProgressLinks {
        ProgressLinks {
            key,
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    fn mac(&self, id: &str, generation: u32) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(b"waystation progress link\0");
        mac.update(id.as_bytes());
        mac.update(b"\0");
        mac.update(&generation.to_be_bytes());
        mac
    }

    /// The token of generation `generation` of instance `id`'s link.
    pub fn token(&self, id: &str, generation: u32) -> String {
        let sig = self.mac(id, generation).finalize().into_bytes();
        let hex: String = sig[..SIGNATURE_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{id}.{generation}.{hex}")
    }

    /// The full link.
    pub fn url(&self, id: &str, generation: u32) -> String {
        format!("{}/p/{}", self.base, self.token(id, generation))
    }

    /// The instance and generation a token was signed for, or None for anything this key
    /// did not sign (compared in constant time).
    pub fn verify(&self, token: &str) -> Option<(String, u32)> {
        let mut parts = token.rsplitn(3, '.');
        let (sig, generation, id) = (parts.next()?, parts.next()?, parts.next()?);
        let generation: u32 = generation.parse().ok()?;
        if sig.len() != SIGNATURE_BYTES * 2 || id.is_empty() {
            return None;
        }
        let bytes: Vec<u8> = (0..SIGNATURE_BYTES)
            .map(|i| u8::from_str_radix(sig.get(i * 2..i * 2 + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        self.mac(id, generation)
            .verify_truncated_left(&bytes)
            .ok()
            .map(|()| (id.to_owned(), generation))
    }
}

/// What a progress link opens.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressPage {
    /// The page's content.
    Shown(CustomerProgress),
    /// The instance ended longer ago than links live.
    Expired,
    /// Not a link this server made, a revoked one, or one of a purged instance: all look
    /// the same from outside.
    Unknown,
}

/// The plugin host, adding the progress link to a notifier's default input.
pub(crate) struct Linking {
    pub(crate) plugins: Arc<dyn crate::Plugins>,
    pub(crate) links: Option<Arc<ProgressLinks>>,
    pub(crate) store: Arc<dyn Store>,
}

impl Linking {
    /// `input` with `instance.progress_link` when it is a notifier's default input.
    fn linked(&self, world: World, input: &Value) -> Option<Value> {
        let links = self.links.as_ref()?;
        if world != World::Notifier {
            return None;
        }
        let id = input.get("instance")?.get("id")?.as_str()?;
        // Running a step of this instance: its stored state has the generation (none yet
        // during its start).
        let generation = match self.store.instance(id) {
            Ok(state) => state.map_or(0, |s| s.progress_link),
            Err(e) => {
                tracing::warn!(instance = id, error = %e, "no progress link for the notifier: the store did not answer");
                return None;
            }
        };
        let mut input = input.clone();
        input["instance"]["progress_link"] = Value::String(links.url(id, generation));
        Some(input)
    }
}

impl PluginInvoker for Linking {
    fn invoke(
        &self,
        plugin: &PluginRef,
        world: World,
        input: &Value,
    ) -> Result<Value, PluginFailure> {
        match self.linked(world, input) {
            Some(linked) => self.plugins.invoke(plugin, world, &linked),
            None => self.plugins.invoke(plugin, world, input),
        }
    }

    fn invoke_reported(&self, plugin: &PluginRef, world: World, input: &Value) -> CallOutcome {
        match self.linked(world, input) {
            Some(linked) => self.plugins.invoke_reported(plugin, world, &linked),
            None => self.plugins.invoke_reported(plugin, world, input),
        }
    }
}

impl Runtime {
    /// Signs progress links with `links` from now on (the server sets it once at start).
    pub fn set_progress_links(&self, links: ProgressLinks) {
        let _ = self.progress_links.set(Arc::new(links));
    }

    fn links(&self) -> Result<&Arc<ProgressLinks>, RuntimeError> {
        self.progress_links
            .get()
            .ok_or_else(|| RuntimeError::Engine("progress links are not configured".into()))
    }

    /// The current progress link of instance `id`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; [`RuntimeError::Engine`] without a signing key.
    pub fn progress_link(&self, id: &str) -> Result<String, RuntimeError> {
        let links = self.links()?;
        let state = self
            .store
            .instance(id)?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "instance",
                id: id.to_owned(),
            })?;
        Ok(links.url(id, state.progress_link))
    }

    /// Revokes instance `id`'s progress link as `actor` (every link given out stops
    /// working) and returns the new one: one commit with a `progress_link_revoked` history
    /// entry, durable before the answer.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; store errors.
    pub async fn revoke_progress_link(
        &self,
        actor: &waystation_core::Actor,
        id: &str,
    ) -> Result<String, RuntimeError> {
        let links = self.links()?.clone();
        let url = {
            let _guard = self.locks.lock(id).await;
            let before = self
                .store
                .instance(id)?
                .ok_or_else(|| RuntimeError::NotFound {
                    what: "instance",
                    id: id.to_owned(),
                })?;
            let mut after = before.clone();
            after.progress_link = before.progress_link.wrapping_add(1);
            after.history_len += 1;
            let effects = [Effect::History(HistoryEntry {
                at: self.now(),
                event: HistoryEvent::ProgressLinkRevoked {
                    by: actor.name.clone(),
                    generation: after.progress_link,
                },
                actor: Some(actor.clone()),
            })];
            self.store.commit(&Commit {
                before: Some(&before),
                after: &after,
                effects: &effects,
                fired_timer: None,
                idempotency: None,
            })?;
            // A live instance page shows who revoked the link, as for any commit.
            self.changes
                .publish(&after, crate::ChangeKind::State, self.now());
            links.url(id, after.progress_link)
        };
        self.durability.durable().await?;
        Ok(url)
    }

    /// What the link `token` opens: the customer's view of its instance, unless the
    /// instance ended more than `expire_after` ago.
    ///
    /// # Errors
    /// Store errors, and a stored definition that no longer compiles.
    pub async fn progress_page(
        &self,
        token: &str,
        expire_after: TimeDelta,
    ) -> Result<ProgressPage, RuntimeError> {
        let Some((id, generation)) = self.links()?.verify(token) else {
            return Ok(ProgressPage::Unknown);
        };
        let Some(state) = self.store.instance(&id)? else {
            return Ok(ProgressPage::Unknown);
        };
        if state.progress_link != generation {
            return Ok(ProgressPage::Unknown);
        }
        let ended = state.status != Status::Running;
        if ended && state.updated_at + expire_after <= self.now() {
            return Ok(ProgressPage::Expired);
        }
        let wf = self.workflow(&state.workflow, Some(state.version)).await?;
        Ok(ProgressPage::Shown(customer_view(&wf.definition, &state)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_verifies_only_with_its_key_and_generation() {
        let links = ProgressLinks::new(b"key one".to_vec(), "https://track.example.com/");
        let token = links.token("01HX", 0);
        assert_eq!(links.verify(&token), Some(("01HX".to_owned(), 0)));
        assert!(links
            .url("01HX", 0)
            .starts_with("https://track.example.com/p/01HX.0."));
        let other = ProgressLinks::new(b"key two".to_vec(), "");
        assert_eq!(other.verify(&token), None, "another key");
        let next = token.replacen(".0.", ".1.", 1);
        assert_eq!(links.verify(&next), None, "another generation");
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('0') { '1' } else { '0' });
        assert_eq!(links.verify(&forged), None, "a changed signature");
        for junk in [
            "",
            "x",
            "a.b.c",
            "01HX.0.zz",
            "01HX.-1.00",
            ".0.00000000000000000000000000000000",
        ] {
            assert_eq!(links.verify(junk), None, "{junk:?}");
        }
    }
}
