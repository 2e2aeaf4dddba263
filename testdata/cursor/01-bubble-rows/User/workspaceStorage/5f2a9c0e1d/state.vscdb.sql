CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);
CREATE TABLE cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);
INSERT INTO ItemTable VALUES ('composer.composerData', '{"allComposers":[{"composerId":"0b1c0000-0000-4000-8000-000000000001","name":"Fix the parser","type":"head","lastUpdatedAt":1766692125731}],"selectedComposerIds":["0b1c0000-0000-4000-8000-000000000001"]}');
