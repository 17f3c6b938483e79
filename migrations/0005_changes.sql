-- Records of what changed from one collection version to the next (src/changes.rs).
ALTER TABLE hamn.records DROP CONSTRAINT IF EXISTS records_kind_check;
ALTER TABLE hamn.records ADD CONSTRAINT records_kind_check
    CHECK (kind IN ('token', 'job', 'source', 'change'));
