//! Per-tenant values that every bill reads and that almost never change (the settings,
//! the tenant's name and stores, the spend-triggered coupon rules, the dishes and coupon
//! templates a bill names), kept in memory for a few seconds: a change made through this
//! process is seen at once (it forgets the value), one made by another process within
//! the time to live.

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

/// Values kept per tenant and key (a dish with its member prices, a coupon template),
/// each for the time to live from its own load. Forgetting drops all of a tenant's.
pub struct KeyedCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<TenantId, Kept<K, V>>>,
}

/// A tenant's values, each with the time it was loaded.
type Kept<K, V> = HashMap<K, (DateTime<Utc>, V)>;

/// Past this many values a tenant's expired ones are swept out when more are kept.
const SWEEP_AT: usize = 4096;

impl<K: std::hash::Hash + Eq + Copy, V: Clone> KeyedCache<K, V> {
    pub fn new(ttl: Duration) -> KeyedCache<K, V> {
        KeyedCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The fresh values kept for `keys`, and the keys to load (not kept, or too old).
    pub fn get_many(&self, tenant: TenantId, keys: &[K]) -> (Vec<V>, Vec<K>) {
        let now = crate::now();
        let entries = self.entries.lock().expect("keyed cache");
        let kept = entries.get(&tenant);
        let (mut found, mut missing) = (Vec::with_capacity(keys.len()), Vec::new());
        for k in keys {
            match kept.and_then(|m| m.get(k)) {
                Some((at, v)) if now - *at < self.ttl => found.push(v.clone()),
                _ => missing.push(*k),
            }
        }
        (found, missing)
    }

    /// Keeps `values`, loaded now.
    pub fn put_many(&self, tenant: TenantId, values: impl IntoIterator<Item = (K, V)>) {
        let now = crate::now();
        let mut entries = self.entries.lock().expect("keyed cache");
        let kept = entries.entry(tenant).or_default();
        if kept.len() >= SWEEP_AT {
            kept.retain(|_, (at, _)| now - *at < self.ttl);
        }
        kept.extend(values.into_iter().map(|(k, v)| (k, (now, v))));
    }

    pub fn forget(&self, tenant: TenantId) {
        self.entries.lock().expect("keyed cache").remove(&tenant);
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

    #[test]
    fn keyed_values_age_one_by_one_and_are_forgotten_per_tenant() {
        let (t, other) = (
            TenantId(uuid::Uuid::now_v7()),
            TenantId(uuid::Uuid::now_v7()),
        );
        let c = KeyedCache::new(Duration::seconds(60));
        assert_eq!(c.get_many(t, &[1, 2]), (vec![], vec![1, 2]));
        c.put_many(t, [(1, "a"), (2, "b")]);
        c.put_many(other, [(1, "x")]);
        assert_eq!(c.get_many(t, &[2, 3, 1]), (vec!["b", "a"], vec![3]));
        c.forget(t);
        assert_eq!(c.get_many(t, &[1]), (vec![], vec![1]));
        assert_eq!(
            c.get_many(other, &[1]),
            (vec!["x"], vec![]),
            "other tenants keep theirs"
        );
        let stale = KeyedCache::new(Duration::zero());
        stale.put_many(t, [(1, "a")]);
        assert_eq!(
            stale.get_many(t, &[1]),
            (vec![], vec![1]),
            "older than its time to live"
        );
    }
}
