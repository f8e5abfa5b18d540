-- Resources move to a rowid table: a new row is appended to the table, and only the small
-- entry of its key goes to a random place (the primary key's index). A write of a new
-- instance or binding then dirties about one random page instead of splitting pages of the
-- whole rows.
CREATE TABLE resources_by_rowid (
    instance_id TEXT NOT NULL,
    binding_id TEXT NOT NULL DEFAULT '',
    service_id TEXT,
    plan_id TEXT,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    request TEXT NOT NULL,
    reply TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (instance_id, binding_id)
);
INSERT INTO resources_by_rowid (
    instance_id, binding_id, service_id, plan_id, state, fingerprint, request, reply,
    created_at, updated_at
)
SELECT instance_id, binding_id, service_id, plan_id, state, fingerprint, request, reply,
    created_at, updated_at
FROM resources
ORDER BY created_at;
DROP TABLE resources;
ALTER TABLE resources_by_rowid RENAME TO resources;
