-- Notifications as messages: a catalogue key with arguments for the title and
-- the body (JSON text), rendered in the reader's language when read, and what
-- the notification is about (a kind and an id) instead of a page URL. Rows
-- from before keep their two stored languages.
ALTER TABLE notifications ADD COLUMN title_msg TEXT;
ALTER TABLE notifications ADD COLUMN body_msg TEXT;
ALTER TABLE notifications ADD COLUMN target_kind TEXT;
ALTER TABLE notifications ADD COLUMN target_id TEXT;
