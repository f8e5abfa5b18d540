-- Instances and bindings (binding_id '' for an instance), and the operations on them.
CREATE TABLE resources (
    instance_id TEXT NOT NULL,
    binding_id TEXT NOT NULL DEFAULT '',
    service_id TEXT,
    plan_id TEXT,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    request TEXT NOT NULL,
    reply TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (instance_id, binding_id)
);

CREATE TABLE operations (
    id TEXT PRIMARY KEY NOT NULL,
    instance_id TEXT NOT NULL,
    binding_id TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    request TEXT NOT NULL,
    description TEXT,
    owner TEXT,
    lease_until BIGINT,
    deadline BIGINT,
    created_at BIGINT NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    finished_at BIGINT
);

-- At most one operation in progress per resource, whichever replica starts it.
CREATE UNIQUE INDEX operations_one_active ON operations (instance_id, binding_id)
    WHERE state = 'in progress';
CREATE INDEX operations_by_resource ON operations (instance_id, binding_id, seq);
CREATE INDEX operations_unfinished ON operations (lease_until) WHERE state = 'in progress';
CREATE INDEX operations_finished ON operations (finished_at) WHERE finished_at IS NOT NULL;
