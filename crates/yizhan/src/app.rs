//! Building the application from its configuration, and serving it.

use crate::DataOpts;
use anyhow::Context;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use yizhan_app::state::Wiring;
use yizhan_app::{AppState, Services, WebConfig};
use yizhan_core::{Ctx, Db, OsRandom, SystemClock, Vault};

pub struct Built {
    pub state: AppState,
}

/// Pay-later lines, statements and overdue bills handled per sweep tick (each kind).
const PAY_LATER_BATCH: i64 = 500;
/// How often the background sweep runs.
const SWEEP_EVERY_MS: u64 = 5_000;
/// How long answers to requests with an Idempotency-Key are kept (at least a day; see yizhan-idempotency).
const IDEMPOTENCY_KEEP_MS: i64 = yizhan_idempotency::MIN_RETENTION_MS;

pub async fn open_db(data: &DataOpts) -> anyhow::Result<Db> {
    let db = match &data.database_url {
        Some(url) => Db::connect(url).await,
        None => Db::open_data_dir(&data.data_dir).await,
    }
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("opening the database")?;
    db.migrate(&yizhan_app::all_migrations()).await.map_err(|e| anyhow::anyhow!("{e}")).context("migrating")?;
    Ok(db)
}

/// Every value `YIZHAN_MAIL` may take (unset or empty: no mail).
pub const MAILERS: &[&str] = &["smtp", "sandbox", "none"];

