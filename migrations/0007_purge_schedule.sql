-- When the business's tombstones are next due for a purge. The first push after that moment
-- claims the purge (moving this a day on, under the tenant row's lock, so one push claims it)
-- and the server runs it after that push commits.
ALTER TABLE tenants ADD COLUMN next_purge_at timestamptz NOT NULL DEFAULT now();
