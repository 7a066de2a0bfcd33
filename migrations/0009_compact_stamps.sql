-- Rows keep their field stamps in a compact binary layout instead of JSON (see
-- sync-server/src/stamps.rs, which reads and writes it): a push writes them for every row it
-- touches, and as JSON they were most of the cost of writing a row.
--
-- version 1 | device count | device ids | field count | per field (name order):
--     name length, name, hlc (8 bytes, big-endian), device index

CREATE FUNCTION pg_temp.compact_stamps(stamps jsonb) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    devices uuid[] := ARRAY(
        SELECT DISTINCT (value->>'device_id')::uuid FROM jsonb_each(stamps) ORDER BY 1);
    device uuid;
    field record;
    name bytea;
    packed bytea := '\x01'::bytea || set_byte('\x00'::bytea, 0, cardinality(devices));
BEGIN
    FOREACH device IN ARRAY devices LOOP
        packed := packed || uuid_send(device);
    END LOOP;
    packed := packed || set_byte('\x00'::bytea, 0,
        (SELECT count(*)::int FROM jsonb_each(stamps)));
    FOR field IN SELECT key, value FROM jsonb_each(stamps) ORDER BY key COLLATE "C" LOOP
        name := convert_to(field.key, 'UTF8');
        packed := packed
            || set_byte('\x00'::bytea, 0, octet_length(name)) || name
            -- The hlc is a u64 written as a decimal string; every real one is below 2^63.
            || int8send((field.value->>'hlc')::numeric::bigint)
            || set_byte('\x00'::bytea, 0,
                   array_position(devices, (field.value->>'device_id')::uuid) - 1);
    END LOOP;
    RETURN packed;
END
$$;

ALTER TABLE patients ALTER COLUMN stamps DROP DEFAULT;
ALTER TABLE patients ALTER COLUMN stamps TYPE bytea USING pg_temp.compact_stamps(stamps);
-- No stamps: version 1, no device, no field.
ALTER TABLE patients ALTER COLUMN stamps SET DEFAULT '\x010000'::bytea;
ALTER TABLE appointments ALTER COLUMN stamps TYPE bytea USING pg_temp.compact_stamps(stamps);
ALTER TABLE cash_movements ALTER COLUMN stamps TYPE bytea USING pg_temp.compact_stamps(stamps);

DROP FUNCTION pg_temp.compact_stamps(jsonb);

-- The purge no longer deletes a purged row's change-log entries (they hold no values since
-- migration 0008), so it no longer needs to find them; one index less to write per change.
DROP INDEX changes_row;
-- Nor does the log need its foreign key to devices: the device id is the pushing device's own,
-- read from its token with its row locked, and device rows are never deleted. The key's check
-- ran once per logged change and cost more than the rest of the insert.
ALTER TABLE changes DROP CONSTRAINT changes_tenant_id_device_id_fkey;
