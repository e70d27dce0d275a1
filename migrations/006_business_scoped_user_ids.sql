-- Meta's business-scoped user ids (BSUID, META.md "Customer identity"): a customer who uses a
-- WhatsApp username may be known by the BSUID alone, with the phone withheld. A visitor is found
-- by either; one delivery carrying both links them on one visitor.
ALTER TABLE mod_chat_visitors ADD COLUMN whatsapp_user_id text;
CREATE UNIQUE INDEX mod_chat_visitors_bsuid_idx ON mod_chat_visitors (site_id, whatsapp_user_id)
  WHERE whatsapp_user_id IS NOT NULL;
ALTER TABLE wa_message_statuses ADD COLUMN recipient_user_id text;
