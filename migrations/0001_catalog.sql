-- The catalog: one row per collection, pointing at the table that holds its current version.
-- Applied once by `hamn migrate` (or at start-up) inside a transaction, under an advisory lock.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE SCHEMA IF NOT EXISTS hamn_data;

-- Versions are drawn from one sequence so a version number never repeats, not even when a
-- collection is deleted and made again (versions feed HTTP ETags).
CREATE SEQUENCE IF NOT EXISTS hamn.version_seq;

CREATE TABLE IF NOT EXISTS hamn.collections (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{0,47}$'),
    title           text NOT NULL,
    description     text,
    keywords        text[] NOT NULL DEFAULT '{}',
    theme           text,
    publisher       text,
    licence         text,
    source_name     text NOT NULL,
    source_sha256   text NOT NULL,
    source_layer    text NOT NULL,
    source_crs      text NOT NULL,
    attributes      jsonb NOT NULL,
    geometry_types  text[] NOT NULL DEFAULT '{}',
    id_field        text,
    datetime_field  text,
    feature_count   bigint NOT NULL CHECK (feature_count >= 0),
    extent          double precision[] CHECK (extent IS NULL OR cardinality(extent) = 4),
    temporal_start  timestamptz,
    temporal_end    timestamptz,
    created         timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL,
    data_table      text NOT NULL UNIQUE
);
