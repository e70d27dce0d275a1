-- Every wachatd keeps each site's settings (routing, decrypted credentials) in its site actor.
-- A change made by any process, or by hand, is announced on this channel with the site's id,
-- so the others load that site again instead of polling.
CREATE FUNCTION wachat_site_settings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('wachat_site_settings', OLD.site_id);
  ELSE
    PERFORM pg_notify('wachat_site_settings', NEW.site_id);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER mod_chat_widget_settings_changed
  AFTER INSERT OR UPDATE OR DELETE ON mod_chat_widget_settings
  FOR EACH ROW EXECUTE FUNCTION wachat_site_settings_changed();
