//! Files attached to a service's form (a photo for a permit, a scanned
//! certificate). The type is decided by the file's first bytes (JPEG, PNG or
//! PDF), never by what the sender declares alone: a declared type that
//! disagrees is refused, and so is anything else. At most
//! [`MAX_UPLOAD_BYTES`] each and [`MAX_UPLOADS_PER_PERSON`] per person.
//!
//! They are kept in the database as blobs, not as files under the data
//! directory: a blob is written in the same transaction as its row, is
//! backed up and restored with the answers that name it, is seen by every
//! server process on one PostgreSQL database (files would need a shared
//! disk), and goes in the same transaction as the account when it is deleted.
//! The cost, a database larger by the files, is bounded by the limits above.
//!
//! Read only by the person who uploaded it and by staff of the department
//! that owns the service, whose read is written to the person's access log
//! before the bytes are returned.

use crate::form::Kind;
use crate::CityHall;
use serde::Serialize;
use sha2::{Digest, Sha256};
use yizhan_audit::NewAccess;
use yizhan_core::{Arg, Error, FieldError, Msg, Result};
use yizhan_identity::{Principal, Role};

/// The largest file accepted.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Files one person keeps at most (across services).
pub const MAX_UPLOADS_PER_PERSON: i64 = 50;
const MAX_FILE_NAME_CHARS: usize = 100;

/// An upload as listed: everything but the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Upload {
    pub id: String,
    pub service_id: String,
    pub field: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at_ms: i64,
}

const UPLOAD_COLS: &str = "id, service_id, field, file_name, content_type, size_bytes, sha256, created_at_ms";

/// The type a file's content shows, by its magic bytes.
pub fn sniff(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// A file name safe to show and to send back: its last path segment, no
/// control or quoting characters, at most 100 characters.
fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';' | '<' | '>'))
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    }
}

