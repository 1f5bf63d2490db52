//! The service market: its webhook payloads (`webhook`), their signatures
//! (`signature`) and what they do to tenants (`lifecycle`).

pub mod lifecycle;
pub mod signature;
pub mod webhook;
