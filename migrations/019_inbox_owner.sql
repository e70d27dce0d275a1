-- Rows are processed by the process that received them, straight from memory: the intake writer
-- commits each row with `owner_key`, the key of a session advisory lock its process's inbox
-- dispatcher holds, and hands the bodies to that dispatcher. No claim reads the row back (a SELECT ... FOR
-- UPDATE per row, which wrote a lock into every row and sent each body back as hex): that was
-- about a third of PostgreSQL's CPU per webhook (bench/RESULTS.md, set 12).
-- A row keeps its owner until it is finished (or given back, owner NULL). When the owner's lock
-- is gone (the dispatcher stopped or died, with its process or alone, or its connection broke),
-- any process's dispatcher frees the row for an ordinary claim within a second
-- (inbox_claims::free_orphans). The lock must be held by a real server session: behind a
-- transaction-pooling proxy (PgBouncer in transaction mode) it would not mean what it says.
--
-- Upgrade: stop processes of older versions before this runs. They claim by status alone, so
-- they would take owned rows too (done twice, harmlessly, but done twice), and their queries
-- no longer match a partial index.
ALTER TABLE wa_webhook_events ADD COLUMN owner_key bigint;

-- Claims look only at rows nobody owns; the orphan sweep and the lag gauge at owned ones. One
-- partial index each, so neither walks the other's rows (a backlog of unowned rows can be large).
DROP INDEX wa_webhook_events_pending_idx;
CREATE INDEX wa_webhook_events_pending_idx ON wa_webhook_events (id)
  WHERE status = 'pending' AND owner_key IS NULL;
CREATE INDEX wa_webhook_events_owned_idx ON wa_webhook_events (id)
  WHERE status = 'pending' AND owner_key IS NOT NULL;
