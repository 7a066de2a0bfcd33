-- What each desk last said about its own sync state, for head office: how much waits to be sent
-- and since when, what the server refused, when it last synced and its last error. Reported by
-- the desk after each sync round that reached the server (POST /v1/sync/status).
ALTER TABLE devices
    ADD COLUMN status_reported_at    timestamptz NULL,
    ADD COLUMN status_pending        integer     NULL CHECK (status_pending >= 0),
    ADD COLUMN status_refused        integer     NULL CHECK (status_refused >= 0),
    ADD COLUMN status_oldest_pending timestamptz NULL,
    ADD COLUMN status_last_synced_at timestamptz NULL,
    ADD COLUMN status_last_error     text        NULL,
    ADD COLUMN status_schema_version integer     NULL,
    ADD COLUMN status_app_version    text        NULL;
