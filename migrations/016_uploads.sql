-- Files agents upload to send (issue 14 item 7): kept in the blob store under `key`; the id
-- Meta gave the file when it was uploaded for a phone number is kept, so every send of it
-- after the first goes by that id (Meta keeps uploaded media 30 days).
CREATE TABLE wa_uploads (
  key                   text PRIMARY KEY,
  site_id               text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  kind                  text NOT NULL CHECK (kind IN ('image', 'document')),
  file_name             text NOT NULL,
  mime_type             text NOT NULL,
  file_size             bigint NOT NULL,
  meta_media_id         text,
  meta_phone_number_id  text,
  meta_uploaded_at      timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wa_uploads_site_idx ON wa_uploads (site_id, created_at);
