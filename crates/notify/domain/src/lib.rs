//! One notifications service for every capability: an inbox per person, each
//! message in Chinese and English, and optionally a copy by mail.

pub mod mail;

pub use mail::{Mailer, SandboxMailer, SmtpMailer};

use serde::Serialize;
use std::sync::Arc;
use yizhan_core::{Ctx, Error, FieldError, MigrationSet, Result};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "notify",
    sqlite: &[("0001", include_str!("../migrations/sqlite/0001_notifications.sql"))],
    postgres: &[("0001", include_str!("../migrations/postgres/0001_notifications.sql"))],
};

pub const MAX_INBOX_LIMIT: i64 = 500;
const MAX_TITLE_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 5000;
const MAX_LINK_CHARS: usize = 2000;

/// What a capability tells a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Which capability and event, e.g. "pay.received", "city.permit_ready".
    pub kind: String,
    pub title_en: String,
    pub title_zh: String,
    pub body_en: String,
    pub body_zh: String,
    /// An in-app path to open, e.g. "/wallet/transfers/…".
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub title_en: String,
    pub title_zh: String,
    pub body_en: String,
    pub body_zh: String,
    pub link: Option<String>,
    pub created_at_ms: i64,
    pub read_at_ms: Option<i64>,
}

type NotificationRow = (String, String, String, String, String, String, String, Option<String>, i64, Option<i64>);

const COLUMNS: &str = "id, user_id, kind, title_en, title_zh, body_en, body_zh, link, created_at_ms, read_at_ms";

fn from_row(r: NotificationRow) -> Notification {
    Notification {
        id: r.0,
        user_id: r.1,
        kind: r.2,
        title_en: r.3,
        title_zh: r.4,
        body_en: r.5,
        body_zh: r.6,
        link: r.7,
        created_at_ms: r.8,
        read_at_ms: r.9,
    }
}

fn validate(user_id: &str, msg: &Message) -> Result<()> {
    let mut errors = Vec::new();
    let mut check = |field: &str, value: &str, max: usize, required: bool| {
        if required && value.trim().is_empty() {
            errors.push(FieldError::new(field, yizhan_core::Msg::new("error.field.empty")));
        } else if value.chars().count() > max {
            errors.push(FieldError::new(field, yizhan_core::Msg::new("error.field.too_long").int("max", max as i64)));
        }
    };
    check("user_id", user_id, 200, true);
    check("kind", &msg.kind, 64, true);
    check("title_en", &msg.title_en, MAX_TITLE_CHARS, true);
    check("title_zh", &msg.title_zh, MAX_TITLE_CHARS, true);
    check("body_en", &msg.body_en, MAX_BODY_CHARS, false);
    check("body_zh", &msg.body_zh, MAX_BODY_CHARS, false);
    if let Some(link) = &msg.link {
        check("link", link, MAX_LINK_CHARS, true);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::fields(errors))
    }
}

/// The mail for a message: both languages, Chinese first.
pub fn mail_text(msg: &Message) -> (String, String) {
    let subject = if msg.title_zh == msg.title_en {
        msg.title_zh.clone()
    } else {
        format!("{} / {}", msg.title_zh, msg.title_en)
    };
    let mut body = format!("{}\n\n{}\n\n---\n\n{}\n\n{}\n", msg.title_zh, msg.body_zh, msg.title_en, msg.body_en);
    if let Some(link) = &msg.link {
        body.push_str(&format!("\n{link}\n"));
    }
    (subject, body)
}

#[derive(Clone)]
pub struct Notify {
    ctx: Ctx,
    mailer: Option<Arc<dyn Mailer>>,
}

impl Notify {
    pub fn new(ctx: Ctx, mailer: Option<Arc<dyn Mailer>>) -> Notify {
        Notify { ctx, mailer }
    }

    /// The configured mailer's name ("sandbox", "smtp"), if any.
    pub fn mailer_name(&self) -> Option<&'static str> {
        self.mailer.as_ref().map(|m| m.name())
    }

    /// Store in the person's inbox; then, if a mailer is configured and an
    /// address given, mail a copy in the background. Returns the id.
    pub async fn send(&self, user_id: &str, email: Option<&str>, msg: Message) -> Result<String> {
        validate(user_id, &msg)?;
        let id = self.ctx.new_id();
        let now = self.ctx.now_ms();
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query(&format!("INSERT INTO notifications ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
            .bind(&id)
            .bind(user_id)
            .bind(&msg.kind)
            .bind(&msg.title_en)
            .bind(&msg.title_zh)
            .bind(&msg.body_en)
            .bind(&msg.body_zh)
            .bind(&msg.link)
            .bind(now)
            .bind(None::<i64>)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        if let (Some(mailer), Some(to)) = (self.mailer.clone(), email.map(str::trim).filter(|e| !e.is_empty())) {
            let to = to.to_string();
            let user_id = user_id.to_string();
            let notification_id = id.clone();
            let (subject, body) = mail_text(&msg);
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
        Ok(id)
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
        Ok(rows.into_iter().map(from_row).collect())
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
        let list: Vec<Notification> = rows.into_iter().map(from_row).collect();
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
