-- The language a collection's title, description and keywords are written in (sv, en …);
-- NULL: the catalog's language. The DCAT-AP-SE catalog tags the texts with it.
ALTER TABLE hamn.collections ADD COLUMN IF NOT EXISTS language text;
