//! The ways people pay, on top of the ledger: wallets, top-up and withdrawal
//! through a funding gateway, transfers between people, QR codes (static
//! merchant codes and one-time customer pay codes), red packets, and bills and
//! fines issued by city departments.

pub mod emvco;
pub mod gateway;
pub mod qrimage;
pub mod redpacket;
