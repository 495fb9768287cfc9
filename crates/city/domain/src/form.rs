//! A service's form as data: a subset of JSON Schema, checked when a
//! department publishes it and used to validate each resident's answers on
//! the server, with a message key per field.
//!
//! ```json
//! {"type": "object",
//!  "x-order": ["kind", "partner_name"],
//!  "required": ["kind"],
//!  "properties": {
//!    "kind": {"type": "string", "enum": ["first", "renewal"],
//!             "title": {"en": "Kind", "zh": "类型"},
//!             "x-enum-titles": [{"en": "First", "zh": "首次"}, {"en": "Renewal", "zh": "续办"}]},
//!    "partner_name": {"type": "string", "maxLength": 50,
//!             "title": {"en": "…", "zh": "…"}, "description": {"en": "help", "zh": "帮助"},
//!             "x-show-if": {"field": "kind", "in": ["first"]}}}}
//! ```
//! Types: string (minLength, maxLength, enum), integer (minimum, maximum),
//! boolean, and a file: `{"type": "string", "format": "x-upload",
//! "x-accept": ["image/jpeg", "image/png", "application/pdf"]}` whose answer
//! is the id of an upload the person made for this service and field (see
//! [`crate::uploads`]; `x-accept` defaults to all three types). `x-show-if` shows a question only when an earlier answer is one
//! of the listed values; a hidden question is neither required nor kept.

use crate::LocalText;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use yizhan_core::{Arg, Error, FieldError, Msg, Result};

pub const MAX_FIELDS: usize = 40;
pub const MAX_STRING_CHARS: i64 = 2000;
const MAX_CHOICES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    String,
    Integer,
    Boolean,
    /// A file the person uploaded: the answer is the upload's id.
    Upload,
}

/// The file types a form may ask for (the only ones whose content is checked).
pub const UPLOAD_TYPES: &[&str] = &["image/jpeg", "image/png", "application/pdf"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    #[serde(rename = "in")]
    pub values: Vec<Value>,
}

/// One question of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub title: LocalText,
    pub help: Option<LocalText>,
    pub required: bool,
    /// For a choice: the values and their titles.
    pub choices: Vec<(String, LocalText)>,
    pub min_length: Option<i64>,
    pub max_length: Option<i64>,
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    pub show_if: Option<Condition>,
    /// For an upload: the file types accepted.
    pub accept: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Form {
    pub fields: Vec<Field>,
}

fn bad(field: &str, key: &str) -> Error {
    Error::field(field, key)
}

fn local_text(v: Option<&Value>, field: &str) -> Result<Option<LocalText>> {
    match v {
        None => Ok(None),
        Some(v) => {
            let t: LocalText =
                serde_json::from_value(v.clone()).map_err(|_| bad(field, "city.schema.text_both_languages"))?;
            t.check(field)?;
            Ok(Some(t))
        }
    }
}

fn int(v: Option<&Value>, field: &str) -> Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| bad(field, "city.schema.integer")),
    }
}

