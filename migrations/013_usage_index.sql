-- GET .../whatsapp/usage reads a site's priced statuses only (API.md §3.6).
CREATE INDEX wa_message_statuses_priced_idx ON wa_message_statuses (site_id, whatsapp_message_id)
  WHERE pricing IS NOT NULL;
