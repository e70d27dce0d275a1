-- Inbound processing moved from one transaction per batch to per-conversation actors
-- (DESIGN.md §2): the dispatcher claims rows for a while ('processing' with a lease) and marks
-- them done once every message and status of the row is stored. A row whose lease ran out (its
-- process died) goes back to 'pending'; processing is idempotent, so doing it again is safe.
ALTER TABLE wa_webhook_events DROP CONSTRAINT wa_webhook_events_status_check;
ALTER TABLE wa_webhook_events ADD CONSTRAINT wa_webhook_events_status_check
  CHECK (status IN ('pending', 'processing', 'processed', 'rejected', 'unroutable', 'failed'));
ALTER TABLE wa_webhook_events ADD COLUMN claimed_at timestamptz;

DROP INDEX wa_webhook_events_open_idx;
CREATE INDEX wa_webhook_events_open_idx ON wa_webhook_events (id)
  WHERE status IN ('pending', 'processing', 'failed', 'unroutable');
