#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The identity room over HTTP: the real application on a fresh database per test.

mod accounts;
mod api;
mod sessions;
mod setup;
mod totp;
mod verify;

mod common {
    pub use yizhan_app::testing::*;
}
