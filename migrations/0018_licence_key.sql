-- The server's Ed25519 key that signs the licence leases desks enforce offline. Not any
-- business's data, so no tenant_id and no row-level security: the server (as kaunter_app)
-- reads it to sign, and nothing else does. The seed is made by the server right after the
-- migrations run (migrate.rs), once, and never changes: desks pin its public key.
CREATE TABLE signing_keys (
    purpose    text        NOT NULL PRIMARY KEY CHECK (purpose IN ('licence')),
    seed       bytea       NOT NULL CHECK (length(seed) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON signing_keys TO kaunter_app;
