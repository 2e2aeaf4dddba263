CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);
CREATE TABLE cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);
INSERT INTO cursorDiskKV VALUES ('composerData:0b1c0000-0000-4000-8000-000000000004', '{"_v":10,"composerId":"0b1c0000-0000-4000-8000-000000000004","name":"cut sho');
INSERT INTO cursorDiskKV VALUES ('composerData:0b1c0000-0000-4000-8000-000000000003', '{"_v":10,"composerId":"0b1c0000-0000-4000-8000-000000000003","name":"Bad input","createdAt":1767000000000,"lastUpdatedAt":1767000100000,"status":"completed","fullConversationHeadersOnly":[{"bubbleId":"x-u1","type":1},{"bubbleId":"x-bad","type":2},{"bubbleId":"x-new","type":3},{"bubbleId":"x-gone","type":2},{"bubbleId":"x-null","type":2},{"bubbleId":"x-a1","type":2}]}');
INSERT INTO cursorDiskKV VALUES ('bubbleId:0b1c0000-0000-4000-8000-000000000003:x-u1', '{"_v":3,"type":1,"bubbleId":"x-u1","text":"List the files.","createdAt":"2026-01-29T09:20:01.000Z"}');
INSERT INTO cursorDiskKV VALUES ('bubbleId:0b1c0000-0000-4000-8000-000000000003:x-bad', '{"_v":3,"type":2,"bubbleId":"x-bad","text":"trunc');
INSERT INTO cursorDiskKV VALUES ('bubbleId:0b1c0000-0000-4000-8000-000000000003:x-new', '{"_v":3,"type":3,"bubbleId":"x-new","text":"a kind of message this reader does not know"}');
INSERT INTO cursorDiskKV VALUES ('bubbleId:0b1c0000-0000-4000-8000-000000000003:x-a1', '{"_v":3,"type":2,"bubbleId":"x-a1","text":"src/ and Cargo.toml.","createdAt":"2026-01-29T09:20:05.000Z"}');
INSERT INTO cursorDiskKV VALUES ('bubbleId:0b1c0000-0000-4000-8000-000000000003:x-null', NULL);
