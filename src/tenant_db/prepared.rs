//! A tenant read as both read paths take it (`conn::read` over sqlx, `wire`).

/// A read-only statement in a tenant's schema, prepared on each connection once per
/// tenant (`conn::read`, `wire`).
pub struct PreparedRead {
    /// `[a-z_]{1,12}`: the server-side statement is `"<name>:<tenant>"` (at most 63 bytes).
    pub name: &'static str,
    /// The parameters' types, e.g. `&[Type::INT8, Type::INT4]` (at least one).
    pub params: &'static [postgres_types::Type],
    /// The statement: unqualified table names, parameters `$1`…
    pub sql: &'static str,
}
