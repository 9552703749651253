//! The dashboard: today's business by store, new members, stored-value and points
//! liability, and the customer-value quadrants at a glance.

use super::Web;
use super::render::WebResult;
use axum::response::Html;
use patron_app::analytics::ValueQuery;
use patron_domain::page::PageRequest;
use patron_domain::permissions::Permission;
use patron_store::CustomerFilter;

pub async fn page(web: Web) -> WebResult<Html<String>> {
    let app = &web.app;
    let actor = &web.actor;
    let settings = app.settings(actor).await?;
    let now = patron_app::now();
    let today = settings.business_date(now);
    let (day_start, _) = settings.business_day_bounds(today);

    // Today's business per store (the stores this staff member may see).
    let mut stores = vec![];
    let mut totals = (0i64, 0i64, 0i64, 0i64);
    if web.can(Permission::ViewFinance) {
        for store in app.stores(actor).await? {
            if actor.require_store(store.id).is_err() {
                continue;
            }
            let s = app
                .daily_settlement(actor, Some(&store.code), Some(today))
                .await?;
            let top_ups = s.top_ups.principal.fen();
            totals.0 += s.checkouts.amount_due.fen();
            totals.1 += s.counts.visits;
            totals.2 += top_ups;
            totals.3 += s.top_ups.count;
            stores.push(minijinja::context! {
                code => store.code,
                name => store.name,
                sales => s.checkouts.amount_due.fen(),
                bills => s.checkouts.count,
                visits => s.counts.visits,
                top_ups => top_ups,
                top_up_count => s.top_ups.count,
                closed => s.day.as_ref().is_some_and(|d| d.status == "closed"),
            });
        }
    }

    // New members since the business day began (counted up to a page).
    let new_members = if web.can(Permission::ViewCustomers) {
        let filter = CustomerFilter {
            created_from: Some(day_start),
            ..Default::default()
        };
        let page = app
            .list_customers(
                actor,
                &filter,
                PageRequest {
                    page: 1,
                    per_page: 100,
                },
            )
            .await?;
        Some(minijinja::context! { count => page.items.len(), more => page.has_more })
    } else {
        None
    };

    // Liability now: principal, bonus, points across the chain.
    let liability = if web.can(Permission::ViewFinance) {
        let rows = app.liability(actor, now).await?;
        // Card and organization accounts alike (kinds `card_principal`, `org_principal`...).
        let sum = |suffix: &str| -> i64 {
            rows.iter()
                .filter(|r| r.kind.ends_with(suffix))
                .map(|r| r.amount)
                .sum()
        };
        Some(minijinja::context! {
            principal => sum("_principal"),
            bonus => sum("_bonus"),
            points => sum("_points"),
        })
    } else {
        None
    };

    // The value quadrants over the last year, for the small chart.
    let quadrants = if web.can(Permission::ViewReports) {
        let r = app.quadrants(actor, &ValueQuery::new(), 0).await?;
        let lang_zh = web.lang == super::i18n::Lang::Zh;
        let q: Vec<_> = r
            .quadrants
            .iter()
            .map(|q| {
                minijinja::context! {
                    label => if lang_zh { q.label_zh.clone() } else { q.label_en.clone() },
                    customers => q.customers,
                    revenue => q.revenue.fen(),
                }
            })
            .collect();
        Some(minijinja::context! { active => r.active_customers, items => q })
    } else {
        None
    };

    web.page(
        "dashboard.html",
        "dashboard",
        minijinja::context! {
            today => today.to_string(),
            stores, new_members, liability, quadrants,
            totals => minijinja::context! {
                sales => totals.0, visits => totals.1, top_ups => totals.2, top_up_count => totals.3,
            },
        },
    )
}
