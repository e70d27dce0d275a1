-- Stream tickets: single-use, short-lived credentials for one site's event stream. A browser's
-- EventSource cannot send an Authorization header, so the console trades its bearer token for a
-- ticket (POST /api/sites/{site}/events/tickets) and opens the stream with ?ticket=. Only the
-- SHA-256 is kept; deleting the token that asked for a ticket deletes the ticket too.
CREATE TABLE wa_stream_tickets (
  ticket_hash  bytea PRIMARY KEY,
  site_id      text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  token_id     text REFERENCES api_tokens (id) ON DELETE CASCADE,  -- null: asked with the admin token
  expires_at   timestamptz NOT NULL
);
CREATE INDEX wa_stream_tickets_expiry ON wa_stream_tickets (expires_at);
