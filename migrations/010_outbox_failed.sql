-- A send given up keeps its outbox entry (state 'failed', with Meta's request body), so that
-- POST .../messages/{message_id}/retry can send the same row again. A failed entry holds
-- nothing up: later sends of the conversation go past it.
ALTER TABLE wa_outbox DROP CONSTRAINT wa_outbox_state_check;
ALTER TABLE wa_outbox ADD CONSTRAINT wa_outbox_state_check CHECK (state IN ('ready', 'sending', 'failed'));
