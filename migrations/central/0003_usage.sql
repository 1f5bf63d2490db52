-- Per-tenant API call counters, in hourly buckets (UTC hour starts). Each replica
-- counts in memory and adds its counts here in batches (calls = calls + EXCLUDED.calls),
-- so replicas add up. Totals, the last 24 hours and per-day figures are sums over
-- these rows.
SET LOCAL citus.enable_schema_based_sharding TO off;

CREATE TABLE api_usage (
    tenant_id VARCHAR(50) NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    calls BIGINT NOT NULL CONSTRAINT api_usage_calls_check CHECK (calls >= 0),
    PRIMARY KEY (tenant_id, hour)
);