/// The mailer from `YIZHAN_MAIL` (`smtp`, `sandbox` writing into the data
/// directory's outbox, or unset / `none`: no mail), the SMTP settings from
/// `YIZHAN_SMTP_*` (see [`smtp_config`]).
pub fn mailer(
    mail: Option<&str>,
    outbox: &std::path::Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Arc<dyn yizhan_notify::Mailer>>> {
    match mail.map(str::trim).unwrap_or("") {
        "" | "none" => Ok(None),
        "sandbox" => {
            tracing::warn!(outbox = %outbox.display(), "the sandbox mailer is on: mail is written to the outbox, not delivered");
            Ok(Some(Arc::new(yizhan_notify::SandboxMailer::new(outbox))))
        }
        "smtp" => {
            let cfg = smtp_config(var)?;
            let m = yizhan_notify::SmtpMailer::new(cfg).map_err(explain).context("configuring the SMTP mailer")?;
            Ok(Some(Arc::new(m)))
        }
        other => {
            anyhow::bail!("YIZHAN_MAIL={other:?} is not a mailer this build has; supported: {}", MAILERS.join(", "))
        }
    }
}

/// The SMTP settings: `YIZHAN_SMTP_HOST` (required), `YIZHAN_SMTP_TLS`
/// (`starttls`, the default; `tls` for implicit TLS; `none`, only to a relay
/// on loopback), `YIZHAN_SMTP_PORT` (default 587, 465 for `tls`, 25 for
/// `none`), `YIZHAN_SMTP_FROM` (required), `YIZHAN_SMTP_USER` and
/// `YIZHAN_SMTP_PASSWORD` (together or neither; the password is never
/// logged), `YIZHAN_SMTP_TIMEOUT_MS` (default 10000) and `YIZHAN_SMTP_CA_FILE`
/// (a PEM file of certificates trusted besides the public roots).
pub fn smtp_config(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<yizhan_notify::SmtpConfig> {
    let get = |k: &str| var(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let host = get("YIZHAN_SMTP_HOST").context("YIZHAN_MAIL=smtp needs YIZHAN_SMTP_HOST")?;
    let from = get("YIZHAN_SMTP_FROM").context("YIZHAN_MAIL=smtp needs YIZHAN_SMTP_FROM (the sender address)")?;
    let tls_name = get("YIZHAN_SMTP_TLS").unwrap_or_else(|| "starttls".into());
    let tls = yizhan_notify::SmtpTls::parse(&tls_name)
        .with_context(|| format!("YIZHAN_SMTP_TLS={tls_name:?} is not one of starttls, tls, none"))?;
    let port = match get("YIZHAN_SMTP_PORT") {
        Some(p) => p.parse::<u16>().with_context(|| format!("YIZHAN_SMTP_PORT={p:?} is not a port number"))?,
        None => match tls {
            yizhan_notify::SmtpTls::StartTls => 587,
            yizhan_notify::SmtpTls::Implicit => 465,
            yizhan_notify::SmtpTls::None => 25,
        },
    };
    if tls == yizhan_notify::SmtpTls::None && !yizhan_notify::mail::is_loopback_host(&host) {
        anyhow::bail!(
            "YIZHAN_SMTP_TLS=none sends mail in the clear: only allowed to a relay on loopback, not to {host:?}"
        );
    }
    // The password is not trimmed: spaces may be part of it.
    let credentials = match (get("YIZHAN_SMTP_USER"), var("YIZHAN_SMTP_PASSWORD").filter(|p| !p.is_empty())) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        _ => anyhow::bail!("YIZHAN_SMTP_USER and YIZHAN_SMTP_PASSWORD go together (set both or neither)"),
    };
    let timeout_ms = match get("YIZHAN_SMTP_TIMEOUT_MS") {
        Some(ms) => ms
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .with_context(|| format!("YIZHAN_SMTP_TIMEOUT_MS={ms:?} is not a positive number of milliseconds"))?,
        None => 10_000,
    };
    let extra_ca_pem = match get("YIZHAN_SMTP_CA_FILE") {
        Some(path) => Some(std::fs::read(&path).with_context(|| format!("reading YIZHAN_SMTP_CA_FILE={path:?}"))?),
        None => None,
    };
    Ok(yizhan_notify::SmtpConfig {
        host,
        port,
        from,
        tls,
        credentials,
        timeout_ms,
        extra_ca_pem,
        helo_name: get("YIZHAN_SMTP_HELO"),
    })
}

/// The text-message senders this build has, as `YIZHAN_SMS` names them.
/// A real provider would be one more variant, built behind `SmsSender`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsChoice {
    /// [`yizhan_notify::SandboxSmsSender`]: writes into the outbox, delivers nothing.
    Sandbox,
    /// No sender: sending a text message fails.
    None,
}

/// Every value `YIZHAN_SMS` may take in this build.
pub const SMS_SENDERS: &[&str] = &["sandbox", "none"];

/// The SMS sender from `YIZHAN_SMS` (unset or empty: the sandbox) and
/// `YIZHAN_ENV`, as for the gateway: an unknown one is refused naming the
/// ones this build has, and `YIZHAN_ENV=production` refuses the sandbox, so a
/// production server never "sends" sign-in codes nobody receives.
pub fn sms_choice(sms: Option<&str>, env: Option<&str>) -> anyhow::Result<SmsChoice> {
    let name = sms.map(str::trim).filter(|v| !v.is_empty()).unwrap_or("sandbox");
    let choice = match name {
        "sandbox" => SmsChoice::Sandbox,
        "none" => SmsChoice::None,
        other => anyhow::bail!(
            "YIZHAN_SMS={other:?} is not an SMS sender this build supports; supported: {}",
            SMS_SENDERS.join(", ")
        ),
    };
    let production = env.map(str::trim).is_some_and(|e| e.eq_ignore_ascii_case("production"));
    if production && choice == SmsChoice::Sandbox {
        anyhow::bail!(
            "YIZHAN_ENV=production refuses the sandbox SMS sender (YIZHAN_SMS=sandbox, the default): \
             it delivers no text message; configure a real sender, YIZHAN_SMS=none, or unset YIZHAN_ENV"
        );
    }
    Ok(choice)
}

/// A domain error for the operator: its message in English from the joined
/// catalogue, then its code.
pub fn explain(e: yizhan_core::Error) -> anyhow::Error {
    yizhan_app::install();
    let text = yizhan_kit::i18n::render(yizhan_kit::i18n::Lang::En, &e.msg);
    match e.source {
        Some(src) => anyhow::anyhow!("{text} [{}] ({src:#})", e.code),
        None => anyhow::anyhow!("{text} [{}]", e.code),
    }
}

/// The funding gateways this build can talk to, as `YIZHAN_GATEWAY` names them.
/// A real provider would be one more variant, built behind `FundingGateway`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayChoice {
    /// [`yizhan_pay::SandboxGateway`]: pretends, never moves real money.
    Sandbox,
}

/// Every value `YIZHAN_GATEWAY` may take in this build.
pub const GATEWAYS: &[&str] = &["sandbox"];