impl Form {
    /// Parses and checks a schema as a department publishes it.
    pub fn parse(schema: &Value) -> Result<Form> {
        let Some(obj) = schema.as_object() else { return Err(bad("form", "city.schema.object")) };
        if obj.is_empty() {
            return Ok(Form::default());
        }
        if obj.get("type").and_then(Value::as_str) != Some("object") {
            return Err(bad("form", "city.schema.object"));
        }
        let props = match obj.get("properties") {
            None => return Ok(Form::default()),
            Some(p) => p.as_object().ok_or_else(|| bad("form.properties", "city.schema.object"))?,
        };
        if props.len() > MAX_FIELDS {
            return Err(bad("form.properties", "city.schema.too_many").with("max", Arg::Int(MAX_FIELDS as i64)));
        }
        let required: Vec<String> = match obj.get("required") {
            None => Vec::new(),
            Some(r) => serde_json::from_value(r.clone()).map_err(|_| bad("form.required", "city.schema.names"))?,
        };
        let order: Vec<String> = match obj.get("x-order") {
            None => props.keys().cloned().collect(),
            Some(o) => serde_json::from_value(o.clone()).map_err(|_| bad("form.x-order", "city.schema.names"))?,
        };
        if order.len() != props.len() || !order.iter().all(|n| props.contains_key(n)) {
            return Err(bad("form.x-order", "city.schema.order"));
        }
        if let Some(r) = required.iter().find(|r| !props.contains_key(*r)) {
            return Err(bad(&format!("form.required.{r}"), "city.schema.unknown_field"));
        }
        let mut fields: Vec<Field> = Vec::new();
        for name in &order {
            let path = format!("form.properties.{name}");
            if name.is_empty() || name.len() > 40 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(bad(&path, "city.schema.name"));
            }
            let p = props[name].as_object().ok_or_else(|| bad(&path, "city.schema.object"))?;
            let kind = match p.get("type").and_then(Value::as_str) {
                Some("string") if p.get("format").and_then(Value::as_str) == Some("x-upload") => Kind::Upload,
                Some("string") => Kind::String,
                Some("integer") => Kind::Integer,
                Some("boolean") => Kind::Boolean,
                _ => return Err(bad(&format!("{path}.type"), "city.schema.type")),
            };
            let title = local_text(p.get("title"), &format!("{path}.title"))?
                .ok_or_else(|| bad(&format!("{path}.title"), "city.schema.text_both_languages"))?;
            let help = local_text(p.get("description"), &format!("{path}.description"))?;
            let mut choices = Vec::new();
            if let Some(e) = p.get("enum") {
                let values: Vec<String> =
                    serde_json::from_value(e.clone()).map_err(|_| bad(&format!("{path}.enum"), "city.schema.names"))?;
                if kind != Kind::String || values.is_empty() || values.len() > MAX_CHOICES {
                    return Err(bad(&format!("{path}.enum"), "city.schema.choices"));
                }
                let titles: Vec<Value> = match p.get("x-enum-titles") {
                    Some(Value::Array(a)) if a.len() == values.len() => a.clone(),
                    _ => return Err(bad(&format!("{path}.x-enum-titles"), "city.schema.choice_titles")),
                };
                for (i, (v, t)) in values.into_iter().zip(titles.iter()).enumerate() {
                    let t = local_text(Some(t), &format!("{path}.x-enum-titles[{i}]"))?
                        .ok_or_else(|| bad(&path, "city.schema.choice_titles"))?;
                    choices.push((v, t));
                }
            }
            let show_if = match p.get("x-show-if") {
                None => None,
                Some(c) => {
                    let c: Condition = serde_json::from_value(c.clone())
                        .map_err(|_| bad(&format!("{path}.x-show-if"), "city.schema.condition"))?;
                    // Only on an earlier question, so answers are checked in one pass.
                    if !fields.iter().any(|f| f.name == c.field) || c.values.is_empty() {
                        return Err(bad(&format!("{path}.x-show-if"), "city.schema.condition"));
                    }
                    Some(c)
                }
            };
            let accept: Vec<String> = match p.get("x-accept") {
                None => UPLOAD_TYPES.iter().map(|t| t.to_string()).collect(),
                Some(a) => {
                    let list: Vec<String> = serde_json::from_value(a.clone())
                        .map_err(|_| bad(&format!("{path}.x-accept"), "city.schema.accept"))?;
                    if kind != Kind::Upload
                        || list.is_empty()
                        || !list.iter().all(|t| UPLOAD_TYPES.contains(&t.as_str()))
                    {
                        return Err(bad(&format!("{path}.x-accept"), "city.schema.accept"));
                    }
                    list
                }
            };
            let field = Field {
                accept: if kind == Kind::Upload { accept } else { Vec::new() },
                name: name.clone(),
                kind,
                title,
                help,
                required: required.contains(name),
                choices,
                min_length: int(p.get("minLength"), &format!("{path}.minLength"))?,
                max_length: int(p.get("maxLength"), &format!("{path}.maxLength"))?,
                minimum: int(p.get("minimum"), &format!("{path}.minimum"))?,
                maximum: int(p.get("maximum"), &format!("{path}.maximum"))?,
                show_if,
            };
            fields.push(field);
        }
        Ok(Form { fields })
    }

    /// Whether a question is shown, given the answers so far.
    pub fn shown(&self, field: &Field, answers: &Map<String, Value>) -> bool {
        match &field.show_if {
            None => true,
            Some(c) => answers.get(&c.field).is_some_and(|v| c.values.contains(v)),
        }
    }

    /// Checks a resident's answers: every error names its field and says
    /// what is wrong as a message key. Returns the answers kept (those of
    /// questions shown), in the form's order.
    pub fn validate(&self, answers: &Value) -> Result<Map<String, Value>> {
        let empty = Map::new();
        let given = match answers {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => return Err(bad("form", "city.form.object")),
        };
        let mut errors = Vec::new();
        for name in given.keys() {
            if !self.fields.iter().any(|f| &f.name == name) {
                errors.push(FieldError::new(&format!("form.{name}"), Msg::new("city.form.unknown")));
            }
        }
        let mut kept = Map::new();
        for f in &self.fields {
            let path = format!("form.{}", f.name);
            if !self.shown(f, &kept) {
                continue;
            }
            let v = match given.get(&f.name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() && matches!(f.kind, Kind::String | Kind::Upload) => None,
                Some(v) => Some(v),
            };
            let Some(v) = v else {
                if f.required {
                    errors.push(FieldError::new(&path, Msg::new("city.form.required")));
                }
                continue;
            };
            match self.check_value(f, v) {
                Ok(v) => {
                    kept.insert(f.name.clone(), v);
                }
                Err(m) => errors.push(FieldError::new(&path, m)),
            }
        }
        if errors.is_empty() {
            Ok(kept)
        } else {
            Err(Error::fields(errors))
        }
    }

    fn check_value(&self, f: &Field, v: &Value) -> std::result::Result<Value, Msg> {
        match f.kind {
            Kind::String => {
                let Some(s) = v.as_str() else { return Err(Msg::new("city.form.type.string")) };
                let s = s.trim();
                let n = s.chars().count() as i64;
                if !f.choices.is_empty() {
                    if !f.choices.iter().any(|(c, _)| c == s) {
                        return Err(Msg::new("city.form.choice"));
                    }
                } else if s.chars().any(char::is_control) {
                    return Err(Msg::new("city.form.control"));
                }
                if let Some(min) = f.min_length.filter(|m| n < *m) {
                    return Err(Msg::new("city.form.too_short").int("min", min));
                }
                let max = f.max_length.unwrap_or(MAX_STRING_CHARS).min(MAX_STRING_CHARS);
                if n > max {
                    return Err(Msg::new("city.form.too_long").int("max", max));
                }
                Ok(Value::String(s.to_string()))
            }
            Kind::Integer => {
                let Some(i) = v.as_i64() else { return Err(Msg::new("city.form.type.integer")) };
                if let Some(min) = f.minimum.filter(|m| i < *m) {
                    return Err(Msg::new("city.form.too_small").int("min", min));
                }
                if let Some(max) = f.maximum.filter(|m| i > *m) {
                    return Err(Msg::new("city.form.too_big").int("max", max));
                }
                Ok(Value::from(i))
            }
            Kind::Boolean => match v {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                _ => Err(Msg::new("city.form.type.boolean")),
            },
            // The shape of an upload's id; whose upload it is the caller checks.
            Kind::Upload => match v.as_str().map(str::trim) {
                Some(id)
                    if !id.is_empty()
                        && id.len() <= 64
                        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
                {
                    Ok(Value::String(id.to_string()))
                }
                _ => Err(Msg::new("city.form.upload")),
            },
        }
    }
}
