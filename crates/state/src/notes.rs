//! Wake-up hints for callers waiting on a claim: a release is announced to waiters
//! in this process at once (and, for PostgreSQL, to other processes through
//! `LISTEN`/`NOTIFY`). A hint only shortens a wait: waiters re-check the store, and
//! a missed hint costs at most one polling interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};

use crate::types::TargetId;

/// Announcements of released claims, by account key.
#[derive(Clone)]
pub(crate) struct ClaimNotes {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for ClaimNotes {
    fn default() -> Self {
        Self::new()
    }
}

impl ClaimNotes {
    pub(crate) fn new() -> Self {
        let (tx, _) = broadcast::channel(256);
        Self { tx }
    }

    /// The key of an account in announcements (also the PostgreSQL payload).
    pub(crate) fn key(id: &TargetId) -> String {
        format!("{}\u{1f}{}\u{1f}{}", id.kind(), id.scope(), id.account())
    }

    /// Announces that the claim on the account with this key was released.
    pub(crate) fn announce(&self, key: &str) {
        // No receiver: nobody waits, nothing to do.
        let _ = self.tx.send(Arc::from(key));
    }

    pub(crate) fn sender(&self) -> broadcast::Sender<Arc<str>> {
        self.tx.clone()
    }

    /// Waits up to `timeout` for an announcement about `id` (or for missed ones:
    /// a lagging receiver returns at once, to re-check).
    pub(crate) async fn wait(&self, id: &TargetId, timeout: Duration) {
        let mut rx = self.tx.subscribe();
        let key = Self::key(id);
        let _ = tokio::time::timeout(timeout, async move {
            loop {
                match rx.recv().await {
                    Ok(k) if *k == *key => return,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_on_its_account_only() {
        let notes = ClaimNotes::new();
        let a = TargetId::new("ad", "x", "a").unwrap();
        let b = TargetId::new("ad", "x", "b").unwrap();
        let n = notes.clone();
        let waiter = tokio::spawn(async move {
            let t = tokio::time::Instant::now();
            n.wait(&a, Duration::from_secs(30)).await;
            t.elapsed()
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        notes.announce(&ClaimNotes::key(&b));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "another account's release is not ours"
        );
        notes.announce(&ClaimNotes::key(&TargetId::new("ad", "x", "a").unwrap()));
        let waited = waiter.await.unwrap();
        assert!(waited < Duration::from_secs(30), "woken, not timed out");
    }

    #[tokio::test]
    async fn without_an_announcement_the_wait_times_out() {
        let notes = ClaimNotes::new();
        let a = TargetId::new("ad", "x", "a").unwrap();
        let t = tokio::time::Instant::now();
        notes.wait(&a, Duration::from_millis(30)).await;
        assert!(t.elapsed() >= Duration::from_millis(30));
    }
}
