//! The handles every entry point shares: configuration, store, composer, VERP key and
//! the queue's wake-up bell. Built once by `app` (for `serve`) or by the command line
//! (when no server runs), so the HTTP API, the control socket and a direct CLI call all
//! run the same code against the same state.

use std::sync::Arc;

use anyhow::Context;
use rand::RngCore;
use tokio::sync::Notify;

use crate::compose::Composer;
use crate::config::Config;
use crate::store::{Store, TreeName};
use crate::verp::VerpKey;

/// Shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub composer: Arc<Composer>,
    pub verp: VerpKey,
    /// Rung after enqueue so the worker looks at the queue at once.
    pub queue_bell: Arc<Notify>,
}

impl Services {
    /// Opens the store named in the configuration and builds everything that depends
    /// only on configuration and store.
    pub fn open(config: Config) -> anyhow::Result<Services> {
        let store = Store::open(&config.store.path, config.store.fsync)?;
        let composer = Composer::new(&config).map_err(|errors| {
            anyhow::anyhow!(
                "templates: {}",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        let verp = load_verp_key(&config, &store)?;
        Ok(Services {
            config: Arc::new(config),
            store,
            composer: Arc::new(composer),
            verp,
            queue_bell: Arc::new(Notify::new()),
        })
    }
}

/// The VERP secret: from `sender.verp_secret_file` when set, else generated once and
/// kept in the store, so return paths stay valid across restarts.
fn load_verp_key(config: &Config, store: &Store) -> anyhow::Result<VerpKey> {
    if let Some(path) = &config.sender.verp_secret_file {
        let secret = std::fs::read(path)
            .with_context(|| format!("sender.verp_secret_file: cannot read {}", path.display()))?;
        anyhow::ensure!(
            secret.len() >= 16,
            "sender.verp_secret_file: {} holds fewer than 16 bytes",
            path.display()
        );
        return Ok(VerpKey::new(secret));
    }
    if let Some(hex_secret) = store.get_json::<String>(TreeName::Meta, b"verp_secret")?
        && let Ok(secret) = hex::decode(hex_secret)
    {
        return Ok(VerpKey::new(secret));
    }
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    store.put_json(TreeName::Meta, b"verp_secret", &hex::encode(&secret))?;
    store.flush_now()?;
    Ok(VerpKey::new(secret))
}
