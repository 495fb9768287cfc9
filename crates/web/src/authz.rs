//! Who may call which API route, as data. The checks themselves live in the
//! extractors (`ApiUser`, `ApiAdmin`) and the domain crates (`require_staff`);
//! the test `tests/authz.rs` walks this table and proves each rule holds for
//! every route, and that every documented route is listed here.

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

pub struct RouteRule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn r(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule { method, path, access }
}

pub static ROUTES: &[RouteRule] = &[
    r("POST", "/api/v1/auth/register", Access::Public),
    r("POST", "/api/v1/auth/login", Access::Public),
    r("POST", "/api/v1/auth/logout", Access::Resident),
    r("GET", "/api/v1/me", Access::Resident),
    r("DELETE", "/api/v1/me", Access::Resident),
    r("POST", "/api/v1/me/real-name", Access::Resident),
    r("GET", "/api/v1/me/access-log", Access::Resident),
    r("GET", "/api/v1/me/export", Access::Resident),
    r("PUT", "/api/v1/me/city", Access::Resident),
    r("GET", "/api/v1/me/notifications", Access::Resident),
    r("POST", "/api/v1/me/notifications/read", Access::Resident),
    r("POST", "/api/v1/cities", Access::PlatformAdmin),
    r("GET", "/api/v1/cities", Access::Resident),
    r("POST", "/api/v1/orgs", Access::PlatformAdmin),
    r("GET", "/api/v1/orgs", Access::Resident),
    r("POST", "/api/v1/orgs/{id}/members", Access::OrgAdmin),
    r("GET", "/api/v1/orgs/{id}/members", Access::OrgStaff),
    r("GET", "/api/v1/orgs/{id}/residents/{user_id}", Access::OrgStaff),
    // the wallet
    r("GET", "/api/v1/wallet", Access::Resident),
    r("POST", "/api/v1/wallet/topup", Access::Resident),
    r("POST", "/api/v1/wallet/withdraw", Access::Resident),
    r("POST", "/api/v1/transfers", Access::Resident),
    r("GET", "/api/v1/wallet/transactions", Access::Resident),
    r("GET", "/api/v1/wallet/statement", Access::Resident),
    r("POST", "/api/v1/paycodes", Access::Resident),
    // The organisation is named in the body; Pay checks the caller is its staff.
    r("POST", "/api/v1/merchant/charge", Access::OrgStaff),
    r("GET", "/api/v1/qr/me", Access::Resident),
    r("GET", "/api/v1/orgs/{id}/qr", Access::OrgStaff),
    r("POST", "/api/v1/qr/preview", Access::Resident),
    r("POST", "/api/v1/qr/pay", Access::Resident),
    r("POST", "/api/v1/red-packets", Access::Resident),
    r("GET", "/api/v1/red-packets/{id}", Access::Resident),
    r("POST", "/api/v1/red-packets/{id}/claim", Access::Resident),
    r("GET", "/api/v1/bills", Access::Resident),
    r("POST", "/api/v1/bills/{id}/pay", Access::Resident),
    r("POST", "/api/v1/orgs/{id}/bills", Access::OrgStaff),
    r("GET", "/api/v1/orgs/{id}/residents/{user_id}/bills", Access::OrgStaff),
    r("GET", "/api/v1/admin/users/{user_id}/transactions", Access::PlatformAdmin),
    r("POST", "/api/v1/me/vehicles", Access::Resident),
    // No token: the gateway signs the body instead.
    r("POST", "/api/v1/gateway/sandbox/notify", Access::Public),
];
