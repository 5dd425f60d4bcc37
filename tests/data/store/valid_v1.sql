-- A valid ferry durable store, schema version 1, with 200 sessions (one
-- queued message each) and 200 retained messages. Recipe for truncated.db
-- (see README.md); durable_store_test also runs it to check that a version 1
-- file written by hand loads.
PRAGMA page_size=4096;
PRAGMA journal_mode=WAL;
BEGIN;
CREATE TABLE sessions(client_id TEXT NOT NULL PRIMARY KEY, expiry_interval_s INTEGER NOT NULL, disconnected_at_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE subscriptions(client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL, no_local INTEGER NOT NULL, retain_as_published INTEGER NOT NULL, retain_handling INTEGER NOT NULL, subscription_id INTEGER NOT NULL, PRIMARY KEY(client_id, filter)) WITHOUT ROWID;
CREATE TABLE session_messages(client_id TEXT NOT NULL, seq INTEGER NOT NULL, qos INTEGER NOT NULL, packet_id INTEGER NOT NULL, state INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB, msg_qos INTEGER NOT NULL, retain INTEGER NOT NULL, props BLOB, expiry_at_ms INTEGER NOT NULL, received_at_ms INTEGER NOT NULL, origin_client TEXT NOT NULL, PRIMARY KEY(client_id, seq)) WITHOUT ROWID;
CREATE TABLE qos2_inbound(client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, PRIMARY KEY(client_id, packet_id)) WITHOUT ROWID;
CREATE TABLE retained(topic TEXT NOT NULL PRIMARY KEY, payload BLOB, qos INTEGER NOT NULL, props BLOB, expiry_at_ms INTEGER NOT NULL, received_at_ms INTEGER NOT NULL, origin_client TEXT NOT NULL) WITHOUT ROWID;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO sessions SELECT 'client-' || i, 3600, 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO session_messages SELECT 'client-' || i, 1, 1, 0, 0, 'sensor/' || i, zeroblob(300), 1, 0, NULL, 0, 0, '' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO retained SELECT 'sensor/' || i, zeroblob(200), 1, NULL, 0, 0, '' FROM n;
PRAGMA application_id=1179800153;
PRAGMA user_version=1;
COMMIT;
