-- Customer value analytics read every non-reversed visit of a period grouped by
-- customer. This index covers that scan (customer, date, growth, store), so it never
-- touches the table; without it SQLite walks the customer index and looks each visit up.
CREATE INDEX visits_value_idx ON visits (tenant_id, customer_id, local_date, growth, store_id)
    WHERE reversed_at IS NULL AND customer_id IS NOT NULL;
