//! Who may call which API route, as data: each room lists its rows, the app
//! joins them. The checks themselves live in the extractors and the domain
//! crates; the app's test walks the joined table and proves each rule holds
//! for every route, and that every documented route is listed.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Any logged-in person.
    Resident,
    /// Staff (any role) of the organisation named in the path, or a platform admin.
    OrgStaff,
    /// An admin of the organisation named in the path, or a platform admin.
    OrgAdmin,
    /// Platform administrators only.
    PlatformAdmin,
}

#[derive(Debug)]
pub struct RouteRule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// It moves money: an `Idempotency-Key` header is required (and documented).
    pub idempotent: bool,
}

pub const fn r(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule { method, path, access, idempotent: false }
}

/// A route that moves money: it requires an `Idempotency-Key`.
pub const fn money(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule { method, path, access, idempotent: true }
}
