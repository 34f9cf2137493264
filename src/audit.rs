//! The audit writer: entries are queued without blocking the request path and
//! written in batches, one transaction per batch. `flush` waits until what was
//! queued before it is on disk; shutdown flushes everything.

use crate::store::Store;
use crate::store::audit::AuditEntry;
use tokio::sync::{mpsc, oneshot};

const BATCH: usize = 512;

enum Message {
    Entry(Box<AuditEntry>),
    Flush(oneshot::Sender<()>),
}

/// A handle for recording audit entries; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::UnboundedSender<Message>,
}

impl AuditLog {
    /// Starts the writer task for `store`.
    pub fn spawn(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(store, rx));
        (Self { tx }, task)
    }

    /// Queues an entry.
    pub fn record(&self, entry: AuditEntry) {
        if self.tx.send(Message::Entry(Box::new(entry))).is_err() {
            tracing::error!("audit writer has stopped; entry not recorded");
        }
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Store, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut batch: Vec<AuditEntry> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Entry(entry) => batch.push(*entry),
                Message::Flush(done) => waiting.push(done),
            }
            if batch.len() >= BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            write(&store, &mut batch).await;
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
    if !batch.is_empty() {
        write(&store, &mut batch).await;
    }
}

async fn write(store: &Store, batch: &mut Vec<AuditEntry>) {
    // A failed write is retried a few times; audit entries are not dropped quietly.
    for attempt in 1..=5u32 {
        match store.append_audit(batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, attempt, entries = batch.len(), "audit write failed");
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                    .await;
            }
        }
    }
    tracing::error!(
        entries = batch.len(),
        "audit entries could not be written and were dropped"
    );
    batch.clear();
}
