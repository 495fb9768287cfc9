//! Building the application from its configuration, and serving it.

use crate::DataOpts;
use anyhow::Context;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use yizhan_core::{Ctx, Db, OsRandom, SystemClock, Vault};
use yizhan_web::{AppState, Services, WebConfig};

pub struct Built {
    pub state: AppState,
}

pub async fn open_db(data: &DataOpts) -> anyhow::Result<Db> {
    let db = match &data.database_url {
        Some(url) => Db::connect(url).await,
        None => Db::open_data_dir(&data.data_dir).await,
    }
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("opening the database")?;
    db.migrate(&yizhan_web::all_migrations()).await.map_err(|e| anyhow::anyhow!("{e}")).context("migrating")?;
    Ok(db)
}

fn mailer(data: &DataOpts) -> Option<Arc<dyn yizhan_notify::Mailer>> {
    match std::env::var("YIZHAN_MAIL").as_deref() {
        Ok("smtp") => {
            let host = std::env::var("YIZHAN_SMTP_HOST").unwrap_or_else(|_| "127.0.0.1".into());
            let port = std::env::var("YIZHAN_SMTP_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(25);
            let from = std::env::var("YIZHAN_SMTP_FROM").unwrap_or_else(|_| "yizhan@localhost".into());
            Some(Arc::new(yizhan_notify::SmtpMailer::new(host, port, from)))
        }
        Ok("sandbox") => Some(Arc::new(yizhan_notify::SandboxMailer::new(data.data_dir.join("outbox")))),
        _ => None,
    }
}

pub async fn build(data: &DataOpts, secure_cookies: bool) -> anyhow::Result<Built> {
    let db = open_db(data).await?;
    let vault = Vault::load_or_create(&data.data_dir, std::env::var("YIZHAN_SECRET_KEY").ok().as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading the secret key")?;
    let ctx = Ctx { db, clock: Arc::new(SystemClock), rng: Arc::new(OsRandom), vault: Arc::new(vault) };
    let audit = yizhan_audit::Audit::new(ctx.clone());
    let notify = yizhan_notify::Notify::new(ctx.clone(), mailer(data));
    let identity = yizhan_identity::Identity::new(ctx.clone(), audit.clone(), Default::default());
    let state = AppState::new(Services {
        ctx,
        identity,
        audit,
        notify,
        config: WebConfig { secure_cookies, ..Default::default() },
        metrics: Default::default(),
    });
    if let (Ok(login), Ok(password)) = (std::env::var("YIZHAN_ADMIN_LOGIN"), std::env::var("YIZHAN_ADMIN_PASSWORD")) {
        state
            .identity
            .ensure_admin(&login, &password, "Administrator")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("creating the first administrator from YIZHAN_ADMIN_LOGIN")?;
    }
    Ok(Built { state })
}

pub async fn serve(data: &DataOpts, addr: &str, secure_cookies: bool) -> anyhow::Result<()> {
    let ready = Arc::new(AtomicBool::new(false));
    let built = build(data, secure_cookies).await?;
    let engine = built.state.ctx.db.engine().name();
    let db = built.state.ctx.db.clone();
    let app = yizhan_web::app(built.state, ready.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    ready.store(true, Ordering::SeqCst);
    tracing::info!(%local, engine, "yizhan is serving");
    println!("yizhan listening on http://{local} ({engine})");
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shut down; closing the database");
    db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; finishing requests in flight");
}
