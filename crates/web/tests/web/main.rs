#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The web crate's one integration-test binary: the real application on a
//! fresh database per test, driven through HTTP requests in-process.

mod authz;
mod common;
mod identity_api;
mod pages;
mod platform;
mod wallet;
