-- Per-collection choice of engine (issue 14): NULL lets --max-features decide; 'memory' or
-- 'postgis' is the operator's override (hamn ingest --engine), kept across re-ingests.
ALTER TABLE hamn.collections
    ADD COLUMN IF NOT EXISTS engine text CHECK (engine IN ('memory', 'postgis'));
