//! `serve`: builds everything from the configuration, binds the listeners, runs until
//! SIGINT/SIGTERM, then stops in order: stop accepting, let in-flight requests finish,
//! stop the workers, flush the store. Nothing depends on this module.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::services::Services;
use crate::shutdown::{OsSignals, ShutdownTrigger};

/// A running server, for tests and `serve`.
pub struct Running {
    /// The address the HTTP listener bound (the real port when 0 was asked).
    pub http_addr: SocketAddr,
    /// The address the bounce listener bound, when `inbound.listen` is set.
    pub inbound_addr: Option<SocketAddr>,
    /// The control socket other commands reach this server through.
    pub control_socket: std::path::PathBuf,
    trigger: ShutdownTrigger,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: tokio::task::JoinHandle<anyhow::Result<()>>,
    webhooks: tokio::task::JoinHandle<()>,
    services: Services,
}

impl Running {
    /// Stops the server and waits until the store is flushed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.trigger.trigger();
        self.http.await.context("the HTTP task panicked")??;
        self.worker
            .await
            .context("the delivery worker panicked")??;
        self.webhooks.await.context("the webhook sender panicked")?;
        // Everything acknowledged was flushed before its acknowledgement, so a last
        // flush that fails (a full disk) loses none of it: what it would have saved
        // (delivery outcomes since the last flush) is tried again on the next start,
        // at least once. Stopping on request is then still a clean stop (exit 0).
        match self.services.store.flush().await {
            Ok(()) => tracing::info!("stopped; store flushed"),
            Err(e) => tracing::error!(
                error = %e,
                "stopped; the last flush failed: acknowledged mail was already on disk, \
                 and deliveries since the last flush will be tried again on start"
            ),
        }
        Ok(())
    }
}

/// Opens the store, binds every listener and starts every task.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listen = config.server.listen;
    let services = Services::open(config).await?;
    // Flows follow their mail: the queue tells them when a message is finished.
    services
        .queue
        .lifecycle
        .subscribe(crate::flow::follow_messages(services.store.clone()));
    // Read before anything binds: a webhook secret that cannot be read stops the start.
    let webhooks = crate::webhooks::Sender::new(services.store.clone(), &services.config.webhooks)?;
    let trigger = ShutdownTrigger::new();

    let socket = crate::control::serve_socket(services.clone(), trigger.subscribe())
        .await
        .with_context(|| {
            format!(
                "cannot create the control socket in {}",
                services.config.store.path.display()
            )
        })?;
    tracing::info!(socket = %socket.display(), "control socket ready");

    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
    let http_addr = listener.local_addr()?;

    let mut inbound_addr = None;
    if let Some(addr) = services.config.inbound.listen {
        let inbound = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (inbound.listen)"))?;
        let bound = inbound.local_addr()?;
        inbound_addr = Some(bound);
        tracing::info!(addr = %bound, "bounce listener on smtp://{bound}");
        tokio::spawn(crate::inbound::run(
            inbound,
            services.clone(),
            trigger.subscribe(),
        ));
    }
    tokio::spawn(crate::retention::run(
        services.store.clone(),
        services.config.store.retention,
        trigger.subscribe(),
    ));
    // Logged once every listener is bound: tests and scripts take this line as "ready".
    tracing::info!(addr = %http_addr, "http listening on http://{http_addr}");
    // The delivery worker runs on a thread of its own, with its own runtime: on the
    // shared runtime its SMTP connections waited behind every API request for each
    // reply, and under load delivery fell to half the enqueue rate (issue 4). A thread
    // of its own gets its share of the CPU from the kernel instead.
    let worker = {
        let (services, stop, trigger) = (services.clone(), trigger.subscribe(), trigger.clone());
        tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("delivery")
                .build()
                .context("cannot start the delivery worker's runtime")?;
            let result = runtime.block_on(crate::queue::worker::run(services.queue, stop));
            if let Err(e) = &result {
                // A gateway that takes mail it cannot send is worse than one that is
                // down: say why, and stop.
                tracing::error!(error = %format!("{e:#}"), "the delivery worker stopped; serve stops too");
                trigger.trigger();
            }
            result
        })
    };
    tracing::info!(mode = ?services.config.delivery.mode, "delivery worker started");

    tokio::spawn(expire_flows(services.store.clone(), trigger.subscribe()));
    let webhooks = tokio::spawn(webhooks.run(trigger.subscribe()));

    let router = crate::web::router(services.clone());
    let limits = http_limits(&services.config.server);
    let http = tokio::spawn(crate::web::server::run(
        listener,
        router,
        limits,
        trigger.subscribe(),
    ));
    Ok(Running {
        http_addr,
        inbound_addr,
        control_socket: socket,
        trigger,
        http,
        worker,
        webhooks,
        services,
    })
}

/// Every half minute, makes the flows whose link lifetime ended `expired`, so that the
/// application hears `flow.expired` without asking.
async fn expire_flows(store: crate::store::Store, mut stop: crate::shutdown::Shutdown) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {
                match crate::flow::expire_due(&store, crate::domain::now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(flows = n, "flows expired"),
                    Err(e) => tracing::warn!(error = %e, "cannot mark expired flows; trying again later"),
                }
            }
        }
    }
}

/// The HTTP limits of the configuration, with the open-file limit raised and the
/// connection cap lowered, with a warning, if the descriptors would not hold it.
fn http_limits(server: &crate::config::ServerConfig) -> crate::web::server::Limits {
    use crate::web::server::{Limits, fitting_cap, raise_open_file_limit};
    let mut limits = Limits::from_config(server);
    match raise_open_file_limit() {
        Ok(open_files) => {
            let cap = fitting_cap(limits.max_connections, open_files);
            if cap < limits.max_connections {
                tracing::warn!(
                    open_files,
                    wanted = limits.max_connections,
                    cap,
                    "server.max_connections lowered to fit the open-file limit (ulimit -n)"
                );
            }
            limits.max_connections = cap;
            tracing::info!(open_files, max_connections = cap, "http connection cap");
        }
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
    limits
}

/// `mailgate serve`: start, wait for a signal, stop cleanly.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let mut signals = OsSignals::install().context("cannot install signal handlers")?;
    let running = start(config).await?;
    signals.recv().await;
    running.stop().await
}
