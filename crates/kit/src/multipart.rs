//! `multipart/form-data` (RFC 7578) bodies: the subset browsers and HTTP
//! clients send (one level, `Content-Disposition: form-data; name=…;
//! filename=…`, an optional `Content-Type` per part). The whole body is read
//! within the route's size limit first; parts are then sliced out of it.
//! [`Multipart`] is the API's extractor, [`CsrfMultipart`] the pages' (its
//! `csrf` part must match, as for [`crate::extract::CsrfForm`]).

use crate::extract::{any_bytes, csrf_matches};
use crate::problem::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use yizhan_core::{Code, Error};

/// At most this many parts in one body.
pub const MAX_PARTS: usize = 64;
/// Text parts (not files) are at most this long.
pub const MAX_TEXT_PART_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// Present for a file (possibly empty, when no file was chosen).
    pub file_name: Option<String>,
    /// The type the sender declared, lowercased, without parameters.
    pub content_type: Option<String>,
    pub data: axum::body::Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct Multipart {
    pub parts: Vec<Part>,
}

impl Multipart {
    /// The first part of this name.
    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// A text part's value ("" when absent or not UTF-8).
    pub fn text(&self, name: &str) -> &str {
        self.part(name).and_then(|p| std::str::from_utf8(&p.data).ok()).unwrap_or("")
    }

    /// Every text part (not a file) by name, the first of each name.
    pub fn texts(&self) -> std::collections::HashMap<String, String> {
        let mut m = std::collections::HashMap::new();
        for p in self.parts.iter().filter(|p| p.file_name.is_none()) {
            if let Ok(s) = std::str::from_utf8(&p.data) {
                m.entry(p.name.clone()).or_insert_with(|| s.to_string());
            }
        }
        m
    }
}

fn malformed() -> Error {
    Error::new(Code::MalformedJson, "error.request.bad_multipart")
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut it = content_type.split(';');
    if !it.next()?.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    it.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
    })
    .filter(|b| !b.is_empty() && b.len() <= 70)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

/// A header parameter (`name="x"`) of a Content-Disposition value.
fn param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        Some(v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v).replace("\\\"", "\""))
    })
}

/// Splits a body into its parts.
pub fn parse(content_type: &str, body: &axum::body::Bytes) -> Result<Multipart, Error> {
    let b =
        boundary(content_type).ok_or_else(|| Error::new(Code::UnsupportedMediaType, "error.request.not_multipart"))?;
    let delim = format!("--{b}");
    let next_delim = format!("\r\n--{b}");
    let mut pos = find(body, delim.as_bytes(), 0).ok_or_else(malformed)? + delim.len();
    let mut parts = Vec::new();
    loop {
        // After a delimiter: "--" ends the body, CRLF starts a part.
        if body[pos..].starts_with(b"--") {
            break;
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(malformed());
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or_else(malformed)?;
        let head = std::str::from_utf8(&body[pos..head_end]).map_err(|_| malformed())?;
        let (mut name, mut file_name, mut content_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else { return Err(malformed()) };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                if !v.trim().to_ascii_lowercase().starts_with("form-data") {
                    return Err(malformed());
                }
                name = param(v, "name");
                file_name = param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
            }
        }
        let start = head_end + 4;
        let end = find(body, next_delim.as_bytes(), start).ok_or_else(malformed)?;
        let name = name.ok_or_else(malformed)?;
        if file_name.is_none() && end - start > MAX_TEXT_PART_BYTES {
            return Err(Error::new(Code::PayloadTooLarge, "error.request.too_large"));
        }
        parts.push(Part { name, file_name, content_type, data: body.slice(start..end) });
        if parts.len() > MAX_PARTS {
            return Err(malformed());
        }
        pos = end + next_delim.len();
    }
    Ok(Multipart { parts })
}

async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Multipart, ApiError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if boundary(&ct).is_none() {
        return Err(ApiError(Error::new(Code::UnsupportedMediaType, "error.request.not_multipart")));
    }
    let body = any_bytes(req, state).await?;
    parse(&ct, &body).map_err(ApiError)
}

impl<S: Send + Sync> FromRequest<S> for Multipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read(req, state).await
    }
}

/// A page's multipart form whose `csrf` part matches this browser's token.
pub struct CsrfMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for CsrfMultipart {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let expected = crate::security::expected_csrf(req.headers(), req.extensions()).unwrap_or_default();
        let m = read(req, state).await.map_err(IntoResponse::into_response)?;
        let given = m.text("csrf");
        if !csrf_matches(&expected, given) {
            return Err(ApiError(Error::new(Code::CsrfFailed, "error.request.form_expired")).into_response());
        }
        Ok(CsrfMultipart(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_sliced_out_with_their_names_and_types() {
        let body = axum::body::Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.png\"\r\n\
              Content-Type: image/PNG\r\n\r\n\x89PNG\r\n--X\r\n--XyZ--\r\n",
        );
        let m = parse("multipart/form-data; boundary=\"XyZ\"", &body).unwrap();
        assert_eq!(m.text("csrf"), "abc");
        let f = m.part("file").unwrap();
        assert_eq!(f.file_name.as_deref(), Some("a b.png"));
        assert_eq!(f.content_type.as_deref(), Some("image/png"));
        // A CRLF and a near-boundary inside the data stay data.
        assert_eq!(&f.data[..], b"\x89PNG\r\n--X");
        assert_eq!(m.texts().len(), 1);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let ct = "multipart/form-data; boundary=B";
        for bad in
            [&b""[..], b"--B\r\nno header end", b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--", b"junk"]
        {
            assert!(parse(ct, &axum::body::Bytes::copy_from_slice(bad)).is_err());
        }
        assert!(boundary("application/json").is_none());
        assert!(boundary("multipart/form-data").is_none());
    }
}