/// The gateway from `YIZHAN_GATEWAY` (unset or empty: the sandbox) and
/// `YIZHAN_ENV`: an unknown gateway is refused naming the ones this build
/// has, and `YIZHAN_ENV=production` refuses the sandbox, so a production
/// server never takes pretend money for real.
pub fn gateway_choice(gateway: Option<&str>, env: Option<&str>) -> anyhow::Result<GatewayChoice> {
    let name = gateway.map(str::trim).filter(|g| !g.is_empty()).unwrap_or("sandbox");
    let choice = match name {
        "sandbox" => GatewayChoice::Sandbox,
        other => anyhow::bail!(
            "YIZHAN_GATEWAY={other:?} is not a gateway this build supports; supported: {}",
            GATEWAYS.join(", ")
        ),
    };
    let production = env.map(str::trim).is_some_and(|e| e.eq_ignore_ascii_case("production"));
    if production && choice == GatewayChoice::Sandbox {
        anyhow::bail!(
            "YIZHAN_ENV=production refuses the sandbox gateway (YIZHAN_GATEWAY=sandbox, the default): \
             it moves no real money; configure a real gateway or unset YIZHAN_ENV"
        );
    }
    Ok(choice)
}

/// The identity verifiers this build can ask, as `YIZHAN_VERIFIER` names them.
/// A real one (the public-security registry, a bank's real-name check) would
/// be one more variant, built behind `IdentityVerifier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierChoice {
    /// [`yizhan_identity::SandboxIdentityVerifier`]: asks no authority.
    Sandbox,
}

/// Every value `YIZHAN_VERIFIER` may take in this build.
pub const VERIFIERS: &[&str] = &["sandbox"];

/// The verifier from `YIZHAN_VERIFIER` (unset or empty: the sandbox) and
/// `YIZHAN_ENV`, as for the gateway: an unknown one is refused naming the
/// ones this build has, and `YIZHAN_ENV=production` refuses the sandbox, so
/// a production server never binds identity numbers and plates on nobody's word.
pub fn verifier_choice(verifier: Option<&str>, env: Option<&str>) -> anyhow::Result<VerifierChoice> {
    let name = verifier.map(str::trim).filter(|v| !v.is_empty()).unwrap_or("sandbox");
    let choice = match name {
        "sandbox" => VerifierChoice::Sandbox,
        other => anyhow::bail!(
            "YIZHAN_VERIFIER={other:?} is not an identity verifier this build supports; supported: {}",
            VERIFIERS.join(", ")
        ),
    };
    let production = env.map(str::trim).is_some_and(|e| e.eq_ignore_ascii_case("production"));
    if production && choice == VerifierChoice::Sandbox {
        anyhow::bail!(
            "YIZHAN_ENV=production refuses the sandbox identity verifier (YIZHAN_VERIFIER=sandbox, the default): \
             it asks no authority; configure a real verifier or unset YIZHAN_ENV"
        );
    }
    Ok(choice)
}

/// The web settings: from the command line, and from the environment
/// (`YIZHAN_REQUEST_TIMEOUT_MS`, `YIZHAN_METRICS_ALLOW` as comma-separated
/// addresses, `YIZHAN_METRICS_TOKEN`, `YIZHAN_TRUSTED_PROXIES` as
/// comma-separated addresses).
fn web_config(secure_cookies: bool) -> anyhow::Result<WebConfig> {
    let mut c = WebConfig { secure_cookies, ..Default::default() };
    if let Ok(ms) = std::env::var("YIZHAN_REQUEST_TIMEOUT_MS") {
        c.request_timeout_ms =
            ms.trim().parse().context("YIZHAN_REQUEST_TIMEOUT_MS is not a number of milliseconds")?;
    }
    if let Ok(list) = std::env::var("YIZHAN_METRICS_ALLOW") {
        for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            c.metrics_allow.push(a.parse().with_context(|| format!("YIZHAN_METRICS_ALLOW: {a} is not an IP address"))?);
        }
    }
    c.metrics_token = std::env::var("YIZHAN_METRICS_TOKEN").ok().filter(|t| !t.trim().is_empty());
    if let Ok(list) = std::env::var("YIZHAN_TRUSTED_PROXIES") {
        for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            c.trusted_proxies
                .push(a.parse().with_context(|| format!("YIZHAN_TRUSTED_PROXIES: {a} is not an IP address"))?);
        }
    }
    Ok(c)
}

