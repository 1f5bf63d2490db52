//! The service market: its webhook payloads (`webhook`), their signatures
//! (`signature`) and what they do to tenants (`lifecycle`); its MySQL database (read
//! only: applications and demo expiry).

pub mod db;
pub mod demo_expiry;
pub mod lifecycle;
pub mod signature;
pub mod webhook;