impl CityHall {
    /// Keeps a file the person attaches to the service's form question `field`.
    pub async fn upload(
        &self,
        person_id: &str,
        service_id: &str,
        field: &str,
        file_name: &str,
        declared_type: Option<&str>,
        data: &[u8],
    ) -> Result<Upload> {
        let service = self.visible_service(service_id).await?;
        let form = service.parsed_form()?;
        let path = format!("form.{field}");
        let Some(f) = form.fields.iter().find(|f| f.name == field && f.kind == Kind::Upload) else {
            return Err(Error::field(&path, "city.upload.no_such_question"));
        };
        if data.is_empty() {
            return Err(Error::field(&path, "city.upload.empty"));
        }
        if data.len() > MAX_UPLOAD_BYTES {
            return Err(Error::field(&path, "city.upload.too_big")
                .with("max", Arg::Int((MAX_UPLOAD_BYTES / 1024 / 1024) as i64)));
        }
        let accepted = || {
            f.accept.iter().map(|t| t.rsplit('/').next().unwrap_or("").to_uppercase()).collect::<Vec<_>>().join(", ")
        };
        let Some(kind) = sniff(data).filter(|k| f.accept.iter().any(|a| a == k)) else {
            return Err(Error::fields(vec![FieldError::new(
                &path,
                Msg::new("city.upload.type").text("types", accepted()),
            )]));
        };
        // A declared type must agree with the content (a generic one says nothing).
        if let Some(d) = declared_type.map(str::trim).filter(|d| !d.is_empty() && *d != "application/octet-stream") {
            let d = if d == "image/jpg" || d == "image/pjpeg" { "image/jpeg" } else { d };
            if d != kind {
                return Err(Error::fields(vec![FieldError::new(&path, Msg::new("city.upload.type_mismatch"))]));
            }
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM city_uploads WHERE person_id = $1")
            .bind(person_id)
            .fetch_one(&self.ctx.db.pool)
            .await?;
        if count >= MAX_UPLOADS_PER_PERSON {
            return Err(Error::field(&path, "city.upload.too_many").with("max", Arg::Int(MAX_UPLOADS_PER_PERSON)));
        }
        let u = Upload {
            id: self.ctx.new_id(),
            service_id: service_id.to_string(),
            field: field.to_string(),
            file_name: clean_name(file_name),
            content_type: kind.to_string(),
            size_bytes: data.len() as i64,
            sha256: hex::encode(Sha256::digest(data)),
            created_at_ms: self.ctx.now_ms(),
        };
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query(
            "INSERT INTO city_uploads (id, person_id, service_id, org_id, field, file_name, content_type, size_bytes, \
             sha256, data, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&u.id)
        .bind(person_id)
        .bind(service_id)
        .bind(&service.org_id)
        .bind(&u.field)
        .bind(&u.file_name)
        .bind(&u.content_type)
        .bind(u.size_bytes)
        .bind(&u.sha256)
        .bind(data.to_vec())
        .bind(u.created_at_ms)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(u)
    }

    /// An upload's description, if the person made it.
    pub async fn my_upload(&self, person_id: &str, id: &str) -> Result<Upload> {
        let u: Option<Upload> =
            sqlx::query_as(&format!("SELECT {UPLOAD_COLS} FROM city_uploads WHERE id = $1 AND person_id = $2"))
                .bind(id)
                .bind(person_id)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
        u.ok_or_else(|| Error::not_found("upload"))
    }

    async fn bytes_of(&self, id: &str) -> Result<Vec<u8>> {
        let data: Option<Vec<u8>> = sqlx::query_scalar("SELECT data FROM city_uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.ctx.db.pool)
            .await?;
        data.ok_or_else(|| Error::not_found("upload"))
    }

    /// The person's own file, with its bytes.
    pub async fn read_my_upload(&self, person_id: &str, id: &str) -> Result<(Upload, Vec<u8>)> {
        let u = self.my_upload(person_id, id).await?;
        let data = self.bytes_of(id).await?;
        Ok((u, data))
    }

    /// Staff of the department that owns the service read a person's file:
    /// the read is written to the person's access log first. Anyone else, or
    /// staff of another organisation, learns nothing (not found).
    pub async fn staff_read_upload(
        &self,
        actor: &Principal,
        org_id: &str,
        id: &str,
        why: &str,
    ) -> Result<(Upload, Vec<u8>)> {
        if why.trim().is_empty() {
            return Err(Error::field("why", "city.read.why_required"));
        }
        let row: Option<(String, String)> = sqlx::query_as("SELECT person_id, org_id FROM city_uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.ctx.db.pool)
            .await?;
        let Some((person_id, owner_org)) = row.filter(|(_, o)| o == org_id) else {
            return Err(Error::not_found("upload"));
        };
        let member = self.identity.require_staff(actor, &owner_org, Role::Operator).await?;
        let org = self.identity.org(&owner_org).await?;
        self.audit
            .record(NewAccess {
                subject_user_id: person_id.clone(),
                actor_user_id: actor.user_id.clone(),
                actor_label: member.user_name,
                org_id: Some(org.id),
                org_label: Some(org.name),
                what: "upload".to_string(),
                why: why.to_string(),
            })
            .await?;
        let u = self.my_upload(&person_id, id).await?;
        let data = self.bytes_of(id).await?;
        Ok((u, data))
    }

    /// Every answer to an upload question names an upload this person made
    /// for this service and question (field errors otherwise).
    pub(crate) async fn check_uploads(
        &self,
        person_id: &str,
        service_id: &str,
        form: &crate::form::Form,
        kept: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let mut errors = Vec::new();
        for f in form.fields.iter().filter(|f| f.kind == Kind::Upload) {
            let Some(id) = kept.get(&f.name).and_then(|v| v.as_str()) else { continue };
            match self.my_upload(person_id, id).await {
                Ok(u) if u.service_id == service_id && u.field == f.name => {}
                _ => errors.push(FieldError::new(&format!("form.{}", f.name), Msg::new("city.upload.unknown"))),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::fields(errors))
        }
    }

    /// The files an application's answers name (without their bytes): its
    /// person's uploads for that service. For its person or for staff who
    /// opened it through [`crate::CityHall::staff_read`].
    pub async fn application_uploads(&self, a: &crate::Application) -> Result<Vec<Upload>> {
        let form = self.service(&a.service_id).await?.parsed_form()?;
        let mut out = Vec::new();
        for f in form.fields.iter().filter(|f| f.kind == Kind::Upload) {
            let Some(id) = a.answers.get(&f.name).and_then(|v| v.as_str()) else { continue };
            if let Ok(u) = self.my_upload(&a.person_id, id).await {
                if u.service_id == a.service_id {
                    out.push(u);
                }
            }
        }
        Ok(out)
    }

    /// Staff read a file of an application they may work (the read logged
    /// first); not found unless the application names it.
    pub async fn staff_read_application_upload(
        &self,
        actor: &Principal,
        application_id: &str,
        upload_id: &str,
        why: &str,
    ) -> Result<(Upload, Vec<u8>)> {
        let a = self.application_of(application_id).await?;
        self.identity.require_staff(actor, &a.org_id, Role::Operator).await?;
        if !self.application_uploads(&a).await?.iter().any(|u| u.id == upload_id) {
            return Err(Error::not_found("upload"));
        }
        self.staff_read_upload(actor, &a.org_id, upload_id, why).await
    }

    /// The person's uploads (without their bytes), for their export.
    pub async fn uploads_of(&self, person_id: &str) -> Result<Vec<Upload>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {UPLOAD_COLS} FROM city_uploads WHERE person_id = $1 ORDER BY created_at_ms, id LIMIT 200"
        ))
        .bind(person_id)
        .fetch_all(&self.ctx.db.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_decides_the_type() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<html>"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_name("C:\\Users\\me\\photo \"1\".jpg"), "photo 1.jpg");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("\u{0}\n"), "file");
        assert_eq!(clean_name(&"x".repeat(300)).chars().count(), 100);
    }
}
