-- A Goose sessions.db at schema version 5 (before migration 6 added provider_name and
-- model_config_json, and migration 7 message_id): created when Goose moved to SQLite, which
-- imported the older .jsonl session beside it (same id) and left the file in place.
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
INSERT INTO schema_version (version) VALUES (5);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    user_set_name BOOLEAN DEFAULT FALSE,
    session_type TEXT NOT NULL DEFAULT 'user',
    working_dir TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    extension_data TEXT DEFAULT '{}',
    total_tokens INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    accumulated_total_tokens INTEGER,
    accumulated_input_tokens INTEGER,
    accumulated_output_tokens INTEGER,
    schedule_id TEXT,
    recipe_json TEXT,
    user_recipe_values_json TEXT
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL,
    content_json TEXT NOT NULL,
    created_timestamp INTEGER NOT NULL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    tokens INTEGER,
    metadata_json TEXT
);
INSERT INTO sessions (id, name, description, session_type, working_dir, created_at, updated_at, extension_data, accumulated_total_tokens) VALUES
 ('20250305_140000', 'Resize images', '', 'user', '/home/ana/photos', '2025-03-05T14:00:00+00:00', '2025-03-05T14:03:00+00:00', '{}', 2100),
 ('20251015_1', 'Explain the build', '', 'user', '/home/ana/proj', '2025-10-15 08:00:00', '2025-10-15 08:02:00', '{}', 3300);
INSERT INTO messages (session_id, role, content_json, created_timestamp, timestamp, metadata_json) VALUES
 ('20250305_140000', 'user', '[{"type":"text","text":"Resize every jpg here to 50%"}]', 1741183200, '2025-03-05 14:00:00', '{"userVisible":true,"agentVisible":true}'),
 ('20250305_140000', 'assistant', '[{"type":"text","text":"Done, 12 images resized."}]', 1741183380, '2025-03-05 14:03:00', '{"userVisible":true,"agentVisible":true}'),
 ('20251015_1', 'user', '[{"type":"text","text":"How does the build work?"},{"type":"image","data":"iVBORw0KGgo=","mimeType":"image/png"}]', 1760515200, '2025-10-15 08:00:00', '{"userVisible":true,"agentVisible":true}'),
 ('20251015_1', 'assistant', '[{"type":"toolRequest","id":"call_9","toolCall":{"status":"success","value":{"name":"platform__read_resource","arguments":{"uri":"file:///home/ana/proj/Makefile"}}}}]', 1760515205, '2025-10-15 08:00:05', '{"userVisible":true,"agentVisible":true}'),
 ('20251015_1', 'user', '[{"type":"toolResponse","id":"call_9","toolResult":{"status":"success","value":{"content":[{"type":"resource","resource":{"uri":"file:///home/ana/proj/Makefile","mimeType":"text/plain","text":"all:\n\tcargo build"}}]}}}]', 1760515206, '2025-10-15 08:00:06', '{"userVisible":true,"agentVisible":true}'),
 ('20251015_1', 'assistant', '[{"type":"text","text":"make runs cargo build."}]', 1760515320, '2025-10-15 08:02:00', '{"userVisible":true,"agentVisible":true}');