/// Pay's settings from the environment: `YIZHAN_PAYCODE_CONFIRM_ABOVE_FEN`, the
/// pay code charge (fen) above which the customer must confirm on their
/// screen (default 50000, ¥500; 0 asks for every charge).
fn pay_config() -> anyhow::Result<yizhan_pay::PayConfig> {
    let mut c = yizhan_pay::PayConfig::default();
    if let Ok(v) = std::env::var("YIZHAN_PAYCODE_CONFIRM_ABOVE_FEN") {
        c.paycode_confirm_above_fen = v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|f| *f >= 0)
            .context("YIZHAN_PAYCODE_CONFIRM_ABOVE_FEN is not a whole number of fen (0 or more)")?;
    }
    Ok(c)
}

/// Identity's settings from the environment: `YIZHAN_REQUIRE_TOTP_FOR_STAFF`
/// (`true` or `false`, default false): staff and platform administrators
/// cannot act as such without a second factor.
fn identity_config() -> anyhow::Result<yizhan_identity::IdentityConfig> {
    let mut c = yizhan_identity::IdentityConfig::default();
    if let Ok(v) = std::env::var("YIZHAN_REQUIRE_TOTP_FOR_STAFF") {
        c.require_totp_for_staff = parse_flag(&v).context("YIZHAN_REQUIRE_TOTP_FOR_STAFF is not true or false")?;
    }
    Ok(c)
}

fn parse_flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

pub async fn build(data: &DataOpts, secure_cookies: bool) -> anyhow::Result<Built> {
    build_with_key(data, secure_cookies, std::env::var("YIZHAN_SECRET_KEY").ok()).await
}

/// [`build`] with the secret key given (hex) instead of read from `YIZHAN_SECRET_KEY`.
pub async fn build_with_key(data: &DataOpts, secure_cookies: bool, key_hex: Option<String>) -> anyhow::Result<Built> {
    build_configured(data, secure_cookies, key_hex, identity_config()?).await
}

/// [`build`] for a benchmark's seeding process only: accounts it registers
/// get password hashes at the tests' tiny cost (their log-ins over HTTP stay
/// real, just cheap), so thousands of people are made in seconds.
pub async fn build_for_bench_seeding(data: &DataOpts) -> anyhow::Result<Built> {
    let identity = yizhan_identity::IdentityConfig { fast_hashing_for_tests: true, ..identity_config()? };
    build_configured(data, false, std::env::var("YIZHAN_SECRET_KEY").ok(), identity).await
}

