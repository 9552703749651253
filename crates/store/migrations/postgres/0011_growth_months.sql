-- Each customer's growth value per calendar month, kept by a trigger on `visits`, so a
-- level check sums a dozen rows instead of every visit in its window (a member with
-- thousands of visits took milliseconds a check). Every write to `visits` (a till's
-- post, a reversal, a refund, a merge, an import, the demo) keeps it; `month` is the
-- month's first day.
CREATE TABLE customer_growth_months (
    tenant_id UUID NOT NULL,
    customer_id UUID NOT NULL,
    month DATE NOT NULL,
    growth BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, month)
);

INSERT INTO customer_growth_months (tenant_id, customer_id, month, growth)
SELECT tenant_id, customer_id, date_trunc('month', local_date)::date, SUM(growth)
FROM visits WHERE reversed_at IS NULL AND customer_id IS NOT NULL
GROUP BY tenant_id, customer_id, date_trunc('month', local_date)::date;

CREATE FUNCTION visits_growth_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.reversed_at IS NULL AND OLD.customer_id IS NOT NULL THEN
        UPDATE customer_growth_months SET growth = growth - OLD.growth
        WHERE tenant_id = OLD.tenant_id AND customer_id = OLD.customer_id
          AND month = date_trunc('month', OLD.local_date)::date;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.reversed_at IS NULL AND NEW.customer_id IS NOT NULL THEN
        INSERT INTO customer_growth_months (tenant_id, customer_id, month, growth)
        VALUES (NEW.tenant_id, NEW.customer_id, date_trunc('month', NEW.local_date)::date, NEW.growth)
        ON CONFLICT (tenant_id, customer_id, month)
        DO UPDATE SET growth = customer_growth_months.growth + excluded.growth;
    END IF;
    RETURN NULL;
END
$$;

-- Deferred to the commit: a month's row is then taken after every other row the
-- transaction takes (a bill's coupon, a reversal's coupons, the chain head), so two
-- transactions touching one customer cannot each hold what the other waits for. Fired
-- in the middle of a post, it deadlocked a checkout redeeming a coupon against a
-- reversal voiding one (the reliability test).
CREATE CONSTRAINT TRIGGER visits_growth_months AFTER INSERT OR DELETE OR UPDATE OF tenant_id, customer_id, local_date, growth, reversed_at
ON visits DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION visits_growth_months();
