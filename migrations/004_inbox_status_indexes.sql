-- One small partial index per inbox state that a query looks for. The shared index of 003 held
-- pending and processing rows too, so with a large backlog the once-a-second requeue queries
-- (unroutable, stale processing, failed) each walked every pending row, about 50 ms apiece at
-- 50,000 rows, and each claim walked past the rows still in flight.
DROP INDEX wa_webhook_events_open_idx;
CREATE INDEX wa_webhook_events_pending_idx ON wa_webhook_events (id) WHERE status = 'pending';
CREATE INDEX wa_webhook_events_processing_idx ON wa_webhook_events (claimed_at)
  WHERE status = 'processing';
CREATE INDEX wa_webhook_events_failed_idx ON wa_webhook_events (processed_at)
  WHERE status = 'failed';
CREATE INDEX wa_webhook_events_unroutable_idx ON wa_webhook_events (id)
  WHERE status = 'unroutable';
