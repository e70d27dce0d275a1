-- Customers' media (API.md §3.6, DESIGN.md §3 item 6). A job per message whose file is still
-- to be copied off Meta commits with the message itself; a media worker claims it under a lease
-- and the job goes once the message is `stored` or `failed`. What to fetch (media id, type,
-- filename, Meta's sha256) is read from the message row.
ALTER TABLE mod_chat_messages ADD COLUMN media_key text;  -- the blob store's key of a stored file

CREATE TABLE wa_media_jobs (
  message_id       bigint PRIMARY KEY REFERENCES mod_chat_messages (id) ON DELETE CASCADE,
  site_id          text NOT NULL,
  -- ready: to be fetched at next_attempt_at; running: a worker (claimed_by) holds it until
  -- lease_until; a lapsed lease is a process that died with it, and any worker may take it.
  state            text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'running')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  claimed_by       text,
  lease_until      timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wa_media_jobs_due_idx ON wa_media_jobs (next_attempt_at) WHERE state = 'ready';
CREATE INDEX wa_media_jobs_lease_idx ON wa_media_jobs (lease_until) WHERE state = 'running';
CREATE INDEX wa_media_jobs_claimed_idx ON wa_media_jobs (claimed_by) WHERE state = 'running';
