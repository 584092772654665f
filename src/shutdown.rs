//! Graceful shutdown, as in mini-redis: one broadcast tells every task to stop, and each
//! task holds a [`Shutdown`] it can wait on. SIGINT and SIGTERM both trigger it.

use tokio::sync::broadcast;

/// Sends the stop signal to every [`Shutdown`] made from it.
#[derive(Clone)]
pub struct ShutdownTrigger {
    tx: broadcast::Sender<()>,
}

/// Waits for the stop signal.
pub struct Shutdown {
    stopped: bool,
    rx: broadcast::Receiver<()>,
}

impl ShutdownTrigger {
    pub fn new() -> ShutdownTrigger {
        let (tx, _) = broadcast::channel(1);
        ShutdownTrigger { tx }
    }

    /// A new receiver of the signal.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            stopped: false,
            rx: self.tx.subscribe(),
        }
    }

    /// Tells every task to stop.
    pub fn trigger(&self) {
        let _ = self.tx.send(());
    }
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        ShutdownTrigger::new()
    }
}

impl Shutdown {
    /// Returns once the signal was sent (at once if it already was).
    pub async fn recv(&mut self) {
        if self.stopped {
            return;
        }
        let _ = self.rx.recv().await;
        self.stopped = true;
    }

    /// The listener's next connection, or `None` once the signal is sent. A failed
    /// accept (out of file descriptors, a connection reset before it was taken) is not
    /// fatal: it is logged under `what` and retried after a pause, so a full descriptor
    /// table does not make the loop spin.
    pub async fn accept(
        &mut self,
        listener: &tokio::net::TcpListener,
        what: &str,
    ) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
        loop {
            tokio::select! {
                _ = self.recv() => return None,
                accepted = listener.accept() => match accepted {
                    Ok(a) => return Some(a),
                    Err(e) => {
                        tracing::warn!(error = %e, "{what}: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}

/// SIGINT and SIGTERM handlers. Install them before announcing readiness: a signal that
/// arrives before installation would kill the process without a flush.
pub struct OsSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl OsSignals {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<OsSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(OsSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received, stopping"),
            _ = self.int.recv() => tracing::info!("SIGINT received, stopping"),
        }
    }
}
