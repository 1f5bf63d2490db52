//! Integration tests: the real server over HTTP against real Postgres.

mod helpers;

mod errors;
mod provisioning;
mod resolution;
mod search_path;
