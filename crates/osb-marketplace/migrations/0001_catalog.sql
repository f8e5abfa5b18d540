-- Service brokers, the services and plans of their catalogs (and services created directly
-- through POST /v2/services), and the instances that hold plans in use.
-- Times are RFC 3339 text with an offset; booleans are 0/1; JSON values are text.

CREATE TABLE service_brokers (
    id INTEGER PRIMARY KEY,
    guid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    broker_url TEXT NOT NULL UNIQUE,
    auth_username TEXT NOT NULL,
    -- "plain:<password>", or "x1:<base64 of nonce and ciphertext>" when a key is configured.
    auth_password TEXT NOT NULL,
    space_guid TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT
);

CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    guid TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    provider TEXT,
    url TEXT,
    description TEXT,
    long_description TEXT,
    version TEXT,
    info_url TEXT,
    documentation_url TEXT,
    timeout INTEGER,
    active INTEGER NOT NULL,
    bindable INTEGER NOT NULL,
    unique_id TEXT,
    extra TEXT,
    tags TEXT NOT NULL,
    requires TEXT NOT NULL,
    plan_updateable INTEGER NOT NULL DEFAULT 0,
    instances_retrievable INTEGER NOT NULL DEFAULT 0,
    bindings_retrievable INTEGER NOT NULL DEFAULT 0,
    allow_context_updates INTEGER NOT NULL DEFAULT 0,
    service_broker_id INTEGER REFERENCES service_brokers (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
-- A label is taken once per provider (services of brokers have none).
CREATE UNIQUE INDEX services_label_provider ON services (label, coalesce(provider, ''));
-- An offering id names one service in the whole marketplace.
CREATE UNIQUE INDEX services_unique_id ON services (unique_id) WHERE unique_id IS NOT NULL;
CREATE INDEX services_broker ON services (service_broker_id);

CREATE TABLE service_plans (
    id INTEGER PRIMARY KEY,
    guid TEXT NOT NULL UNIQUE,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    free INTEGER NOT NULL,
    description TEXT NOT NULL,
    extra TEXT,
    unique_id TEXT NOT NULL,
    public INTEGER NOT NULL,
    active INTEGER NOT NULL,
    bindable INTEGER,
    plan_updateable INTEGER,
    schemas TEXT,
    maintenance_info TEXT,
    maximum_polling_duration INTEGER,
    binding_rotatable INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    UNIQUE (service_id, unique_id)
);
CREATE INDEX service_plans_service ON service_plans (service_id);

-- Instances and bindings carry their last operation. An operation in flight has a phase:
-- 'request' while the request to the broker is being sent (a restart sends it again, as the
-- same request: brokers answer repeats idempotently), 'poll' while the broker works
-- asynchronously (polled at poll_at until poll_deadline, unix milliseconds).
CREATE TABLE service_instances (
    id INTEGER PRIMARY KEY,
    guid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    space_guid TEXT NOT NULL,
    organization_guid TEXT NOT NULL,
    service_plan_id INTEGER NOT NULL REFERENCES service_plans (id),
    tags TEXT NOT NULL DEFAULT '[]',
    dashboard_url TEXT,
    maintenance_info TEXT,
    context TEXT NOT NULL DEFAULT '{}',
    -- The request in flight, sealed like a secret (parameters may hold secrets).
    request TEXT,
    pending_plan_id INTEGER REFERENCES service_plans (id),
    user_id TEXT,
    op_type TEXT NOT NULL DEFAULT 'create',
    op_state TEXT NOT NULL DEFAULT 'succeeded',
    op_description TEXT,
    op_token TEXT,
    op_phase TEXT,
    op_created_at TEXT,
    op_updated_at TEXT,
    poll_at INTEGER,
    poll_deadline INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    UNIQUE (space_guid, name)
);
CREATE INDEX service_instances_plan ON service_instances (service_plan_id);
CREATE INDEX service_instances_phase ON service_instances (op_phase) WHERE op_phase IS NOT NULL;

CREATE TABLE service_bindings (
    id INTEGER PRIMARY KEY,
    guid TEXT NOT NULL UNIQUE,
    name TEXT,
    -- An instance's bindings go with it (purges, and deletes the broker confirmed).
    service_instance_id INTEGER NOT NULL REFERENCES service_instances (id) ON DELETE CASCADE,
    app_guid TEXT,
    -- Sealed JSON of the credentials.
    credentials TEXT,
    syslog_drain_url TEXT,
    volume_mounts TEXT,
    request TEXT,
    user_id TEXT,
    op_type TEXT NOT NULL DEFAULT 'create',
    op_state TEXT NOT NULL DEFAULT 'succeeded',
    op_description TEXT,
    op_token TEXT,
    op_phase TEXT,
    op_created_at TEXT,
    op_updated_at TEXT,
    poll_at INTEGER,
    poll_deadline INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE UNIQUE INDEX service_bindings_app ON service_bindings (service_instance_id, app_guid)
    WHERE app_guid IS NOT NULL;
CREATE UNIQUE INDEX service_bindings_name ON service_bindings (service_instance_id, name)
    WHERE name IS NOT NULL;
CREATE INDEX service_bindings_instance ON service_bindings (service_instance_id);
CREATE INDEX service_bindings_phase ON service_bindings (op_phase) WHERE op_phase IS NOT NULL;

-- Orphan mitigation: deletes of what a broker may have created, retried with backoff.
CREATE TABLE orphan_jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('instance', 'binding')),
    broker_id INTEGER NOT NULL REFERENCES service_brokers (id) ON DELETE CASCADE,
    instance_guid TEXT NOT NULL,
    binding_guid TEXT,
    service_unique_id TEXT NOT NULL,
    plan_unique_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE INDEX orphan_jobs_due ON orphan_jobs (next_at) WHERE state = 'pending';
CREATE INDEX orphan_jobs_instance ON orphan_jobs (kind, instance_guid);
CREATE INDEX orphan_jobs_binding ON orphan_jobs (binding_guid) WHERE binding_guid IS NOT NULL;
