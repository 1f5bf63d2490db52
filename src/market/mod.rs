//! The service market: its webhook payloads (`webhook`) and what they do to tenants
//! (`lifecycle`: delivery keys, the order check, stored answers); its MySQL database
//! (`db`, read only: applications) and demo expiry. Deliveries are authenticated by
//! `auth::webhook` (signatures: `crate::signature`).

pub mod db;
pub mod demo_expiry;
pub mod lifecycle;
pub mod webhook;