async fn build_configured(
    data: &DataOpts,
    secure_cookies: bool,
    key_hex: Option<String>,
    identity: yizhan_identity::IdentityConfig,
) -> anyhow::Result<Built> {
    // Checked before anything is opened: a refused configuration touches nothing.
    let choice =
        gateway_choice(std::env::var("YIZHAN_GATEWAY").ok().as_deref(), std::env::var("YIZHAN_ENV").ok().as_deref())?;
    let verifier_choice =
        verifier_choice(std::env::var("YIZHAN_VERIFIER").ok().as_deref(), std::env::var("YIZHAN_ENV").ok().as_deref())?;
    let sms_choice =
        sms_choice(std::env::var("YIZHAN_SMS").ok().as_deref(), std::env::var("YIZHAN_ENV").ok().as_deref())?;
    let outbox = data.data_dir.join("outbox");
    let mailer = mailer(std::env::var("YIZHAN_MAIL").ok().as_deref(), &outbox, &|k| std::env::var(k).ok())?;
    let db = open_db(data).await?;
    let vault = Vault::load_for(&data.data_dir, key_hex.as_deref(), &db)
        .await
        .map_err(explain)
        .context("loading the secret key")?;
    // Every process on one database must hold the same key: refuse one that
    // generated its own (another data directory) before it writes anything.
    vault
        .check_against(&db, yizhan_core::Clock::now_ms(&SystemClock))
        .await
        .map_err(explain)
        .context("checking the secret key against the database")?;
    let ctx = Ctx { db, clock: Arc::new(SystemClock), rng: Arc::new(OsRandom), vault: Arc::new(vault) };
    // The sandbox signs its notifications with a key derived from the vault, so it
    // survives restarts and never sits in the database.
    let gateway: Arc<dyn yizhan_pay::FundingGateway> = match choice {
        GatewayChoice::Sandbox => {
            let gateway_secret = hex::encode(ctx.vault.mac("gateway", b"sandbox"));
            tracing::warn!("the sandbox gateway is on: no real money moves");
            Arc::new(yizhan_pay::SandboxGateway::new(gateway_secret.into_bytes()))
        }
    };
    let verifier: Arc<dyn yizhan_identity::IdentityVerifier> = match verifier_choice {
        VerifierChoice::Sandbox => {
            tracing::warn!("the sandbox identity verifier is on: no authority checks real names or vehicles");
            Arc::new(yizhan_identity::SandboxIdentityVerifier)
        }
    };
    let sms: Option<Arc<dyn yizhan_notify::SmsSender>> = match sms_choice {
        SmsChoice::Sandbox => {
            tracing::warn!(outbox = %outbox.display(), "the sandbox SMS sender is on: text messages are written to the outbox, not delivered");
            Some(Arc::new(yizhan_notify::SandboxSmsSender::new(&outbox)))
        }
        SmsChoice::None => None,
    };
    let wiring = Wiring {
        mailer,
        sms,
        outbox_dir: Some(outbox),
        gateway,
        verifier,
        identity,
        pay: pay_config()?,
        config: web_config(secure_cookies)?,
    };
    let services = Services::build(ctx, wiring)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting the services (opening the system accounts)")?;
    let state = AppState::new(services);
    if let (Ok(login), Ok(password)) = (std::env::var("YIZHAN_ADMIN_LOGIN"), std::env::var("YIZHAN_ADMIN_PASSWORD")) {
        state
            .identity
            .ensure_admin(&login, &password, "Administrator")
            .await
            .map_err(explain)
            .context("creating the first administrator from YIZHAN_ADMIN_LOGIN")?;
    }
    Ok(Built { state })
}

