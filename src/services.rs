//! The handles every entry point shares: configuration, store, composer, VERP key and
//! the queue. Built once by `app` (for `serve`) or by the command line
//! (when no server runs), so the HTTP API, the control socket and a direct CLI call all
//! run the same code against the same state.

use std::sync::Arc;

use anyhow::Context;
use rand::RngCore;

use crate::compose::{ComposeSettings, Composer};
use crate::config::Config;
use crate::dkim::{Algorithm, DkimKeyConfig, Signers};
use crate::queue::Queue;
use crate::store::Store;
use crate::verp::VerpKey;

/// Shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub composer: Arc<Composer>,
    pub verp: VerpKey,
    /// Signs every message at enqueue, with every configured key.
    pub signers: Arc<Signers>,
    /// The keys in use: the configured ones, or the development key.
    pub dkim_keys: Arc<Vec<DkimKeyConfig>>,
    /// The outgoing queue: enqueue, the controls, and the owner of message status.
    pub queue: Queue,
}

impl Services {
    /// Opens the store named in the configuration and builds everything that depends
    /// only on configuration and store.
    pub async fn open(config: Config) -> anyhow::Result<Services> {
        let store = Store::open(&config.store.path, config.store.fsync)?;
        let composer = Composer::new(ComposeSettings::from_config(&config))
            .map_err(|e| all_of("templates", &e))?;
        let verp = load_verp_key(&config, &store).await?;
        let dkim_keys = signing_keys(&config, true)?;
        let signers = Arc::new(Signers::load(&dkim_keys).map_err(|e| all_of("DKIM", &e))?);
        let config = Arc::new(config);
        let composer = Arc::new(composer);
        let queue = Queue::new(
            config.clone(),
            store.clone(),
            composer.clone(),
            signers.clone(),
            verp.clone(),
        );
        Ok(Services {
            config,
            store,
            composer,
            verp,
            signers,
            dkim_keys: Arc::new(dkim_keys),
            queue,
        })
    }
}

/// One error holding every problem of a list, so the operator sees them all at once.
fn all_of<E: std::fmt::Display>(what: &str, errors: &[E]) -> anyhow::Error {
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    anyhow::anyhow!("{what}: {}", text.join("; "))
}

/// The VERP secret: from `sender.verp_secret_file` when set, else generated once and
/// kept in the store, so return paths stay valid across restarts.
async fn load_verp_key(config: &Config, store: &Store) -> anyhow::Result<VerpKey> {
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
    if let Some(hex_secret) = store.setting::<String>("verp_secret").await?
        && let Ok(secret) = hex::decode(hex_secret)
    {
        return Ok(VerpKey::new(secret));
    }
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    store
        .set_setting("verp_secret", &hex::encode(&secret))
        .await?;
    store.flush().await?;
    Ok(VerpKey::new(secret))
}

/// Where the development key lives: beside the store, under the data folder.
pub fn dev_key_path(config: &Config) -> std::path::PathBuf {
    let data = config
        .store
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    data.join("dkim-dev").join("mailgate-dev.pem")
}

/// The configured keys; with none, a development Ed25519 key for the From domain,
/// generated on first use, so a fresh install signs its mail from the start.
///
/// With `generate` false, a missing development key gives an empty list.
pub fn signing_keys(config: &Config, generate: bool) -> anyhow::Result<Vec<DkimKeyConfig>> {
    if !config.dkim.is_empty() {
        return Ok(config.dkim.clone());
    }
    let path = dev_key_path(config);
    let dir = path.parent().expect("the key path has a folder");
    if !path.exists() && !generate {
        return Ok(Vec::new());
    }
    if !path.exists() {
        let key = crate::dkim::generate(Algorithm::Ed25519, crate::dkim::RSA_DEFAULT_BITS)?;
        crate::dkim::write_key_file(dir, "mailgate-dev", &key)?;
        tracing::warn!(
            key = %path.display(),
            "no [[dkim]] key is configured: generated a development Ed25519 key; \
             `mailgate dns` prints its record, and `mailgate dkim keygen` makes a real one"
        );
    }
    Ok(vec![DkimKeyConfig {
        domain: config.sender.from.address.domain().to_string(),
        selector: "mailgate-dev".into(),
        algorithm: Algorithm::Ed25519,
        key_file: path,
    }])
}
