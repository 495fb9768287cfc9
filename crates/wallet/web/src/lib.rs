//! The wallet room's HTTP side: the JSON API under `/api/v1` (wallet,
//! transfers, QR and pay codes, red packets, bills, the sandbox
//! gateway's webhook) and the pages under `/wallet`, `/red-packets` and
//! `/bills`. Amounts are integer fen in the API and yuan on the pages; every
//! route that moves money takes an idempotency key that also reaches Pay.

pub mod api;
pub mod forms;
pub mod pages;
pub mod texts;

use axum::extract::FromRef;
use yizhan_core::Ctx;
use yizhan_idempotency::Idempotency;
use yizhan_identity::Identity;
use yizhan_kit::authz::{money, r, Access, RouteRule};
use yizhan_kit::page::{NavItem, Tile, WebConfig};
use yizhan_kit::{Deps, Mounted, Room};
use yizhan_notify::Notify;
use yizhan_pay::Pay;

/// What the wallet room's handlers use: one shared count to clone (the
/// state is cloned on every request; its parts hold a dozen counts).
#[derive(Clone)]
pub struct WalletRoom(std::sync::Arc<WalletParts>);

pub struct WalletParts {
    pub ctx: Ctx,
    pub identity: Identity,
    pub notify: Notify,
    pub pay: Pay,
    pub idempotency: Idempotency,
    pub config: WebConfig,
}

impl std::ops::Deref for WalletRoom {
    type Target = WalletParts;
    fn deref(&self) -> &WalletParts {
        &self.0
    }
}

/// The parts extractors ask for (the bearer check asks for `Identity`).
macro_rules! part_of_room {
    ($($t:ty => $f:ident),*) => {$(
        impl FromRef<WalletRoom> for $t {
            fn from_ref(room: &WalletRoom) -> $t {
                room.$f.clone()
            }
        }
    )*};
}
part_of_room!(Ctx => ctx, Identity => identity, Notify => notify, Pay => pay, Idempotency => idempotency, WebConfig => config);

pub static ROOM: Room = Room {
    name: "wallet",
    prefixes: &[
        "/api/v1/wallet",
        "/api/v1/transfers",
        "/api/v1/paycodes",
        "/api/v1/merchant",
        "/api/v1/qr",
        "/api/v1/orgs/{id}/qr",
        "/api/v1/red-packets",
        "/api/v1/bills",
        "/api/v1/orgs/{id}/bills",
        "/api/v1/orgs/{id}/residents/{user_id}/bills",
        "/api/v1/admin/users/{user_id}/transactions",
        "/api/v1/gateway",
        "/wallet",
        "/red-packets",
        "/bills",
    ],
    texts: texts::TEXTS,
    access: ACCESS,
    tiles: &[Tile {
        order: 10,
        key: "wallet",
        href: "/wallet",
        icon: "purse",
        label_key: "service.wallet",
        everywhere: false,
    }],
    nav: &[NavItem { order: 15, href: "/wallet", label_key: "nav.wallet", shows_unread: false }],
    city_services: &["wallet"],
    codes: &[yizhan_ledger::codes::ALL, yizhan_pay::codes::ALL],
    links: &[
        ("transfer", "/wallet/transfers/{id}"),
        ("paycode", "/wallet/paycode/{id}"),
        ("red_packet", "/red-packets/{id}"),
        ("bill", "/bills/{id}"),
        ("wallet_settings", "/wallet/settings"),
    ],
    migrations: &[&yizhan_ledger::MIGRATIONS, &yizhan_pay::MIGRATIONS, &yizhan_pay::paylater::MIGRATIONS],
    mount,
};

fn mount(d: &Deps) -> Result<Mounted, String> {
    let room = WalletRoom(std::sync::Arc::new(WalletParts {
        ctx: d.get()?,
        identity: d.get()?,
        notify: d.get()?,
        pay: d.get()?,
        idempotency: d.get()?,
        config: d.get()?,
    }));
    Ok(Mounted::new(api::router().with_state(room.clone()), pages::router().with_state(room)))
}

static ACCESS: &[RouteRule] = &[
    // the wallet
    r("GET", "/api/v1/wallet", Access::Resident),
    money("POST", "/api/v1/wallet/topup", Access::Resident),
    money("POST", "/api/v1/wallet/withdraw", Access::Resident),
    money("POST", "/api/v1/transfers", Access::Resident),
    r("POST", "/api/v1/transfers/preview", Access::Resident),
    r("GET", "/api/v1/wallet/transactions", Access::Resident),
    // Pay answers only a person the transfer touches (another's is not found).
    r("GET", "/api/v1/wallet/transactions/{id}", Access::Resident),
    r("GET", "/api/v1/wallet/statement", Access::Resident),
    r("GET", "/api/v1/wallet/limits", Access::Resident),
    r("PUT", "/api/v1/wallet/limits", Access::PlatformAdmin),
    r("POST", "/api/v1/paycodes", Access::Resident),
    // Pay answers only the code's owner (another's code is not found).
    r("GET", "/api/v1/paycodes/{id}/status", Access::Resident),
    money("POST", "/api/v1/paycodes/{id}/confirm", Access::Resident),
    r("POST", "/api/v1/paycodes/{id}/decline", Access::Resident),
    r("POST", "/api/v1/wallet/pin", Access::Resident),
    // The organisation is named in the body; Pay checks the caller is its staff.
    money("POST", "/api/v1/merchant/charge", Access::OrgStaff),
    r("GET", "/api/v1/qr/me", Access::Resident),
    r("GET", "/api/v1/orgs/{id}/qr", Access::OrgStaff),
    r("POST", "/api/v1/qr/preview", Access::Resident),
    money("POST", "/api/v1/qr/pay", Access::Resident),
    money("POST", "/api/v1/red-packets", Access::Resident),
    r("GET", "/api/v1/red-packets/{id}", Access::Resident),
    money("POST", "/api/v1/red-packets/{id}/claim", Access::Resident),
    r("GET", "/api/v1/bills", Access::Resident),
    money("POST", "/api/v1/bills/{id}/pay", Access::Resident),
    money("POST", "/api/v1/orgs/{id}/bills", Access::OrgStaff),
    r("GET", "/api/v1/orgs/{id}/residents/{user_id}/bills", Access::OrgStaff),
    r("GET", "/api/v1/admin/users/{user_id}/transactions", Access::PlatformAdmin),
    // No token: the gateway signs the body instead.
    r("POST", "/api/v1/gateway/sandbox/notify", Access::Public),
];
