-- Per-collection zoom range for vector tiles (OGC API - Tiles tile matrix limits).
ALTER TABLE hamn.collections
    ADD COLUMN IF NOT EXISTS min_zoom smallint NOT NULL DEFAULT 0 CHECK (min_zoom BETWEEN 0 AND 24),
    ADD COLUMN IF NOT EXISTS max_zoom smallint NOT NULL DEFAULT 22 CHECK (max_zoom BETWEEN 0 AND 24);
