-- One small partial index per inbox state that a query looks for. The shared index of 003 held
-- pending and processing rows too, so with a large backlog the once-a-second requeue queries
-- (unroutable, stale processing, failed) each walked every pending row, about 50 ms apiece at
-- 50,000 rows, and each claim walked past the rows still in flight.
DROP INDEX wa_webhook_events_open_idx;
CREATE INDEX wa_webhook_events_pending_idx ON wa_webhook_events (id) WHERE status = 'pending';
-- In-flight rows by claim time, for the lease check. Keyed on claimed_at, which is set exactly
-- while a row is 'processing', and not on status: the finish UPDATE filters on
-- status = 'processing', and a partial index with that predicate tempted the planner (whose
-- statistics saw all rows pending) into walking it with the finished ids as a filter.
CREATE INDEX wa_webhook_events_claimed_idx ON wa_webhook_events (claimed_at)
  WHERE claimed_at IS NOT NULL;
CREATE INDEX wa_webhook_events_failed_idx ON wa_webhook_events (processed_at)
  WHERE status = 'failed';
CREATE INDEX wa_webhook_events_unroutable_idx ON wa_webhook_events (id)
  WHERE status = 'unroutable';
