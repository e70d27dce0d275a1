-- Auto-assignment and notifications (API.md §3.3, DESIGN.md §3 item 8). A conversation's
-- follow-ups (CRM link, close summary, assignment) share one job table, queued by the triggers
-- of migration 014, now also with an `assign` job for every new WhatsApp conversation.
ALTER TABLE wa_crm_jobs RENAME TO wa_conversation_jobs;
ALTER TABLE wa_conversation_jobs DROP CONSTRAINT wa_crm_jobs_kind_check;
ALTER TABLE wa_conversation_jobs ADD CONSTRAINT wa_conversation_jobs_kind_check
  CHECK (kind IN ('link', 'closed', 'assign'));

CREATE OR REPLACE FUNCTION wachat_crm_conversation_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.channel <> 'whatsapp' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO wa_conversation_jobs (site_id, kind, visitor_id, conversation_id)
      VALUES (NEW.site_id, 'assign', NEW.visitor_id, NEW.id), (NEW.site_id, 'link', NEW.visitor_id, NEW.id);
  ELSIF NEW.status = 'closed' AND OLD.status <> 'closed' THEN
    INSERT INTO wa_conversation_jobs (site_id, kind, visitor_id, conversation_id)
      VALUES (NEW.site_id, 'closed', NEW.visitor_id, NEW.id);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION wachat_crm_visitor_phone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO wa_conversation_jobs (site_id, kind, visitor_id) VALUES (NEW.site_id, 'link', NEW.id);
  RETURN NULL;
END $$;

-- Ties between equally loaded agents go to the one who waited longest for a conversation.
ALTER TABLE mod_chat_agents ADD COLUMN last_assigned_at timestamptz;
-- An agent's active chats, counted at every assignment.
CREATE INDEX mod_chat_conversations_assigned_idx ON mod_chat_conversations (site_id, assigned_agent_id)
  WHERE status <> 'closed' AND assigned_agent_id IS NOT NULL;

-- A `notification` live event names its row in mod_chat_notifications.
ALTER TABLE wa_events ADD COLUMN notification_id bigint;
CREATE INDEX mod_chat_notifications_agent_idx ON mod_chat_notifications (site_id, agent_id, created_at);
