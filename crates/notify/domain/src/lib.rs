//! One notifications service for every capability: an inbox per person, each
//! notification a message (a catalogue key with arguments) rendered in the
//! reader's language, and optionally a copy by mail in both languages.

pub mod mail;
pub mod outbox;
pub mod sms;

pub use mail::{Mailer, SandboxMailer, SmtpConfig, SmtpMailer, SmtpTls};
pub use outbox::{list_outbox, OutboxItem, OutboxKind, OUTBOX_LIST_MAX};
pub use sms::{SandboxSmsSender, SmsSender};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use yizhan_core::group::{Batch, GroupCommit, GroupLimits};
use yizhan_core::{Ctx, Error, FieldError, MigrationSet, Msg, Result, Tx};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "notify",
    sqlite: &[
        ("0001", include_str!("../migrations/sqlite/0001_notifications.sql")),
        ("0002", include_str!("../migrations/sqlite/0002_messages.sql")),
    ],
    postgres: &[
        ("0001", include_str!("../migrations/postgres/0001_notifications.sql")),
        ("0002", include_str!("../migrations/postgres/0002_messages.sql")),
    ],
};

pub const MAX_INBOX_LIMIT: i64 = 500;
const MAX_MSG_JSON_CHARS: usize = 8000;
const MAX_TARGET_CHARS: usize = 200;
/// The key a notification stored before messages existed renders through:
/// its text is the stored text of each language (`{en}` / `{zh}`).
pub const LEGACY_KEY: &str = "notify.stored_text";

/// What a notification is about, for the web side to link to (its rooms map
/// a kind to a page); the domain never writes a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// e.g. "red_packet", "bill", "transfer".
    pub kind: String,
    pub id: String,
}

impl Target {
    pub fn new(kind: &str, id: &str) -> Target {
        Target { kind: kind.to_string(), id: id.to_string() }
    }
}

/// What a capability tells a person: a title and a body as messages (keys
/// and arguments in a room's catalogue), and what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Which capability and event, e.g. "pay.received", "city.permit_ready".
    pub kind: String,
    pub title: Msg,
    pub body: Msg,
    pub target: Option<Target>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub title: Msg,
    pub body: Msg,
    pub target: Option<Target>,
    pub created_at_ms: i64,
    pub read_at_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: String,
    user_id: String,
    kind: String,
    title_en: String,
    title_zh: String,
    body_en: String,
    body_zh: String,
    title_msg: Option<String>,
    body_msg: Option<String>,
    target_kind: Option<String>,
    target_id: Option<String>,
    created_at_ms: i64,
    read_at_ms: Option<i64>,
}

const COLUMNS: &str = "id, user_id, kind, title_en, title_zh, body_en, body_zh, title_msg, body_msg, \
    target_kind, target_id, created_at_ms, read_at_ms";

/// A stored message, or for a row from before messages its two stored texts.
fn stored(json: Option<&str>, en: String, zh: String) -> Msg {
    match json.and_then(|j| serde_json::from_str::<Msg>(j).ok()) {
        Some(m) => m,
        None => Msg::new(LEGACY_KEY).text("en", en).text("zh", zh),
    }
}

impl From<NotificationRow> for Notification {
    fn from(r: NotificationRow) -> Notification {
        Notification {
            title: stored(r.title_msg.as_deref(), r.title_en, r.title_zh),
            body: stored(r.body_msg.as_deref(), r.body_en, r.body_zh),
            target: match (r.target_kind, r.target_id) {
                (Some(kind), Some(id)) => Some(Target { kind, id }),
                _ => None,
            },
            id: r.id,
            user_id: r.user_id,
            kind: r.kind,
            created_at_ms: r.created_at_ms,
            read_at_ms: r.read_at_ms,
        }
    }
}

