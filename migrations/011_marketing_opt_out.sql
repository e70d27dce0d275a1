-- A customer who stopped marketing messages (API.md §3.4 "Marketing opt-out"): set by Meta's
-- user_preferences webhook, by error 131050 on a send, or by the site's keywords.
ALTER TABLE mod_chat_visitors ADD COLUMN marketing_opt_out boolean NOT NULL DEFAULT false;
