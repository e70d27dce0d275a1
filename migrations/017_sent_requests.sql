-- The body Meta accepted for an agent's send, kept on the message once its outbox entry is gone,
-- so that a message Meta later reports `failed` (a status webhook, after the send itself was
-- accepted) can be sent again by hand like a send that failed at once (API.md §3.4 retry).
-- The retry clears the message's wamid (so a status naming the new attempt can resolve it when
-- Meta's answer is lost) and keeps the old one aside, so that a late status of the failed
-- attempt is never taken for the new one.
ALTER TABLE mod_chat_messages ADD COLUMN sent_request jsonb, ADD COLUMN superseded_wamid text;
