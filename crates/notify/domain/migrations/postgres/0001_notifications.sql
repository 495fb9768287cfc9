-- One inbox for every capability; each notification in both languages.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title_en TEXT NOT NULL,
    title_zh TEXT NOT NULL,
    body_en TEXT NOT NULL,
    body_zh TEXT NOT NULL,
    link TEXT,
    created_at_ms BIGINT NOT NULL,
    read_at_ms BIGINT
);

CREATE INDEX notifications_user_created ON notifications (user_id, created_at_ms);
