use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use rag_api::{Current, Loaded};
use rag_grpc::{Rebuild, Serving};

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (overrides `query.listen`); port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin HTTP address for /metrics, /healthz and /readyz (overrides `query.admin_listen`).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// HTTP address for the JSON API, the OpenAI-compatible endpoint and the chat page
    /// (overrides `query.http_listen`); port 0 picks a free port.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
}

/// Reads the configuration again, as at start-up (file, environment, flags).
pub type Reload = Arc<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

pub async fn run(config: Config, args: ServeArgs, reload: Reload) -> anyhow::Result<()> {
    let addr = args.listen.unwrap_or(config.query.listeners.listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // Checked before anything loads: a service that would be open to the network without keys
    // does not start.
    let gate = Arc::new(rag_auth::Gate::from_config(&config.auth, local)?);
    let tls = crate::tls::server(&config.tls)?;
    if gate.is_open() {
        tracing::warn!(%local, "authentication is off (auth.enabled = false): local use only");
    } else if tls.is_none() && !local.ip().is_loopback() {
        tracing::warn!(%local, "API keys travel in clear text: configure [tls] cert_file and key_file");
    }
    let (ready, ready_rx) = tokio::sync::watch::channel(false);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };

    let admin = match args.admin_listen.or(config.query.listeners.admin_listen) {
        Some(addr) => {
            let metrics = rag_admin::install_recorder()?;
            rag_grpc::describe_metrics();
            rag_http::describe_metrics();
            rag_listen::describe();
            rag_engine::metrics::describe();
            rag_ingest::counters::describe();
            let admin_listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (admin)"))?;
            let admin_local = admin_listener.local_addr()?;
            // One line per listener on stdout with the real address, for scripts and tests
            // that asked for port 0.
            println!("rag: admin listening on {admin_local}");
            let admin = rag_admin::serve(admin_listener, metrics, ready_rx, shutdown());
            // Metrics are not worth stopping the service for: a failed listener is logged.
            Some(tokio::spawn(async move {
                if let Err(e) = admin.await {
                    tracing::error!(error = %e, "admin listener stopped");
                }
            }))
        }
        None => None,
    };
    let current = Arc::new(Current::default());
    let http = match args.http_listen.or(config.query.listeners.http_listen) {
        Some(addr) => {
            let http_listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (HTTP)"))?;
            let http_local = http_listener.local_addr()?;
            // The same rule as the gRPC port: no keys, no listening beyond loopback.
            rag_auth::Gate::from_config(&config.auth, http_local)?;
            if tls.is_none() && !gate.is_open() && !http_local.ip().is_loopback() {
                tracing::warn!(%http_local, "API keys travel in clear text: configure [tls] cert_file and key_file");
            }
            println!("rag: http listening on {http_local}");
            let mut state =
                rag_http::Http::new(current.clone(), gate.clone(), config.data_dir.clone());
            // Feedback lines stop where the store's writes stop: at its disk reserve.
            state.feedback = std::sync::Arc::new(
                rag_http::feedback::Log::new(config.data_dir.clone())
                    .with_reserve(config.store.min_free_mb.saturating_mul(1_000_000)),
            );
            let served = rag_http::serve(
                http_listener,
                state,
                config.connections.clone(),
                crate::tls::http_server(&config.tls)?,
                shutdown(),
            );
            Some(tokio::spawn(async move {
                if let Err(e) = served.await {
                    tracing::error!(error = %e, "HTTP listener stopped");
                }
            }))
        }
        None => None,
    };
    println!("rag: listening on {local}");
    std::io::stdout().flush()?;
    tracing::info!(%local, "listening; loading models");

    // The embedded store is this process's alone, so it is rebuilt here when asked (Reindex);
    // a Qdrant server's is rebuilt by `rag reindex` beside the running services.
    let rebuild =
        (!config.store().shared()).then(|| rebuild(reload, config.store(), current.clone()));
    tokio::spawn(build_indexes(current.clone()));
    let limits = config.connections.clone();
    let load = async move { load(config).await.map_err(|e| format!("{e:#}")) };
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal_stop.send_replace(true);
    });
    let served = rag_grpc::server::run(
        listener,
        limits,
        gate,
        tls,
        load,
        Serving { current, rebuild },
        shutdown(),
        ready,
    )
    .await;
    // The admin listener ends with the service, however the service ended.
    stop.send_replace(true);
    for listener in [admin, http].into_iter().flatten() {
        let _ = listener.await;
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Models, store and indexer, loaded once at start-up.
async fn load(config: Config) -> anyhow::Result<Loaded> {
    let indexer = crate::ingest::open_indexer(&config).await?;
    let engine =
        crate::engine::load(&config, indexer.embedder().clone(), indexer.store().clone()).await?;
    // Before the service says it is ready: its first asker gets the speed of every later one.
    engine.warm_up().await?;
    Ok(Loaded {
        engine,
        indexer: Arc::new(indexer),
    })
}

/// How often the service looks for search indexes to build.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The service writes too (IngestDocument): the embedded store's indexes for what it wrote are
/// built here, in the background and never on a query, starting with whatever an older
/// version or an interrupted run left unindexed. A look with nothing due costs nothing.
/// The store is the one being served at each look (a rebuild replaces it).
async fn build_indexes(current: Arc<Current>) {
    let mut every = tokio::time::interval(INDEX_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(store) = current.get().map(|l| l.engine.store().clone()) else {
            continue;
        };
        let started = std::time::Instant::now();
        match store.optimize().await {
            Ok(true) => tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                "search index built"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "building the search index failed; retrying later")
            }
        }
    }
}

/// The Reindex call of a service holding the embedded store: one rebuild at a time.
fn rebuild(reload: Reload, served: rag_store::StoreConfig, current: Arc<Current>) -> Rebuild {
    let running = Arc::new(tokio::sync::Mutex::new(()));
    Arc::new(move |request, lines| {
        let (reload, current, running) = (reload.clone(), current.clone(), running.clone());
        let served = served.clone();
        Box::pin(async move {
            let Ok(_one) = running.try_lock() else {
                return Err("a rebuild is running already".to_owned());
            };
            let say = move |line: String| {
                tracing::info!(%line, "reindex");
                let _ = lines.try_send(line);
            };
            crate::reindex::in_service(reload.as_ref(), &served, &current, request, &say)
                .await
                .map_err(|e| format!("{e:#}"))
        })
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
