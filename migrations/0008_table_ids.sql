-- What each data table's feature ids are like (issue 14): written by ingest in the transaction
-- that commits the table, read when the PostGIS engine opens a version, so that opening a
-- version of ten million features does not first scan all their ids. Keyed by the data table,
-- which is one version's; a table from before this migration has no row and is scanned when
-- opened, as before.
CREATE TABLE IF NOT EXISTS hamn.table_ids (
    data_table text PRIMARY KEY,
    -- Some id is served as a JSON number, some as a string (catalog::id_is_integer).
    integers boolean NOT NULL,
    strings boolean NOT NULL,
    -- The id of the first feature (lowest hamn_fid), the example in the OpenAPI document.
    example_id text
);
