-- Per-site send settings (API.md §3.2): the send rate of the site's number, and the keywords by
-- which a customer opts out of (and back into) marketing messages.
ALTER TABLE mod_chat_widget_settings
  ADD COLUMN messages_per_second integer NOT NULL DEFAULT 80 CHECK (messages_per_second BETWEEN 1 AND 1000),
  ADD COLUMN opt_out_keywords text[] NOT NULL DEFAULT ARRAY['STOP', 'UNSUBSCRIBE'],
  ADD COLUMN opt_in_keywords text[] NOT NULL DEFAULT ARRAY['START'];
