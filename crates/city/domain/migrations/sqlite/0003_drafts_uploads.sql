-- A form saved part-way, to resume later: one per person and service.
CREATE TABLE city_drafts (
    person_id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    answers TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (person_id, service_id)
);

-- Files a resident attached to a service's form (a photo, a scan), kept as
-- blobs beside the answers that name them: read only by the person and the
-- service's department (a staff read is in the person's access log first),
-- deleted with the account.
CREATE TABLE city_uploads (
    id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    field TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX city_uploads_person ON city_uploads (person_id, created_at_ms);
