-- Coupons: templates, spend-trigger issue rules, issued coupons.

CREATE TABLE coupon_templates (
    tenant_id UUID NOT NULL REFERENCES tenants (id),
    id UUID NOT NULL,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    -- cash, discount, item; the columns of the other kinds are NULL.
    kind TEXT NOT NULL,
    value BIGINT,
    min_spend BIGINT,
    percent_off_bp INTEGER,
    cap BIGINT,
    menu_item_id UUID,
    item_name TEXT,
    -- fixed (valid_from..valid_to), days_after_issue (valid_days), end_of_month.
    validity TEXT NOT NULL,
    valid_from DATE,
    valid_to DATE,
    valid_days INTEGER,
    -- JSON lists.
    excluded_weekdays TEXT NOT NULL,
    excluded_hours TEXT NOT NULL,
    store_ids TEXT NOT NULL,
    level_codes TEXT NOT NULL,
    per_customer_limit INTEGER,
    stacks_with_coupons BOOLEAN NOT NULL,
    stacks_with_member_price BOOLEAN NOT NULL,
    transferable BOOLEAN NOT NULL,
    points_price BIGINT,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE coupon_issue_rules (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    template_id UUID NOT NULL,
    min_spend BIGINT NOT NULL CHECK (min_spend > 0),
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id) REFERENCES coupon_templates (tenant_id, id)
);

CREATE TABLE coupons (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    template_id UUID NOT NULL,
    code TEXT NOT NULL,
    customer_id UUID NOT NULL,
    -- issued, redeemed, voided, expired; only 'issued' changes, once.
    status TEXT NOT NULL,
    valid_from DATE NOT NULL,
    valid_to DATE NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    channel TEXT NOT NULL,
    issued_by UUID,
    issued_store_id UUID,
    redeemed_at TIMESTAMPTZ,
    redeemed_by UUID,
    redeemed_store_id UUID,
    redeemed_staff_id UUID,
    -- The redeem request's key: a retry of the same request answers with the coupon.
    redeem_key TEXT,
    voided_at TIMESTAMPTZ,
    voided_by UUID,
    void_reason TEXT,
    expired_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code),
    FOREIGN KEY (tenant_id, template_id) REFERENCES coupon_templates (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    FOREIGN KEY (tenant_id, redeemed_by) REFERENCES customers (tenant_id, id)
);
CREATE INDEX coupons_customer_idx ON coupons (tenant_id, customer_id, issued_at);
CREATE INDEX coupons_template_idx ON coupons (tenant_id, template_id);
CREATE INDEX coupons_expiry_idx ON coupons (tenant_id, valid_to) WHERE status = 'issued';

-- Coupons of a template each customer holds (voided ones given back): the per-customer
-- limit is one conditional upsert of this row, in the transaction that inserts the coupon.
CREATE TABLE coupon_holdings (
    tenant_id UUID NOT NULL,
    template_id UUID NOT NULL,
    customer_id UUID NOT NULL,
    held INTEGER NOT NULL CHECK (held >= 0),
    PRIMARY KEY (tenant_id, template_id, customer_id),
    FOREIGN KEY (tenant_id, template_id) REFERENCES coupon_templates (tenant_id, id)
);
