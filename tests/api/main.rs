//! Integration tests: the real server over HTTP against real Postgres.

mod helpers;

mod auth;
mod chat;
mod citus;
mod cli;
mod console;
mod errors;
mod isolation;
mod market;
mod observability;
mod openapi;
mod provisioning;
mod resolution;
mod search_path;
mod superadmin;
mod tls;
mod usage;
mod webhooks;
