//! Integration tests: the real server over HTTP against real Postgres.

mod helpers;

mod auth;
mod chat;
mod cli;
mod errors;
mod isolation;
mod openapi;
mod provisioning;
mod resolution;
mod search_path;
