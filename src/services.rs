//! The handles every entry point shares: configuration and store, later the composer,
//! signers and queue. Built once by `app` (for `serve`) or by the command line (when no
//! server runs), so the HTTP API, the control socket and a direct CLI call all run the
//! same code against the same state.

use std::sync::Arc;

use crate::config::Config;
use crate::store::Store;

/// Shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
}

impl Services {
    /// Opens the store named in the configuration.
    pub fn open(config: Config) -> Result<Services, crate::store::StoreError> {
        let store = Store::open(&config.store.path, config.store.fsync)?;
        Ok(Services {
            config: Arc::new(config),
            store,
        })
    }
}
