-- Each customer's growth value per calendar month, kept by triggers on `visits`, so a
-- level check sums a dozen rows instead of every visit in its window (a member with
-- thousands of visits took 1.7 ms a check). Every write to `visits` (a till's post, a
-- reversal, a refund, a merge, an import, the demo) keeps it; `month` is the month's
-- first day, as `local_date` is written ('YYYY-MM-DD').
CREATE TABLE customer_growth_months (
    tenant_id BLOB NOT NULL,
    customer_id BLOB NOT NULL,
    month TEXT NOT NULL,
    growth INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, month)
) WITHOUT ROWID;

INSERT INTO customer_growth_months (tenant_id, customer_id, month, growth)
SELECT tenant_id, customer_id, substr(local_date, 1, 7) || '-01', SUM(growth)
FROM visits WHERE reversed_at IS NULL AND customer_id IS NOT NULL
GROUP BY tenant_id, customer_id, substr(local_date, 1, 7);

CREATE TRIGGER visits_growth_months_insert AFTER INSERT ON visits
WHEN NEW.reversed_at IS NULL AND NEW.customer_id IS NOT NULL
BEGIN
    INSERT INTO customer_growth_months (tenant_id, customer_id, month, growth)
    VALUES (NEW.tenant_id, NEW.customer_id, substr(NEW.local_date, 1, 7) || '-01', NEW.growth)
    ON CONFLICT (tenant_id, customer_id, month) DO UPDATE SET growth = growth + excluded.growth;
END;

CREATE TRIGGER visits_growth_months_update AFTER UPDATE OF tenant_id, customer_id, local_date, growth, reversed_at ON visits
BEGIN
    UPDATE customer_growth_months SET growth = growth - OLD.growth
    WHERE OLD.reversed_at IS NULL AND tenant_id = OLD.tenant_id AND customer_id = OLD.customer_id
      AND month = substr(OLD.local_date, 1, 7) || '-01';
    INSERT INTO customer_growth_months (tenant_id, customer_id, month, growth)
    SELECT NEW.tenant_id, NEW.customer_id, substr(NEW.local_date, 1, 7) || '-01', NEW.growth
    WHERE NEW.reversed_at IS NULL AND NEW.customer_id IS NOT NULL
    ON CONFLICT (tenant_id, customer_id, month) DO UPDATE SET growth = growth + excluded.growth;
END;

CREATE TRIGGER visits_growth_months_delete AFTER DELETE ON visits
BEGIN
    UPDATE customer_growth_months SET growth = growth - OLD.growth
    WHERE OLD.reversed_at IS NULL AND tenant_id = OLD.tenant_id AND customer_id = OLD.customer_id
      AND month = substr(OLD.local_date, 1, 7) || '-01';
END;
