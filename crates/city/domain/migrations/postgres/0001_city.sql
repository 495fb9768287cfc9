-- A city's catalogue of services (each published by one of its departments,
-- in both languages) and residents' applications to them.
CREATE TABLE city_services (
    id TEXT PRIMARY KEY,
    city_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    category TEXT NOT NULL,
    title_en TEXT NOT NULL,
    title_zh TEXT NOT NULL,
    description_en TEXT NOT NULL,
    description_zh TEXT NOT NULL,
    documents TEXT NOT NULL,
    fee_fen BIGINT NOT NULL,
    delivery TEXT NOT NULL,
    form TEXT NOT NULL,
    booking_service_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX city_services_city ON city_services (city_id, category);
CREATE INDEX city_services_org ON city_services (org_id);

CREATE TABLE city_applications (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    status TEXT NOT NULL,
    answers TEXT NOT NULL,
    appointment_id TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX city_applications_person ON city_applications (person_id, created_at_ms);
CREATE INDEX city_applications_org ON city_applications (org_id, status, created_at_ms);

-- Every status change, who made it and when.
CREATE TABLE city_application_events (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL,
    status TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    note TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX city_application_events_app ON city_application_events (application_id, at_ms);
