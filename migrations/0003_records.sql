-- Records of the publishing side: API tokens (salted hashes only), ingest jobs with their
-- reports, and sources (URLs refreshed on a schedule, harvested catalogs). Each is a JSON
-- document under a key; hamn's code owns the documents' shape.
CREATE TABLE IF NOT EXISTS hamn.records (
    kind    text NOT NULL CHECK (kind IN ('token', 'job', 'source')),
    key     text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    doc     jsonb NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);

-- Standards a collection conforms to (dcterms:conformsTo from a harvested catalog, e.g. a
-- national specification); served with the collection.
ALTER TABLE hamn.collections ADD COLUMN IF NOT EXISTS conforms_to text[] NOT NULL DEFAULT '{}';
