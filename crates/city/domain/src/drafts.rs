//! Drafts: a service's form saved part-way and resumed later, one per person
//! and service, bounded in size. A draft is not checked against the form
//! beyond its shape (only the form's own questions, plain values): it is
//! checked when it is submitted. A submitted application removes it.

use crate::CityHall;
use serde::Serialize;
use serde_json::{Map, Value};
use yizhan_core::{Arg, Error, Result};

/// The largest draft, as stored JSON.
pub const MAX_DRAFT_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draft {
    pub service_id: String,
    pub answers: Map<String, Value>,
    pub updated_at_ms: i64,
}

impl CityHall {
    /// Saves (or replaces) the person's draft of the service's form.
    pub async fn save_draft(&self, person_id: &str, service_id: &str, answers: &Value) -> Result<Draft> {
        let service = self.visible_service(service_id).await?;
        let form = service.parsed_form()?;
        let Some(given) = answers.as_object() else { return Err(Error::field("form", "city.form.object")) };
        let mut kept = Map::new();
        for (name, v) in given {
            if !form.fields.iter().any(|f| &f.name == name) {
                return Err(Error::field(&format!("form.{name}"), "city.form.unknown"));
            }
            match v {
                Value::Null => {}
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    kept.insert(name.clone(), v.clone());
                }
                _ => return Err(Error::field(&format!("form.{name}"), "city.draft.value")),
            }
        }
        let json = serde_json::to_string(&kept).map_err(Error::internal)?;
        if json.len() > MAX_DRAFT_BYTES || json.contains('\0') {
            return Err(Error::field("form", "city.draft.too_big").with("max", Arg::Int(MAX_DRAFT_BYTES as i64 / 1024)));
        }
        let now = self.ctx.now_ms();
        sqlx::query(
            "INSERT INTO city_drafts (person_id, service_id, answers, updated_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (person_id, service_id) DO UPDATE SET answers = $3, updated_at_ms = $4",
        )
        .bind(person_id)
        .bind(service_id)
        .bind(&json)
        .bind(now)
        .execute(&self.ctx.db.pool)
        .await?;
        Ok(Draft { service_id: service_id.to_string(), answers: kept, updated_at_ms: now })
    }

    /// The person's draft of the service's form, if there is one.
    pub async fn draft(&self, person_id: &str, service_id: &str) -> Result<Option<Draft>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT answers, updated_at_ms FROM city_drafts WHERE person_id = $1 AND service_id = $2")
                .bind(person_id)
                .bind(service_id)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
        Ok(match row {
            None => None,
            Some((answers, updated_at_ms)) => Some(Draft {
                service_id: service_id.to_string(),
                answers: serde_json::from_str(&answers).map_err(Error::internal)?,
                updated_at_ms,
            }),
        })
    }

    /// Throws the draft away. Returns whether there was one.
    pub async fn delete_draft(&self, person_id: &str, service_id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM city_drafts WHERE person_id = $1 AND service_id = $2")
            .bind(person_id)
            .bind(service_id)
            .execute(&self.ctx.db.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The person's drafts, for their export.
    pub(crate) async fn drafts_of(&self, person_id: &str) -> Result<Vec<Draft>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT service_id, answers, updated_at_ms FROM city_drafts WHERE person_id = $1 \
             ORDER BY updated_at_ms DESC LIMIT 200",
        )
        .bind(person_id)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        rows.into_iter()
            .map(|(service_id, answers, updated_at_ms)| {
                Ok(Draft {
                    service_id,
                    answers: serde_json::from_str(&answers).map_err(Error::internal)?,
                    updated_at_ms,
                })
            })
            .collect()
    }
}
