//! The handles every entry point shares: configuration, store, composer, VERP key, and
//! the layer handles built from them (the queue, the flows, bounce intake), each of
//! which holds only what its layer touches. Built once by `app` (for `serve`) or by the
//! command line (when no server runs), so the HTTP API, the control socket and a direct
//! CLI call all run the same code against the same state. Only the entry points (web,
//! control, inbound, app, cli) hold the whole bag; the layers below take their handle.

use std::sync::Arc;

use anyhow::Context;
use rand::RngCore;

use crate::compose::{ComposeSettings, Composer};
use crate::config::{Config, StoreBackend};
use crate::dkim::{Algorithm, DkimKeyConfig, Signers};
use crate::flow::Flows;
use crate::intake::Intake;
use crate::queue::Queue;
use crate::store::Store;
use crate::store::postgres::Postgres;
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
    /// Setup and reset flows.
    pub flows: Flows,
    /// Bounce intake, whichever door a report comes through.
    pub intake: Intake,
}

/// The store alone, for handlers that read nothing else (`/metrics`).
impl axum::extract::FromRef<Services> for Store {
    fn from_ref(services: &Services) -> Store {
        services.store.clone()
    }
}

impl Services {
    /// Opens the store named in the configuration and builds everything that depends
    /// only on configuration and store.
    pub async fn open(config: Config) -> anyhow::Result<Services> {
        let store = open_store(&config).await?;
        if store.shared() && config.dkim.is_empty() {
            share_dev_key(&config, &store).await?;
        }
        let composer = Composer::new(ComposeSettings::from_config(&config))
            .map_err(|e| all_of("templates", &e))?;
        let verp = load_verp_key(&config, &store).await?;
        count_completed_flows_once(&store).await?;
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
        let flows = Flows {
            store: store.clone(),
            queue: queue.clone(),
            config: config.clone(),
        };
        let intake = Intake {
            store: store.clone(),
            lifecycle: queue.lifecycle.clone(),
            verp: verp.clone(),
            bounce_domain: config.sender.bounce_domain.clone(),
            hostname: config.sender.hostname.clone(),
        };
        Ok(Services {
            config,
            store,
            composer,
            verp,
            signers,
            dkim_keys: Arc::new(dkim_keys),
            queue,
            flows,
            intake,
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
    // Nodes starting together on one database all take the first secret stored.
    let stored: String = store
        .setting_or_insert("verp_secret", &hex::encode(&secret))
        .await?;
    store.flush().await?;
    let secret = hex::decode(&stored).context("the stored VERP secret is not hex")?;
    Ok(VerpKey::new(secret))
}

/// Starts the completed-flows counter of a store made before flows were counted as
/// they complete: the flows completed so far are counted once. Of nodes starting
/// together on one database, the one whose mark is stored counts.
async fn count_completed_flows_once(store: &Store) -> anyhow::Result<()> {
    if store
        .setting::<String>("flows_completed_counted")
        .await?
        .is_some()
    {
        return Ok(());
    }
    let mine = crate::secrets::random_hex::<8>();
    let stored: String = store
        .setting_or_insert("flows_completed_counted", &mine)
        .await?;
    if stored == mine {
        let n = store
            .count_flows_in_state(crate::domain::FlowState::Completed)
            .await?;
        if n > 0 {
            store.counter_add("flows", "completed", n).await?;
        }
        store.flush().await?;
    }
    Ok(())
}

/// Opens the configured backend: the sled store in `store.path`, or the PostgreSQL
/// database at `store.url`, migrated to this binary's schema (under the migration
/// lock, so nodes starting together do not race; a newer schema is refused). A
/// PostgreSQL node still keeps its control socket and development key in `store.path`.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    match &config.store.backend {
        StoreBackend::Sled => Ok(Store::open(&config.store.path, config.store.fsync)?),
        StoreBackend::Postgres(settings) => {
            create_private_dir(&config.store.path).with_context(|| {
                format!("store.path: cannot create {}", config.store.path.display())
            })?;
            let lock = lock_node_folder(&config.store.path)?;
            let pg = Postgres::connect(settings).await?;
            pg.hold(lock);
            pg.migrate().await?;
            Ok(Store::new(Arc::new(pg)))
        }
    }
}

/// Locks `store.path` for the store being opened: a node's folder (its control
/// socket, its development key) is its own, as a sled store's folder is, so a second
/// node started with the same folder is refused by name.
fn lock_node_folder(folder: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = folder.join("node.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("store.path: cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(crate::store::StoreError::Locked {
            path: folder.to_path_buf(),
        }
        .into()),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("store.path: cannot lock {}", path.display()))
        }
    }
}

fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// With no configured key, every node on a shared store signs with one development
/// key, kept in the database (a node's own key under the same selector would fail
/// DKIM for the mail of every other node): the first node to start stores its key,
/// the others write that one to their own `dev_key_path`.
async fn share_dev_key(config: &Config, store: &Store) -> anyhow::Result<()> {
    let path = dev_key_path(config);
    let had_one = path.exists();
    let mine = if had_one {
        std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the development key {}", path.display()))?
    } else {
        crate::dkim::generate(Algorithm::Ed25519, crate::dkim::RSA_DEFAULT_BITS)?.private_pem
    };
    let shared: String = store.setting_or_insert("dkim_dev_key", &mine).await?;
    store.flush().await?;
    if shared == mine && !had_one {
        tracing::warn!(
            key = %path.display(),
            "no [[dkim]] key is configured: generated a development Ed25519 key, kept in the \
             database for every node; `mailgate dns` prints its record, and `mailgate dkim \
             keygen` makes a real one"
        );
    }
    if !path.exists() || shared != mine {
        let public_key_b64 =
            crate::dkim::public_key_from_private(Algorithm::Ed25519, shared.as_bytes())
                .context("the development key stored in the database is not a key")?;
        let key = crate::dkim::GeneratedKey {
            algorithm: Algorithm::Ed25519,
            private_pem: shared,
            public_key_b64,
        };
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot replace {}", path.display()))?;
        }
        let dir = path.parent().expect("the key path has a folder");
        crate::dkim::write_key_file(dir, "mailgate-dev", &key)?;
    }
    Ok(())
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
