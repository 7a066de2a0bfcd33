-- The webhook log's retention (issue 5): deliveries that claimed nothing (a bad signature, a
-- stale time, no secret configured, a duplicate) are what a flood of forged or replayed calls
-- adds; the server prunes those older than its retention as new ones arrive. Deliveries that
-- claimed their event stay: they are what keeps a replayed event from being applied twice.
GRANT SELECT (received_at) ON webhook_deliveries TO kaunter_app;
GRANT DELETE ON webhook_deliveries TO kaunter_app;
