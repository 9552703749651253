-- Customer value analytics read every non-reversed visit of a period grouped by
-- customer. This index covers that scan (an index-only scan in customer order: the
-- aggregate streams without a hash table or a sort).
CREATE INDEX visits_value_idx ON visits (tenant_id, customer_id, local_date) INCLUDE (growth, store_id)
    WHERE reversed_at IS NULL AND customer_id IS NOT NULL;
