//! `TenantId`: a tenant id is a Postgres schema name, parsed once and quoted always.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Names that can never be a tenant, whatever the configuration.
const RESERVED: &[&str] = &["public", "information_schema"];

/// Why a string is not a tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTenantId {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is longer than 50 characters")]
    TooLong,
    #[error("tenant id must match ^[a-z][a-z0-9_]{{0,49}}$")]
    BadCharacters,
    #[error("tenant id is a reserved schema name")]
    Reserved,
}

/// A validated tenant id: `^[a-z][a-z0-9_]{0,49}$`, not `public`, `information_schema`
/// or `pg_*`. The central and template schemas are refused by [`TenantId::parse_for`],
/// which knows the configuration; handlers only ever see ids that went through it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// Parses a tenant id by its shape alone.
    pub fn parse(s: &str) -> Result<Self, InvalidTenantId> {
        if s.is_empty() {
            return Err(InvalidTenantId::Empty);
        }
        if s.len() > 50 {
            return Err(InvalidTenantId::TooLong);
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok {
            return Err(InvalidTenantId::BadCharacters);
        }
        if RESERVED.contains(&s) || s.starts_with("pg_") {
            return Err(InvalidTenantId::Reserved);
        }
        Ok(Self(s.to_owned()))
    }

    /// Parses a tenant id and also refuses the schemas this deployment reserves.
    pub fn parse_for(s: &str, reserved: &[&str]) -> Result<Self, InvalidTenantId> {
        let id = Self::parse(s)?;
        if reserved.contains(&id.as_str()) {
            return Err(InvalidTenantId::Reserved);
        }
        Ok(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a quoted SQL identifier.
    pub fn quoted(&self) -> String {
        quote_ident(&self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Quotes any SQL identifier: the one function through which every identifier built
/// from data reaches SQL.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A schema name from configuration (central or template schema): same shape as a
/// tenant id, so it is just as safe to put in SQL.
pub fn parse_schema_name(s: &str) -> Result<TenantId, InvalidTenantId> {
    TenantId::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seeds_ids() {
        for ok in ["univ_8", "demo_7", "test_univ", "a", "e2e_test"] {
            assert_eq!(TenantId::parse(ok).unwrap().as_str(), ok);
        }
        let fifty = format!("a{}", "b".repeat(49));
        assert!(TenantId::parse(&fifty).is_ok());
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(TenantId::parse(""), Err(InvalidTenantId::Empty));
        assert_eq!(
            TenantId::parse(&"a".repeat(51)),
            Err(InvalidTenantId::TooLong)
        );
        for bad in [
            "Univ-8",
            "univ-8",
            "8univ",
            "_univ",
            "a; DROP SCHEMA public",
            "대학교",
            "univ\0",
            "univ 8",
            "UNIV",
            "a\"b",
        ] {
            assert_eq!(
                TenantId::parse(bad),
                Err(InvalidTenantId::BadCharacters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_reserved_names() {
        for bad in ["public", "information_schema", "pg_x", "pg_catalog", "pg_"] {
            assert_eq!(
                TenantId::parse(bad),
                Err(InvalidTenantId::Reserved),
                "{bad}"
            );
        }
        assert_eq!(
            TenantId::parse_for("hltutor", &["hltutor", "template_schema"]),
            Err(InvalidTenantId::Reserved)
        );
        assert_eq!(
            TenantId::parse_for("template_schema", &["hltutor", "template_schema"]),
            Err(InvalidTenantId::Reserved)
        );
        assert!(TenantId::parse_for("univ_8", &["hltutor"]).is_ok());
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("univ_8"), "\"univ_8\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(TenantId::parse("x").unwrap().quoted(), "\"x\"");
    }

    #[test]
    fn deserializing_validates() {
        let ok: TenantId = serde_json::from_str("\"univ_8\"").unwrap();
        assert_eq!(ok.as_str(), "univ_8");
        assert!(serde_json::from_str::<TenantId>("\"pg_x\"").is_err());
    }
}
