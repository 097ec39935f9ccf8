//! Certificate status reads from the store: concurrent lookups batched into one
//! query, and the status generation relied on within its lease so that a cached
//! answer never outlives a revocation it has not seen.

use super::*;

/// The most serials one coalesced status read asks for.
pub(super) const MAX_STATUS_BATCH: usize = 256;

/// A certificate's status, the status generation it is at least as new as,
/// and when the query that read it started.
pub(super) type ReadStatus = (CertificateStatus, i64, Instant);

/// A status read waiting for its query, and where its answer goes.
pub(super) type PendingRead = (
    String,
    tokio::sync::oneshot::Sender<Result<ReadStatus, String>>,
);

/// Coalesces the status reads of concurrent requests into one query. A read
/// is answered by a query that started after it was asked, so a revocation
/// committed before a request arrived is always seen: each request waits for
/// the reader, and whoever gets it reads all the serials asked so far.
#[derive(Debug, Default)]
pub(super) struct StatusReads {
    pub(super) pending: Mutex<Vec<PendingRead>>,
    pub(super) reader: tokio::sync::Mutex<()>,
    /// Status queries made (a coalesced read is one), for the bench and tests.
    pub(super) queries: AtomicU64,
}

impl StatusReads {
    pub(super) fn pending(&self) -> std::sync::MutexGuard<'_, Vec<PendingRead>> {
        match self.pending.lock() {
            Ok(pending) => pending,
            // The list stays consistent whatever panicked: take it as it is.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(super) async fn read(&self, store: &Store, serial: String) -> Result<ReadStatus, String> {
        let (sender, mut answer) = tokio::sync::oneshot::channel();
        self.pending().push((serial.clone(), sender));
        loop {
            tokio::select! {
                biased;
                answered = &mut answer => {
                    return match answered {
                        Ok(result) => result,
                        // The request that read for this one was dropped
                        // mid-query (its client went away): read alone.
                        Err(_) => {
                            let started = Instant::now();
                            self.queries.fetch_add(1, Ordering::Relaxed);
                            match store.certificate_statuses(std::slice::from_ref(&serial)).await {
                                Ok(mut read) => match read.statuses.pop() {
                                    Some(status) => Ok((status, read.generation, started)),
                                    None => Err(format!("no status read for {serial}")),
                                },
                                Err(error) => Err(error.to_string()),
                            }
                        }
                    };
                }
                _reading = self.reader.lock() => {
                    let batch: Vec<PendingRead> = {
                        let mut pending = self.pending();
                        let take = pending.len().min(MAX_STATUS_BATCH);
                        pending.drain(..take).collect()
                    };
                    if batch.is_empty() {
                        // An earlier reader took this one; its answer is sent.
                        continue;
                    }
                    let serials: Vec<String> = batch.iter().map(|(s, _)| s.clone()).collect();
                    let started = Instant::now();
                    self.queries.fetch_add(1, Ordering::Relaxed);
                    match store.certificate_statuses(&serials).await {
                        Ok(read) => {
                            for ((_, to), status) in batch.into_iter().zip(read.statuses) {
                                let _ = to.send(Ok((status, read.generation, started)));
                            }
                        }
                        Err(error) => {
                            let error = error.to_string();
                            for (_, to) in batch {
                                let _ = to.send(Err(error.clone()));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// This instance's view of the status generation: every change committed
/// before `seen_at` is at most `generation` (both only grow, so that stays true).
#[derive(Debug, Default)]
pub(super) struct GenerationView {
    pub(super) generation: i64,
    pub(super) seen_at: Option<Instant>,
}

impl GenerationView {
    /// A read that started at `at` found `generation`.
    pub(super) fn saw(&mut self, generation: i64, at: Instant) {
        self.generation = self.generation.max(generation);
        self.seen_at = Some(self.seen_at.map_or(at, |seen| seen.max(at)));
    }

    /// The generation, while it may be relied on at `now`; and whether it is
    /// time to read it again ahead of the lease's end.
    pub(super) fn current(&self, now: Instant, lease: Duration) -> Option<(i64, bool)> {
        let age = now.saturating_duration_since(self.seen_at?);
        (age < lease).then_some((self.generation, age >= lease / 2))
    }
}
