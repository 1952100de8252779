//! [`ChatLog`]: every chat line a room sends (and every deletion) goes to
//! the store's chat log, for replay beside the broadcast's recordings
//! (`GET /api/videos/{id}/chat`).
//!
//! Invariants: live chat never waits for the database: an entry is offered
//! to a bounded queue (`[limits] chat_log_queue`) and, when it is full or a
//! write fails, dropped and counted (`relaycast_chat_log_dropped_total`);
//! one writer task applies entries in the order they were offered, up to
//! [`BATCH`] per transaction, so a deletion never precedes its line. A
//! node that records nothing logs nothing ([`ChatLog::off`]).

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::store::{ChatLogEntry, Store};

/// Entries one transaction writes at most.
pub const BATCH: usize = 128;

#[derive(Clone)]
pub struct ChatLog {
    /// `None`: nothing is logged.
    queue: Option<mpsc::Sender<ChatLogEntry>>,
    dropped: Counter,
}

impl ChatLog {
    /// Starts the writer (on the current tokio runtime).
    pub fn spawn(store: Store, queue: usize, dropped: Counter) -> ChatLog {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(write(store, rx, dropped.clone()));
        ChatLog {
            queue: Some(tx),
            dropped,
        }
    }

    /// A log that keeps nothing (there are no recordings to replay beside).
    pub fn off() -> ChatLog {
        ChatLog {
            queue: None,
            dropped: Counter::default(),
        }
    }

    /// Queues an entry; never waits.
    pub fn offer(&self, entry: ChatLogEntry) {
        if let Some(queue) = &self.queue {
            if queue.try_send(entry).is_err() {
                self.dropped.inc();
            }
        }
    }
}

async fn write(store: Store, mut rx: mpsc::Receiver<ChatLogEntry>, dropped: Counter) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(e) = store.log_chat(&batch).await {
            tracing::warn!(lines = batch.len(), "chat log: {e}");
            dropped.inc_by(batch.len() as u64);
        }
        batch.clear();
    }
}
