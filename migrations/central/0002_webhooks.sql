-- The service market's webhooks: every delivery (idempotency and audit), and the last
-- market event applied per application (order safety).
-- Runs with search_path set to the central schema.
SET LOCAL citus.enable_schema_based_sharding TO off;

-- One row per delivery, written in the transaction that applies it. The key is the
-- `webhook-id` header, else `event:<endpoint>:<event_id>` from the payload, else a
-- generated `rcv_<uuid>` (such a delivery cannot be recognised when it comes again).
-- A redelivery of a key finds this row and gets `response_status`/`response_body` back.
CREATE TABLE webhook_deliveries (
    delivery_id VARCHAR(300) PRIMARY KEY,
    id_source VARCHAR(20) NOT NULL
        CONSTRAINT webhook_deliveries_id_source_check CHECK (id_source IN ('webhook-id', 'event_id', 'none')),
    endpoint VARCHAR(50) NOT NULL,
    event VARCHAR(100),
    -- 'applied', 'stale' (older than what was applied: ignored), 'unsupported'.
    outcome VARCHAR(20) NOT NULL,
    -- When the market says the event happened (see market::webhook::event_time).
    event_at TIMESTAMPTZ NOT NULL,
    event_at_source VARCHAR(30) NOT NULL,
    auth VARCHAR(20) NOT NULL,
    response_status SMALLINT NOT NULL,
    -- The answer's exact bytes (JSON), so a redelivery gets the very same answer.
    response_body TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_received_at_idx ON webhook_deliveries (received_at);

-- The market event last applied to an application, per aspect ('status': cancelled /
-- reinstated; 'kind': demo <-> service). An event older than this one is not applied.
CREATE TABLE market_application_events (
    application_id INTEGER NOT NULL,
    aspect VARCHAR(20) NOT NULL
        CONSTRAINT market_application_events_aspect_check CHECK (aspect IN ('status', 'kind')),
    last_event VARCHAR(100) NOT NULL,
    last_event_at TIMESTAMPTZ NOT NULL,
    delivery_id VARCHAR(300) NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, aspect)
);
