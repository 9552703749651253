-- Foundation: tenants, stores, staff, sessions, customers, timeline, cards, menu.
-- Every tenant-owned table leads its primary key and foreign keys with tenant_id.
-- UUIDs native; timestamps timestamptz; money integer fen; lists JSON text.

CREATE TABLE tenants (
    id UUID PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE stores (
    tenant_id UUID NOT NULL REFERENCES tenants (id),
    id UUID NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT,
    phone TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);

CREATE TABLE staff (
    tenant_id UUID NOT NULL REFERENCES tenants (id),
    id UUID NOT NULL,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    store_id UUID,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id)
);

CREATE TABLE sessions (
    tenant_id UUID NOT NULL,
    token_hash TEXT NOT NULL,
    staff_id UUID NOT NULL,
    kind TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id)
);

CREATE TABLE customers (
    tenant_id UUID NOT NULL REFERENCES tenants (id),
    id UUID NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    name_pinyin TEXT COLLATE "C" NOT NULL,
    name_initials TEXT COLLATE "C" NOT NULL,
    phone TEXT,
    gender TEXT NOT NULL,
    birthday DATE,
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
    organization_id UUID,
    acquisition_source TEXT,
    referred_by UUID,
    marketing_consent BOOLEAN NOT NULL,
    marketing_consent_source TEXT,
    marketing_consent_at TIMESTAMPTZ,
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
    home_store_id UUID,
    merged_into UUID,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
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
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    customer_id UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL,
    store_id UUID,
    staff_id UUID,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX timeline_customer_idx ON timeline_events (tenant_id, customer_id, occurred_at);

CREATE TABLE cards (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    number TEXT NOT NULL,
    customer_id UUID,
    medium TEXT NOT NULL,
    status TEXT NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX cards_customer_idx ON cards (tenant_id, customer_id);

CREATE TABLE menu_categories (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    sort_order INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE menu_items (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    category_id UUID NOT NULL,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    price BIGINT NOT NULL CHECK (price >= 0),
    joins_discounts BOOLEAN NOT NULL,
    active BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES menu_categories (tenant_id, id)
);
