//! The journal's two tasks: the group-commit writer and the checkpoint ticker.

use super::*;

/// The group-commit loop: takes what is queued (up to `max_batch`), commits it in one
/// transaction, answers each caller with its index, and repeats.
pub(super) async fn run_writer(
    store: Store,
    clock: SharedClock,
    mut receiver: mpsc::Receiver<Request>,
    max_batch: usize,
) {
    let leaf = |seq: u64, prev: &Hash, row: &NewJournalRow| {
        entry::entry_leaf_hash(
            seq,
            row.recorded_at_us,
            prev,
            &row.payload_sha256,
            &row.kind,
        )
    };
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let now = entry::to_micros(clock.now());
        let (rows, replies): (Vec<NewJournalRow>, Vec<_>) = batch
            .drain(..)
            .map(|mut request| {
                request.row.recorded_at_us = now;
                (request.row, request.reply)
            })
            .unzip();
        match store.journal_append(&rows, &leaf).await {
            Ok(first_index) => {
                for (offset, reply) in replies.into_iter().enumerate() {
                    // A caller that gave up waiting is no reason to stop.
                    let _ = reply.send(Ok(first_index + offset as u64));
                }
            }
            Err(error) => {
                tracing::error!(error = %crate::error::chain(&error), "journal append failed");
                let reason = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(JournalError::AppendFailed(reason.clone())));
                }
            }
        }
    }
}

/// Signs a checkpoint every `interval` when the log grew; ends with the journal.
pub(super) async fn run_ticker(inner: Weak<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { break };
        if let Err(error) = inner.checkpoint_if_grown().await {
            tracing::warn!(error = %crate::error::chain(&error), "periodic journal checkpoint failed");
        }
    }
}
