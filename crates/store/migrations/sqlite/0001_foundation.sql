-- Foundation: tenants, stores, staff, sessions, customers, timeline, cards, menu.
-- Every tenant-owned table leads its primary key and foreign keys with tenant_id.
-- UUIDs are 16-byte blobs; timestamps RFC 3339 text; money integer fen; lists JSON text.

CREATE TABLE tenants (
    id BLOB PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE stores (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    id BLOB NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT,
    phone TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);

CREATE TABLE staff (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    id BLOB NOT NULL,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    store_id BLOB,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id)
);

CREATE TABLE sessions (
    tenant_id BLOB NOT NULL,
    token_hash TEXT NOT NULL,
    staff_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id)
);

CREATE TABLE customers (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    id BLOB NOT NULL,
    name TEXT NOT NULL,
    name_pinyin TEXT NOT NULL,
    name_initials TEXT NOT NULL,
    phone TEXT,
    gender TEXT NOT NULL,
    birthday TEXT,
    age_band TEXT,
    nationality TEXT,
    customer_type TEXT NOT NULL,
    industry TEXT,
    title TEXT,
    company TEXT,
    work_phone TEXT,
    credit_rating TEXT,
    id_doc_kind TEXT,
    id_doc_hash TEXT,
    id_doc_masked TEXT,
    email TEXT,
    address TEXT,
    organization_id BLOB,
    acquisition_source TEXT,
    referred_by BLOB,
    marketing_consent INTEGER NOT NULL,
    marketing_consent_source TEXT,
    marketing_consent_at TEXT,
    favourite_dishes TEXT NOT NULL,
    tastes TEXT NOT NULL,
    seat_preference TEXT,
    allergies TEXT NOT NULL,
    tags TEXT NOT NULL,
    notes TEXT,
    lifecycle_stage TEXT NOT NULL,
    churn_reason TEXT,
    churn_note TEXT,
    level TEXT,
    home_store_id BLOB,
    merged_into BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, organization_id) REFERENCES customers (tenant_id, id),
    FOREIGN KEY (tenant_id, referred_by) REFERENCES customers (tenant_id, id),
    FOREIGN KEY (tenant_id, home_store_id) REFERENCES stores (tenant_id, id),
    FOREIGN KEY (tenant_id, merged_into) REFERENCES customers (tenant_id, id)
);
CREATE UNIQUE INDEX customers_phone_key ON customers (tenant_id, phone);
CREATE UNIQUE INDEX customers_id_doc_key ON customers (tenant_id, id_doc_hash);
CREATE INDEX customers_name_idx ON customers (tenant_id, name);
CREATE INDEX customers_pinyin_idx ON customers (tenant_id, name_pinyin);
CREATE INDEX customers_initials_idx ON customers (tenant_id, name_initials);
CREATE INDEX customers_org_idx ON customers (tenant_id, organization_id) WHERE organization_id IS NOT NULL;

CREATE TABLE timeline_events (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    customer_id BLOB NOT NULL,
    occurred_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL,
    store_id BLOB,
    staff_id BLOB,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX timeline_customer_idx ON timeline_events (tenant_id, customer_id, occurred_at);

CREATE TABLE cards (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    number TEXT NOT NULL,
    customer_id BLOB,
    medium TEXT NOT NULL,
    status TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX cards_customer_idx ON cards (tenant_id, customer_id);

CREATE TABLE menu_categories (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    sort_order INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE menu_items (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    category_id BLOB NOT NULL,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    price INTEGER NOT NULL CHECK (price >= 0),
    joins_discounts INTEGER NOT NULL,
    active INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES menu_categories (tenant_id, id)
);
