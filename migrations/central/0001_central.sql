-- The central schema: the tenant registry and what the lifecycle needs.
-- Runs with search_path set to the central schema (CENTRAL_SCHEMA, default hltutor),
-- so every name here is created there.
SET LOCAL citus.enable_schema_based_sharding TO off;

-- Exactly the seed's columns (4.1.1), plus updated_at.
CREATE TABLE tenants (
    tenant_id VARCHAR(50) PRIMARY KEY,
    tenant_name VARCHAR(200) NOT NULL,
    admin_email VARCHAR(200),
    admin_name VARCHAR(100),
    university_name VARCHAR(200),
    contact VARCHAR(100),
    description TEXT,
    application_id INTEGER,
    application_kind VARCHAR(20),
    status VARCHAR(20) NOT NULL DEFAULT 'active'
        CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended', 'deleted', 'purged')),
    created_at TIMESTAMP DEFAULT NOW(),
    deleted_at TIMESTAMP,
    deleted_reason VARCHAR(255),
    suspended_at TIMESTAMP,
    suspended_reason VARCHAR(255),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE INDEX tenants_application_id_idx ON tenants (application_id);
CREATE INDEX tenants_admin_email_idx ON tenants (lower(admin_email));
CREATE INDEX tenants_status_idx ON tenants (status);

-- Everything that happened to a tenant, oldest first by id.
CREATE TABLE tenant_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id VARCHAR(50) NOT NULL,
    event VARCHAR(50) NOT NULL,
    actor VARCHAR(50) NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tenant_events_tenant_idx ON tenant_events (tenant_id, id);

-- The last tenant migration applied to each tenant schema (and to the template).
CREATE TABLE tenant_schema_versions (
    schema_name VARCHAR(63) PRIMARY KEY,
    version BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