fn validate(user_id: &str, msg: &Message, title: &str, body: &str) -> Result<()> {
    let mut errors = Vec::new();
    let mut check = |field: &str, value: &str, max: usize, required: bool| {
        if required && value.trim().is_empty() {
            errors.push(FieldError::new(field, Msg::new("error.field.empty")));
        } else if value.chars().count() > max {
            errors.push(FieldError::new(field, Msg::new("error.field.too_long").int("max", max as i64)));
        }
    };
    check("user_id", user_id, 200, true);
    check("kind", &msg.kind, 64, true);
    check("title", &msg.title.key, 200, true);
    check("title", title, MAX_MSG_JSON_CHARS, true);
    check("body", body, MAX_MSG_JSON_CHARS, false);
    if let Some(t) = &msg.target {
        check("target", &t.kind, MAX_TARGET_CHARS, true);
        check("target", &t.id, MAX_TARGET_CHARS, true);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::fields(errors))
    }
}

/// Renders a message in a language ("zh-CN" or "en") for mail: the app gives
/// the joined catalogue's renderer.
pub type Renderer = Arc<dyn Fn(&str, &Msg) -> String + Send + Sync>;

/// The mail for a message: both languages, Chinese first.
pub fn mail_text(msg: &Message, render: &Renderer) -> (String, String) {
    let (title_zh, title_en) = (render("zh-CN", &msg.title), render("en", &msg.title));
    let (body_zh, body_en) = (render("zh-CN", &msg.body), render("en", &msg.body));
    let subject = if title_zh == title_en { title_zh.clone() } else { format!("{title_zh} / {title_en}") };
    let body = format!("{title_zh}\n\n{body_zh}\n\n---\n\n{title_en}\n\n{body_en}\n");
    (subject, body)
}

#[derive(Clone)]
pub struct Notify {
    ctx: Ctx,
    mailer: Option<Arc<dyn Mailer>>,
    sms: Option<Arc<dyn SmsSender>>,
    /// Where the sandbox senders write (shown to the operator), if any.
    outbox_dir: Option<PathBuf>,
    render: Renderer,
    /// Notifications are stored by a group commit: a payment's notice shares
    /// its commit with every other notice in flight.
    store: GroupCommit<Inserts>,
}

/// A notification row to insert.
#[derive(Clone)]
struct NewRow {
    id: String,
    user_id: String,
    kind: String,
    title: String,
    body: String,
    target_kind: Option<String>,
    target_id: Option<String>,
    at_ms: i64,
}

/// Rows per multi-row INSERT (8 values each).
const ROWS_PER_INSERT: usize = 256;

/// Notifications inserted many per statement and per transaction.
struct Inserts;

impl Batch for Inserts {
    type Op = NewRow;
    type Out = ();
    fn apply<'a>(&'a self, tx: &'a mut Tx, ops: &'a [NewRow]) -> BoxFuture<'a, Result<Vec<Result<()>>>> {
        Box::pin(async move {
            let rows: Vec<&NewRow> = ops.iter().collect();
            insert_rows(tx.conn(), &rows).await?;
            Ok(ops.iter().map(|_| Ok(())).collect())
        })
    }
}

