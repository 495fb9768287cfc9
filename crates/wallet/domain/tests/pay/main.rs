//! The payment services against a real database (SQLite by default,
//! PostgreSQL with YIZHAN_TEST_DATABASE_URL), with the sandbox gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bills;
mod common;
mod limits;
mod packets;
mod paycode_confirm;
mod paylater;
mod qr;
mod recovery;
mod wallet;
mod withdrawals;
