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

CREATE TABLE service_instances (
    id INTEGER PRIMARY KEY,
    guid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    space_guid TEXT NOT NULL,
    service_plan_id INTEGER NOT NULL REFERENCES service_plans (id),
    created_at TEXT NOT NULL,
    updated_at TEXT,
    UNIQUE (space_guid, name)
);
CREATE INDEX service_instances_plan ON service_instances (service_plan_id);