async fn insert_rows(conn: &mut sqlx::AnyConnection, rows: &[&NewRow]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut p = yizhan_core::Params::of(conn);
        let values: Vec<String> =
            (0..chunk.len()).map(|_| format!("({}, '', '', '', '', {}, NULL)", p.list(3), p.list(5))).collect();
        let sql = format!("INSERT INTO notifications ({COLUMNS}) VALUES {}", values.join(", "));
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(&r.id)
                .bind(&r.user_id)
                .bind(&r.kind)
                .bind(&r.title)
                .bind(&r.body)
                .bind(&r.target_kind)
                .bind(&r.target_id)
                .bind(r.at_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A notification made ready to be stored in the transaction of the work it
/// tells about (a payment's notice with the payment), by
/// [`Notify::insert_prepared`]; then [`Notify::mail_prepared`] after commit.
pub struct PreparedNotice {
    row: NewRow,
    msg: Message,
}

impl PreparedNotice {
    /// The notification's id.
    pub fn id(&self) -> &str {
        &self.row.id
    }
}

impl Notify {
    /// Without a renderer (`with_renderer`), mail shows each message's key.
    pub fn new(ctx: Ctx, mailer: Option<Arc<dyn Mailer>>) -> Notify {
        let store = GroupCommit::start(ctx.db.clone(), Inserts, GroupLimits::default());
        Notify { ctx, mailer, sms: None, outbox_dir: None, render: Arc::new(|_, m: &Msg| m.to_string()), store }
    }

    /// The text-message sender (none: `send_sms` refuses).
    pub fn with_sms(mut self, sms: Arc<dyn SmsSender>) -> Notify {
        self.sms = Some(sms);
        self
    }

    /// The sandbox outbox directory the operator's page lists.
    pub fn with_outbox(mut self, dir: impl Into<PathBuf>) -> Notify {
        self.outbox_dir = Some(dir.into());
        self
    }

    /// The configured SMS sender's name and whether it is the sandbox.
    pub fn sms_sender(&self) -> Option<(&'static str, bool)> {
        self.sms.as_ref().map(|s| (s.name(), s.is_sandbox()))
    }

    /// Sends a text message now, rendered in `lang` ("zh-CN" or "en"), and
    /// says whether it failed (a sign-in code that was not sent must be told).
    pub async fn send_sms(&self, to_phone: &str, lang: &str, text: &Msg) -> Result<()> {
        let Some(sms) = self.sms.clone() else {
            return Err(Error::new(yizhan_core::Code::Internal, "notify.sms.not_configured"));
        };
        let rendered = (self.render)(lang, text);
        let result = sms.send(to_phone, &rendered).await;
        if let Err(e) = &result {
            // The number and the text (a code) stay out of the log.
            tracing::warn!(sender = sms.name(), code = %e.code, error = %e.msg, "text message not sent");
        }
        result
    }

    /// Mails a message now (both languages), to an address that need not be
    /// any account's yet, and says whether it failed: for one-time codes,
    /// which never go into an inbox.
    pub async fn send_mail_now(&self, to: &str, title: &Msg, body: &Msg) -> Result<()> {
        let Some(mailer) = self.mailer.clone() else {
            return Err(Error::new(yizhan_core::Code::Internal, "notify.mail.not_configured"));
        };
        let msg = Message { kind: "code".into(), title: title.clone(), body: body.clone(), target: None };
        let (subject, text) = mail_text(&msg, &self.render);
        let result = mailer.send(to, &subject, &text).await;
        if let Err(e) = &result {
            // The address and the text (a code) stay out of the log.
            tracing::warn!(mailer = mailer.name(), code = %e.code, error = %e.msg, "mail not sent");
        }
        result
    }

    /// The sandbox outbox, newest first (empty without one).
    pub async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>> {
        match &self.outbox_dir {
            Some(dir) => list_outbox(dir, limit).await,
            None => Ok(Vec::new()),
        }
    }

    /// Whether an outbox directory is configured.
    pub fn has_outbox(&self) -> bool {
        self.outbox_dir.is_some()
    }

    /// How mail renders messages (the app gives the joined catalogue's).
    pub fn with_renderer(mut self, render: Renderer) -> Notify {
        self.render = render;
        self
    }

    /// The configured mailer's name ("sandbox", "smtp"), if any.
    pub fn mailer_name(&self) -> Option<&'static str> {
        self.mailer.as_ref().map(|m| m.name())
    }

    /// Store in the person's inbox; then, if a mailer is configured and an
    /// address given, mail a copy in the background. Returns the id.
    pub async fn send(&self, user_id: &str, email: Option<&str>, msg: Message) -> Result<String> {
        let prepared = self.prepare(user_id, msg)?;
        let id = prepared.row.id.clone();
        self.store.submit(prepared.row.clone()).await?;
        self.mail_prepared(&prepared, email);
        Ok(id)
    }

    /// Check and make a notification's row, to be stored by [`Notify::insert_prepared`]
    /// in the caller's transaction.
    pub fn prepare(&self, user_id: &str, msg: Message) -> Result<PreparedNotice> {
        let title = serde_json::to_string(&msg.title).map_err(Error::internal)?;
        let body = serde_json::to_string(&msg.body).map_err(Error::internal)?;
        validate(user_id, &msg, &title, &body)?;
        let row = NewRow {
            id: self.ctx.new_id(),
            user_id: user_id.to_string(),
            kind: msg.kind.clone(),
            title,
            body,
            target_kind: msg.target.as_ref().map(|t| t.kind.clone()),
            target_id: msg.target.as_ref().map(|t| t.id.clone()),
            at_ms: self.ctx.now_ms(),
        };
        Ok(PreparedNotice { row, msg })
    }

    /// Store prepared notifications in the transaction `conn` is in (many rows per statement).
    pub async fn insert_prepared(conn: &mut sqlx::AnyConnection, notices: &[&PreparedNotice]) -> Result<()> {
        let rows: Vec<&NewRow> = notices.iter().map(|n| &n.row).collect();
        insert_rows(conn, &rows).await
    }

    /// After the notification is stored: if a mailer is configured and an
    /// address given, mail a copy in the background.
    pub fn mail_prepared(&self, n: &PreparedNotice, email: Option<&str>) {
        if let (Some(mailer), Some(to)) = (self.mailer.clone(), email.map(str::trim).filter(|e| !e.is_empty())) {
            let to = to.to_string();
            let user_id = n.row.user_id.clone();
            let notification_id = n.row.id.clone();
            let (subject, body) = mail_text(&n.msg, &self.render);
            tokio::spawn(async move {
                // Logs name the person by id only, never by address.
                match mailer.send(&to, &subject, &body).await {
                    Ok(()) => {
                        tracing::debug!(%user_id, %notification_id, mailer = mailer.name(), "notification mailed")
                    }
                    Err(e) => tracing::warn!(
                        %user_id, %notification_id, mailer = mailer.name(), code = %e.code, error = %e.msg,
                        "notification could not be mailed"
                    ),
                }
            });
        }
    }

    /// The person's notifications, newest first.
    pub async fn inbox(&self, user_id: &str, limit: i64) -> Result<Vec<Notification>> {
        let rows: Vec<NotificationRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 ORDER BY created_at_ms DESC, id DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit.clamp(1, MAX_INBOX_LIMIT))
        .fetch_all(&self.ctx.db.pool)
        .await?;
        Ok(rows.into_iter().map(Notification::from).collect())
    }

    pub async fn unread_count(&self, user_id: &str) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at_ms IS NULL")
                .bind(user_id)
                .fetch_one(&self.ctx.db.pool)
                .await?;
        Ok(n)
    }

    /// Mark one notification (`Some(id)`) or all (`None`) of the person's own
    /// as read; returns how many changed. Someone else's id is NotFound.
    pub async fn mark_read(&self, user_id: &str, id: Option<&str>) -> Result<u64> {
        let now = self.ctx.now_ms();
        let mut tx = self.ctx.db.begin().await?;
        let changed = match id {
            None => sqlx::query("UPDATE notifications SET read_at_ms = $1 WHERE user_id = $2 AND read_at_ms IS NULL")
                .bind(now)
                .bind(user_id)
                .execute(tx.conn())
                .await?
                .rows_affected(),
            Some(id) => {
                let own: Option<(Option<i64>,)> =
                    sqlx::query_as("SELECT read_at_ms FROM notifications WHERE id = $1 AND user_id = $2")
                        .bind(id)
                        .bind(user_id)
                        .fetch_optional(tx.conn())
                        .await?;
                match own {
                    None => return Err(Error::not_found("notification")),
                    Some((Some(_),)) => 0,
                    Some((None,)) => sqlx::query(
                        "UPDATE notifications SET read_at_ms = $1 WHERE id = $2 AND user_id = $3 AND read_at_ms IS NULL",
                    )
                    .bind(now)
                    .bind(id)
                    .bind(user_id)
                    .execute(tx.conn())
                    .await?
                    .rows_affected(),
                }
            }
        };
        tx.commit().await?;
        Ok(changed)
    }

    /// Everything the inbox holds for the person, oldest first.
    pub async fn export(&self, user_id: &str) -> Result<serde_json::Value> {
        let rows: Vec<NotificationRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 ORDER BY created_at_ms ASC, id ASC"
        ))
        .bind(user_id)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        let list: Vec<Notification> = rows.into_iter().map(Notification::from).collect();
        Ok(serde_json::json!({ "notifications": list }))
    }

    /// Delete the person's whole inbox (account deletion); returns how many.
    pub async fn delete_all(&self, user_id: &str) -> Result<u64> {
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query("DELETE FROM notifications WHERE user_id = $1")
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
