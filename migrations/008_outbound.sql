-- Agents' sends (API.md §3.4): the message row and its outbox entry commit together; senders
-- deliver the outbox to Meta and remove each entry once Meta's answer is recorded.
ALTER TABLE mod_chat_messages
  ADD COLUMN client_message_id   text,
  ADD COLUMN request_fingerprint text,
  ADD COLUMN error_retryable     boolean;
-- client_message_id is unique per conversation, also across processes.
CREATE UNIQUE INDEX mod_chat_messages_client_id_idx ON mod_chat_messages (conversation_id, client_message_id)
  WHERE client_message_id IS NOT NULL;

CREATE TABLE wa_outbox (
  message_id       bigint PRIMARY KEY REFERENCES mod_chat_messages (id) ON DELETE CASCADE,
  site_id          text NOT NULL,
  conversation_id  bigint NOT NULL,
  -- Meta's body without the recipient, which is read from the visitor at each attempt (a send
  -- must not go to a phone the customer has left).
  request          jsonb NOT NULL,
  -- ready: to be sent at next_attempt_at; sending: an attempt holds it (since attempt_at); a
  -- `sending` entry older than the doubt period belongs to an attempt whose answer was lost.
  state            text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'sending')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  attempt_at       timestamptz,
  last_error       jsonb,
  created_at       timestamptz NOT NULL DEFAULT now()
);
-- One conversation's entries go out in message order; the sweep looks for due ones.
CREATE INDEX wa_outbox_conversation_idx ON wa_outbox (conversation_id, message_id);
CREATE INDEX wa_outbox_due_idx ON wa_outbox (next_attempt_at) WHERE state = 'ready';
