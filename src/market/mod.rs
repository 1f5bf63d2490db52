//! The service market: its MySQL database (read only: applications and demo expiry).

pub mod db;
pub mod demo_expiry;
