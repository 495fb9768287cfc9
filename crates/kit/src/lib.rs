//! The kit: what every room's HTTP side shares, and nothing of any domain.
//! Extractors (JSON bodies as problems, the language, CSRF-checked forms,
//! the client's address, the Idempotency-Key), problem+json with the one
//! table from error code to status, idempotent calls, security headers and
//! the CSRF cookie, the page frame, the text catalogue, the authorization
//! table's type, request metrics, and the description of a room.

pub mod authz;
pub mod extract;
pub mod i18n;
pub mod icons;
pub mod idem;
pub mod metrics;
pub mod multipart;
pub mod page;
pub mod problem;
pub mod room;
pub mod security;
pub mod texts;

pub use i18n::Lang;
pub use page::{Layout, WebConfig};
pub use problem::{ApiError, ApiResult, Problem};
pub use room::{Deps, Mounted, Room};
