-- Member prices and the menu's price history.

-- A category name, and a dish name within its category, mean one thing.
CREATE UNIQUE INDEX menu_categories_name_key ON menu_categories (tenant_id, name);
CREATE UNIQUE INDEX menu_items_name_key ON menu_items (tenant_id, category_id, name);

-- An item's current member prices: one per level code or per card kind.
CREATE TABLE menu_member_prices (
    tenant_id BLOB NOT NULL,
    item_id BLOB NOT NULL,
    -- 'level' or 'card_kind'.
    target_kind TEXT NOT NULL,
    -- The level code or the card kind.
    target_code TEXT NOT NULL,
    price INTEGER NOT NULL CHECK (price >= 0),
    PRIMARY KEY (tenant_id, item_id, target_kind, target_code),
    FOREIGN KEY (tenant_id, item_id) REFERENCES menu_items (tenant_id, id)
);

-- Every change of an item's regular or member prices appends a snapshot of all of its
-- prices, valid from effective_from until the next row: old receipts stay explainable.
CREATE TABLE menu_price_history (
    tenant_id BLOB NOT NULL,
    item_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    price INTEGER NOT NULL CHECK (price >= 0),
    -- JSON list of {"target_kind", "target_code", "price"}.
    member_prices TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    staff_id BLOB,
    PRIMARY KEY (tenant_id, item_id, seq),
    FOREIGN KEY (tenant_id, item_id) REFERENCES menu_items (tenant_id, id)
);
CREATE INDEX menu_price_history_at_idx ON menu_price_history (tenant_id, item_id, effective_from);

-- Items older than the history: their price as found now.
INSERT INTO menu_price_history (tenant_id, item_id, seq, kind, price, member_prices, effective_from, staff_id)
SELECT tenant_id, id, 1, 'recorded', price, '[]', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), NULL
FROM menu_items;

-- Append-only: the database itself refuses edits and deletions of the history.
CREATE TRIGGER menu_price_history_no_update BEFORE UPDATE ON menu_price_history
BEGIN SELECT RAISE(ABORT, 'price history is append-only'); END;
CREATE TRIGGER menu_price_history_no_delete BEFORE DELETE ON menu_price_history
BEGIN SELECT RAISE(ABORT, 'price history is append-only'); END;
