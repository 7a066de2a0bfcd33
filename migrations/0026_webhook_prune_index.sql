-- The webhook log's pruning (0022) walks the deliveries that claimed nothing, oldest first.
-- Through the index on every delivery's time it also stepped over every old delivery that
-- claimed its event (kept for good), so each forged call cost more as the log grew; this
-- index holds only the ones pruning may delete (its predicate is pruning's, word for word).
CREATE INDEX webhook_deliveries_unclaimed ON webhook_deliveries (received_at)
    WHERE NOT (event_id IS NOT NULL
               AND outcome NOT IN ('duplicate', 'bad_signature', 'stale', 'not_configured'));
