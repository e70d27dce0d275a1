-- A delivery with parts that could not be used (a message without id, a contact without any
-- identifier) is 'partial': what could be used is stored, and `error` names what was skipped.
-- It used to end 'processed', which hid the loss from an operator.
ALTER TABLE wa_webhook_events DROP CONSTRAINT wa_webhook_events_status_check;
ALTER TABLE wa_webhook_events ADD CONSTRAINT wa_webhook_events_status_check
  CHECK (status IN ('pending', 'processing', 'processed', 'partial', 'rejected', 'unroutable', 'failed'));
