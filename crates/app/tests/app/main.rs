#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The tests that span rooms: the authorization walk over every room's
//! routes, the catalogue and the rooms' lists, health, metrics and the
//! OpenAPI document, and the pages as a browser without JavaScript uses them.

mod authz;
mod boundaries;
mod catalogue;
mod hardening;
mod keys;
mod pages;
mod platform;

mod common {
    pub use yizhan_app::testing::*;
}
