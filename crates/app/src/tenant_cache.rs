//! Per-tenant values that every bill reads and that almost never change (the settings,
//! the tenant's name and stores, the spend-triggered coupon rules), kept in memory for a few seconds: a change made through
//! this process is seen at once (it forgets the value), one made by another process
//! within the time to live.

use chrono::{DateTime, Duration, Utc};
use patron_domain::ids::TenantId;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct TenantCache<T> {
    ttl: Duration,
    entries: Mutex<HashMap<TenantId, (DateTime<Utc>, T)>>,
}

impl<T: Clone> TenantCache<T> {
    pub fn new(ttl: Duration) -> TenantCache<T> {
        TenantCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The value kept for `tenant`, if it is younger than the time to live and `usable`.
    pub fn get(&self, tenant: TenantId, usable: impl FnOnce(&T) -> bool) -> Option<T> {
        let entries = self.entries.lock().expect("tenant cache");
        let (at, v) = entries.get(&tenant)?;
        (crate::now() - *at < self.ttl && usable(v)).then(|| v.clone())
    }

    /// The value kept for `tenant` if fresh and `usable`, else `load`'s, kept from now.
    pub async fn get_or_load<E, Fut>(
        &self,
        tenant: TenantId,
        usable: impl FnOnce(&T) -> bool,
        load: impl FnOnce() -> Fut,
    ) -> Result<T, E>
    where
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.get(tenant, usable) {
            return Ok(v);
        }
        let v = load().await?;
        self.put(tenant, v.clone());
        Ok(v)
    }

    pub fn put(&self, tenant: TenantId, value: T) {
        self.entries
            .lock()
            .expect("tenant cache")
            .insert(tenant, (crate::now(), value));
    }

    pub fn forget(&self, tenant: TenantId) {
        self.entries.lock().expect("tenant cache").remove(&tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_fresh_usable_values_and_forgets() {
        let t = TenantId(uuid::Uuid::now_v7());
        let c = TenantCache::new(Duration::seconds(60));
        assert_eq!(c.get(t, |_| true), None::<u32>);
        c.put(t, 7);
        assert_eq!(c.get(t, |_| true), Some(7));
        assert_eq!(c.get(t, |v| *v > 7), None, "not usable: read again");
        c.forget(t);
        assert_eq!(c.get(t, |_| true), None);
        let stale = TenantCache::new(Duration::zero());
        stale.put(t, 1);
        assert_eq!(stale.get(t, |_| true), None, "older than its time to live");
    }
}
