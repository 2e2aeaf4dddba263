-- A Goose sessions.db at schema version 9 (crates/goose/src/session/session_manager.rs,
-- create_schema): a person's session with tool calls, an error, an unknown content type and a
-- compaction; a sub-agent's session; a scheduled session.
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
INSERT INTO schema_version (version) VALUES (9);
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
    user_recipe_values_json TEXT,
    provider_name TEXT,
    model_config_json TEXT,
    tenant_id TEXT,
    user_id TEXT
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL,
    content_json TEXT NOT NULL,
    created_timestamp INTEGER NOT NULL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    tokens INTEGER,
    metadata_json TEXT
);
CREATE INDEX idx_messages_session ON messages(session_id);
CREATE INDEX idx_messages_message_id ON messages(message_id);

INSERT INTO sessions (id, name, user_set_name, session_type, working_dir, created_at, updated_at, extension_data, total_tokens, input_tokens, output_tokens, accumulated_total_tokens, accumulated_input_tokens, accumulated_output_tokens, provider_name, model_config_json) VALUES
 ('20251120_1', 'Fix failing tests', 0, 'user', '/home/ana/proj', '2025-11-20 09:14:03', '2025-11-20 09:31:40', '{}', 18200, 17000, 1200, 52000, 49000, 3000, 'anthropic', '{"model_name":"claude-sonnet-4-5","context_limit":200000,"temperature":null,"max_tokens":null,"toolshim":false,"toolshim_model":null}'),
 ('20251120_2', 'Survey the test suite', 0, 'sub_agent', '/home/ana/proj', '2025-11-20 09:16:00', '2025-11-20 09:17:10', '{}', 4000, 3800, 200, 4000, 3800, 200, 'anthropic', '{"model_name":"claude-haiku-4-5","context_limit":200000}'),
 ('20251120_3', 'Nightly dependency check', 0, 'scheduled', '/srv/builds', '2025-11-20 02:00:00', '2025-11-20 02:01:30', '{}', NULL, NULL, NULL, NULL, NULL, NULL, 'openai', '{"model_name":"gpt-4o"}');
UPDATE sessions SET schedule_id = 'nightly-deps' WHERE id = '20251120_3';
INSERT INTO sessions (id, name, session_type, working_dir, created_at, updated_at, extension_data) VALUES
 ('20251120_5', 'Manual compaction', 'user', '/home/ana/proj', '2025-11-20 11:00:00', '2025-11-20 11:05:00', '{}');
INSERT INTO sessions (id, name, session_type, working_dir, created_at, updated_at, extension_data, recipe_json, provider_name, model_config_json) VALUES
 ('20251120_4', 'Release notes', 'user', '/home/ana/proj', '2025-11-20 10:00:00', '2025-11-20 10:02:00', '{}', '{"version":"1.0.0","title":"Release notes","description":"Draft release notes","prompt":"Draft release notes from the commits since the last tag."}', 'anthropic', '{"model_name":"claude-sonnet-4-5"}');

INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, timestamp, metadata_json) VALUES
 ('msg_a1', '20251120_1', 'user', '[{"type":"text","text":"Run the tests and fix what fails"}]', 1763630043, '2025-11-20 09:14:03', '{"userVisible":true,"agentVisible":true}'),
 ('msg_a2', '20251120_1', 'assistant', '[{"type":"thinking","thinking":"The user wants the tests run first.","signature":"sig-1"},{"type":"text","text":"I''ll run the test suite first."},{"type":"toolRequest","id":"toolu_01","toolCall":{"status":"success","value":{"name":"developer__shell","arguments":{"command":"cargo test"}}}}]', 1763630050, '2025-11-20 09:14:10', '{"userVisible":true,"agentVisible":true}'),
 ('msg_a3', '20251120_1', 'user', '[{"type":"toolResponse","id":"toolu_01","toolResult":{"status":"success","value":{"content":[{"type":"text","text":"test parse::dates ... FAILED\ntest result: FAILED. 41 passed; 1 failed","annotations":{"audience":["assistant"]}}],"isError":false}}}]', 1763630071, '2025-11-20 09:14:31', '{"userVisible":true,"agentVisible":true}'),
 ('msg_a4', '20251120_1', 'assistant', '[{"type":"toolRequest","id":"toolu_02","toolCall":{"status":"error","error":"Could not interpret tool use parameters for id toolu_02: EOF while parsing an object"}},{"type":"toolRequest","id":"toolu_03","toolCall":{"status":"success","value":{"name":"developer__text_editor","arguments":{"command":"view","path":"/home/ana/proj/src/parse.rs"}}}}]', 1763630080, '2025-11-20 09:14:40', '{"userVisible":true,"agentVisible":true}'),
 ('msg_a5', '20251120_1', 'user', '[{"type":"toolResponse","id":"toolu_02","toolResult":{"status":"error","error":"-32602: Could not interpret tool use parameters"}},{"type":"toolResponse","id":"toolu_03","toolResult":{"status":"success","value":{"content":[{"type":"text","text":"No such file: /home/ana/proj/src/parse.rs"}],"isError":true}}}]', 1763630082, '2025-11-20 09:14:42', '{"userVisible":true,"agentVisible":true}'),
 ('msg_a6', '20251120_1', 'assistant', '[{"type":"redactedThinking","data":"EqQBCkYIBRgCKkB..."},{"type":"text","text":"Fixed the date parser; all 42 tests pass now."},{"type":"chartSpec","spec":{"kind":"bar"}}]', 1763630300, '2025-11-20 09:18:20', '{"userVisible":true,"agentVisible":true}'),
 ('msg_a7', '20251120_1', 'user', '[{"type":"text","text":"Now update the changelog"}]', 1763630500, '2025-11-20 09:21:40', '{"userVisible":false,"agentVisible":false}'),
 ('msg_a8', '20251120_1', 'user', '[{"type":"text","text":"## Summary\nThe user asked to run and fix the tests; the date parser was fixed and all tests pass. The user now wants the changelog updated."}]', 1763630510, '2025-11-20 09:21:50', '{"userVisible":false,"agentVisible":true}'),
 ('msg_a9', '20251120_1', 'assistant', '[{"type":"text","text":"Your context was compacted. The previous message contains a summary of the conversation so far.\nDo not mention that you read a summary or that conversation summarization occurred.\nJust continue the conversation naturally based on the summarized context."}]', 1763630510, '2025-11-20 09:21:50', '{"userVisible":false,"agentVisible":true}'),
 ('msg_a10', '20251120_1', 'user', '[{"type":"text","text":"Now update the changelog"}]', 1763630511, '2025-11-20 09:21:51', '{"userVisible":true,"agentVisible":true}'),
 ('msg_a11', '20251120_1', 'assistant', '[{"type":"systemNotification","notificationType":"inlineMessage","msg":"Context compacted to save space"}]', 1763630511, '2025-11-20 09:21:51', '{"userVisible":true,"agentVisible":false}'),
 ('msg_a12', '20251120_1', 'assistant', '[{"type":"text","text":"Added an entry under Unreleased in CHANGELOG.md."}]', 1763630540, '2025-11-20 09:22:20', '{"userVisible":true,"agentVisible":true}'),
 ('msg_a13', '20251120_1', 'user', '[{"type":"text","text":"Keep going until the lint passes too."}]', 1763630560, '2025-11-20 09:22:40', '{"userVisible":false,"agentVisible":true}'),
 ('msg_b1', '20251120_2', 'user', '[{"type":"text","text":"List the test modules and how many tests each has."}]', 1763630160, '2025-11-20 09:16:00', '{"userVisible":true,"agentVisible":true}'),
 ('msg_b2', '20251120_2', 'assistant', '[{"type":"text","text":"parse: 12, render: 30."}]', 1763630230, '2025-11-20 09:17:10', '{"userVisible":true,"agentVisible":true}'),
 ('msg_c1', '20251120_3', 'user', '[{"type":"text","text":"Check for outdated dependencies and open an issue if any are found."}]', 1763604000, '2025-11-20 02:00:00', '{"userVisible":true,"agentVisible":true}'),
 ('msg_c2', '20251120_3', 'assistant', '[{"type":"text","text":"All dependencies are current."}]', 1763604090, '2025-11-20 02:01:30', '{"userVisible":true,"agentVisible":true}'),
 ('msg_d1', '20251120_4', 'user', '[{"type":"text","text":"Draft release notes from the commits since the last tag."}]', 1763632800, '2025-11-20 10:00:00', '{"userVisible":true,"agentVisible":true}'),
 ('msg_d2', '20251120_4', 'assistant', '[{"type":"text","text":"Here are the notes."}]', 1763632860, '2025-11-20 10:01:00', '{"userVisible":true,"agentVisible":true}'),
 ('msg_d3', '20251120_4', 'user', '[{"type":"text","text":"Shorter, please."}]', 1763632900, '2025-11-20 10:01:40', '{"userVisible":true,"agentVisible":true}'),
 ('msg_e1', '20251120_5', 'user', '[{"type":"text","text":"Explain the cache layer"}]', 1763636400, '2025-11-20 11:00:00', '{"userVisible":true,"agentVisible":false}'),
 ('msg_e2', '20251120_5', 'assistant', '[{"type":"text","text":"It memoizes parsed configs."}]', 1763636460, '2025-11-20 11:01:00', '{"userVisible":true,"agentVisible":false}'),
 ('msg_e3', '20251120_5', 'user', '[{"type":"text","text":"## Summary\nThe cache layer was explained."}]', 1763636500, '2025-11-20 11:01:40', '{"userVisible":false,"agentVisible":true}'),
 ('msg_e4', '20251120_5', 'assistant', '[{"type":"text","text":"Your context was compacted at the user''s request. The previous message contains a summary of the conversation so far.\nDo not mention that you read a summary or that conversation summarization occurred.\nJust continue the conversation naturally based on the summarized context."}]', 1763636500, '2025-11-20 11:01:40', '{"userVisible":false,"agentVisible":true}'),
 ('msg_e5', '20251120_5', 'user', '[{"type":"text","text":"Explain the cache layer"}]', 1763636700, '2025-11-20 11:05:00', '{"userVisible":true,"agentVisible":true}');
