-- A key rotation vouches for each subject's chain as it stood, under the new
-- key: a digest of every entry up to seq and its MAC. Entries after seq are
-- keyed with the new key; entries up to it keep the hashes they were written
-- with (so earlier exports still compare) and are checked through the digest.
CREATE TABLE access_log_checkpoints (
    subject_user_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    digest TEXT NOT NULL,
    mac TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