pub async fn serve(data: &DataOpts, addr: &str, secure_cookies: bool) -> anyhow::Result<()> {
    let ready = Arc::new(AtomicBool::new(false));
    let built = build(data, secure_cookies).await?;
    let engine = built.state.ctx.db.engine().name();
    let db = built.state.ctx.db.clone();
    // A first start (no administrator yet): a one-time link to the setup page.
    let setup_token = built.state.identity.new_setup_token().await.map_err(explain).context("the setup link")?;
    let (stop_sweep, stopped) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(sweep(built.state.clone(), stopped));
    let app = yizhan_app::app(built.state, ready.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    ready.store(true, Ordering::SeqCst);
    tracing::info!(%local, engine, "yizhan is serving");
    println!("yizhan listening on http://{local} ({engine})");
    if let Some(token) = setup_token {
        let link = format!("http://{local}/setup?token={token}");
        let hours = yizhan_identity::setup::SETUP_TOKEN_TTL_MS / 3_600_000;
        tracing::warn!(%link, "no administrator yet: open the setup link to create the first administrator and city");
        println!(
            "No administrator yet. Open this link once (within {hours} h) to create the first administrator and city:\n  {link}"
        );
    }
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = stop_sweep.send(true);
    if let Err(e) = sweeper.await {
        tracing::warn!(error = %e, "the sweeper ended badly");
    }
    tracing::info!("shut down; closing the database");
    db.close().await;
    Ok(())
}

/// Every few seconds: expire holds past their time, send appointment reminders, return what is left of
/// red packets after 24 hours (and finish payouts a crash interrupted), settle
/// withdrawals whose payout had no answer (asking the gateway), and
/// forget old idempotency answers. Ends when `stop` turns true.
async fn sweep(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(std::time::Duration::from_millis(SWEEP_EVERY_MS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        // A key rotation while this process ran: everything it would seal or
        // look up from now on would be under a key the database left behind.
        if let Ok(false) = yizhan_app::keys::key_still_current(&state.ctx.db, &state.ctx.vault).await {
            tracing::error!("the database's secret key was rotated; this process holds the old one and stops");
            std::process::exit(3);
        }
        match state.ledger.expire_due().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(holds = n, "expired holds"),
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "expiring holds failed"),
        }
        match state.pay.refund_expired().await {
            Ok(r) if r.packets > 0 || r.failures > 0 => tracing::info!(
                packets = r.packets,
                refunded_fen = r.refunded_fen,
                failures = r.failures,
                "red packets refunded"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "red packet sweep failed"),
        }
        match state.pay.reconcile_withdrawals().await {
            Ok(r) if !r.is_empty() => tracing::info!(
                paid = r.paid,
                failed = r.failed,
                given_up = r.given_up,
                no_hold = r.no_hold,
                still_unknown = r.unknown,
                failures = r.failures,
                "withdrawals reconciled"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "withdrawal reconciliation failed"),
        }
        match state.identity.purge_login_limits().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "old log-in counters purged"),
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "purging log-in counters failed"),
        }
        match state.idempotency.purge_older_than(IDEMPOTENCY_KEEP_MS).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(keys = n, "idempotency keys purged"),
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "purging idempotency keys failed"),
        }
        // Pay-later months closed, statements settled or overdue, overdue
        // bills told to the credit room: a bounded batch per tick.
        match state.pay.pay_later_sweep(PAY_LATER_BATCH).await {
            Ok(r) if !r.is_empty() => tracing::info!(
                lines_closed = r.lines_closed,
                statements = r.statements_issued,
                settled = r.statements_settled,
                overdue = r.statements_overdue,
                bills_overdue = r.bills_overdue,
                "pay-later sweep"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "pay-later sweep failed"),
        }
        // A model activated by `yizhan credit model activate` takes effect here.
        if let Err(e) = state.credit.load_models().await {
            tracing::warn!(code = %e.code, error = %e.msg, "reloading the credit models failed");
        }
        // Holds that ran out give their places back (or to the waiting list).
        match state.booking.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(holds = n, "expired booking holds freed"),
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "booking hold sweep failed"),
        }
        // City applications a crash left between the wallet and their row: finished (or undone).
        match state.city.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(applications = n, "pending city applications finished"),
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "city application sweep failed"),
        }
        // Appointment reminders that are due (each sent once, whatever the processes).
        match state.booking.send_due_reminders().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(reminders = n, "appointment reminders sent"),
            Err(e) => tracing::warn!(code = %e.code, error = %e.msg, "appointment reminder sweep failed"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn smtp_settings_come_from_the_environment() {
        let c = smtp_config(&vars(&[("YIZHAN_SMTP_HOST", "mail.example.com"), ("YIZHAN_SMTP_FROM", "a@example.com")]))
            .unwrap();
        assert_eq!((c.port, c.tls, c.timeout_ms), (587, yizhan_notify::SmtpTls::StartTls, 10_000));
        assert!(c.credentials.is_none());
        let c = smtp_config(&vars(&[
            ("YIZHAN_SMTP_HOST", "mail.example.com"),
            ("YIZHAN_SMTP_FROM", "a@example.com"),
            ("YIZHAN_SMTP_TLS", "tls"),
            ("YIZHAN_SMTP_USER", "u"),
            ("YIZHAN_SMTP_PASSWORD", " p w "),
            ("YIZHAN_SMTP_TIMEOUT_MS", "2500"),
        ]))
        .unwrap();
        assert_eq!((c.port, c.tls, c.timeout_ms), (465, yizhan_notify::SmtpTls::Implicit, 2_500));
        assert_eq!(c.credentials, Some(("u".into(), " p w ".into())));
        let refused = |pairs: &[(&str, &str)]| smtp_config(&vars(pairs)).err().map(|e| format!("{e:#}"));
        let base = [("YIZHAN_SMTP_HOST", "mail.example.com"), ("YIZHAN_SMTP_FROM", "a@example.com")];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            v
        };
        assert!(refused(&with(("YIZHAN_SMTP_TLS", "none"))).unwrap().contains("loopback"));
        assert!(refused(&with(("YIZHAN_SMTP_TLS", "ssl"))).unwrap().contains("starttls, tls, none"));
        assert!(refused(&with(("YIZHAN_SMTP_USER", "u"))).unwrap().contains("go together"));
        assert!(refused(&with(("YIZHAN_SMTP_PORT", "x"))).is_some());
        assert!(refused(&with(("YIZHAN_SMTP_TIMEOUT_MS", "0"))).is_some());
        assert!(refused(&with(("YIZHAN_SMTP_CA_FILE", "/nonexistent/ca.pem"))).unwrap().contains("CA_FILE"));
        assert!(refused(&[("YIZHAN_SMTP_FROM", "a@example.com")]).unwrap().contains("YIZHAN_SMTP_HOST"));
        let local = smtp_config(&vars(&[
            ("YIZHAN_SMTP_HOST", "127.0.0.1"),
            ("YIZHAN_SMTP_FROM", "a@example.com"),
            ("YIZHAN_SMTP_TLS", "none"),
        ]))
        .unwrap();
        assert_eq!(local.port, 25);
    }

    #[test]
    fn the_mail_setting_is_checked() {
        let dir = std::path::Path::new("/tmp/unused-outbox");
        let none = vars(&[]);
        assert!(mailer(None, dir, &none).unwrap().is_none());
        assert!(mailer(Some("none"), dir, &none).unwrap().is_none());
        assert_eq!(mailer(Some("sandbox"), dir, &none).unwrap().unwrap().name(), "sandbox");
        let e = mailer(Some("sendgrid"), dir, &none).err().unwrap().to_string();
        assert!(e.contains("supported: smtp, sandbox, none"), "{e}");
        assert!(mailer(Some("smtp"), dir, &none).is_err());
    }

    #[test]
    fn the_sandbox_sms_sender_is_the_default_and_production_refuses_it() {
        assert_eq!(sms_choice(None, None).unwrap(), SmsChoice::Sandbox);
        assert_eq!(sms_choice(Some(" sandbox "), Some("development")).unwrap(), SmsChoice::Sandbox);
        let e = sms_choice(None, Some("production")).unwrap_err().to_string();
        assert!(e.contains("YIZHAN_SMS") && e.contains("production"), "{e}");
        assert_eq!(sms_choice(Some("none"), Some("production")).unwrap(), SmsChoice::None);
        let e = sms_choice(Some("twilio"), None).unwrap_err().to_string();
        assert!(e.contains("supported: sandbox, none"), "{e}");
    }

    #[test]
    fn flags_are_true_or_false_and_nothing_else() {
        for v in ["true", "TRUE", "1", "yes", "on"] {
            assert_eq!(parse_flag(v), Some(true), "{v}");
        }
        for v in ["false", "0", "no", "off", ""] {
            assert_eq!(parse_flag(v), Some(false), "{v}");
        }
        assert_eq!(parse_flag("maybe"), None);
    }

    #[test]
    fn the_sandbox_is_the_default() {
        assert_eq!(gateway_choice(None, None).unwrap(), GatewayChoice::Sandbox);
        assert_eq!(gateway_choice(Some("sandbox"), None).unwrap(), GatewayChoice::Sandbox);
        assert_eq!(gateway_choice(Some(" "), Some("development")).unwrap(), GatewayChoice::Sandbox);
    }

    #[test]
    fn an_unknown_gateway_is_refused_naming_the_supported_ones() {
        let e = gateway_choice(Some("stripe"), None).unwrap_err().to_string();
        assert!(e.contains("YIZHAN_GATEWAY") && e.contains("\"stripe\""), "{e}");
        assert!(e.contains("supported: sandbox"), "{e}");
    }

    #[test]
    fn the_sandbox_verifier_is_the_default_and_production_refuses_it() {
        assert_eq!(verifier_choice(None, None).unwrap(), VerifierChoice::Sandbox);
        assert_eq!(verifier_choice(Some(" sandbox "), Some("development")).unwrap(), VerifierChoice::Sandbox);
        let e = verifier_choice(Some("police"), None).unwrap_err().to_string();
        assert!(e.contains("YIZHAN_VERIFIER") && e.contains("supported: sandbox"), "{e}");
        for env in ["production", " Production "] {
            for v in [None, Some(""), Some("sandbox")] {
                let e = verifier_choice(v, Some(env)).unwrap_err().to_string();
                assert!(e.contains("YIZHAN_ENV=production") && e.contains("sandbox identity verifier"), "{e}");
            }
        }
    }

    #[test]
    fn production_refuses_the_sandbox() {
        for env in ["production", "PRODUCTION"] {
            for gw in [None, Some("sandbox")] {
                let e = gateway_choice(gw, Some(env)).unwrap_err().to_string();
                assert!(e.contains("YIZHAN_ENV=production") && e.contains("sandbox"), "{e}");
            }
        }
    }
}
