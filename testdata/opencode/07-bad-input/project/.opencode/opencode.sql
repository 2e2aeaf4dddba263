CREATE TABLE sessions (id TEXT PRIMARY KEY, parent_session_id TEXT, title TEXT NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0.0,
  updated_at INTEGER NOT NULL, created_at INTEGER NOT NULL, summary_message_id TEXT);
CREATE TABLE messages (id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  role TEXT NOT NULL, parts TEXT NOT NULL DEFAULT '[]', model TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER);
CREATE TABLE files (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, path TEXT NOT NULL, content TEXT NOT NULL,
  version TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE(path, session_id, version));
INSERT INTO sessions (id, parent_session_id, title, message_count, prompt_tokens, completion_tokens, cost, updated_at, created_at, summary_message_id) VALUES ('5b2f0e4c-1a2b-4c3d-8e9f-000000000007', NULL, 'Half broken', 3, 0, 0, 0, 1751360000, 1751360000, NULL);
INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at, finished_at) VALUES ('b-1', '5b2f0e4c-1a2b-4c3d-8e9f-000000000007', 'user', '[{"type":"text","data":{"text":"good before"}}]', NULL, 1751360000, 1751360000, NULL);
INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at, finished_at) VALUES ('b-2', '5b2f0e4c-1a2b-4c3d-8e9f-000000000007', 'assistant', '[{"type":"text","data":{"text":', NULL, 1751360001, 1751360001, NULL);
INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at, finished_at) VALUES ('b-3', '5b2f0e4c-1a2b-4c3d-8e9f-000000000007', 'user', '[{"type":"text","data":{"text":"good after"}}]', NULL, 1751360002, 1751360002, NULL);
