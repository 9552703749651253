//! The demo menu's member prices, written with the dishes' first price-history rows.
//!
//! A chain's usual scheme: food that joins discounts has a member price for holders of a
//! member-price card (会员卡), 88% of the regular price for hot dishes and seafood, 90%
//! for cold dishes and soups, 92% for staples and dim sum; signature dishes (the popular
//! hot dishes and seafood) are cheaper again for gold members, at 85%. Drinks, alcohol and
//! set menus have none. Prices are rounded to whole yuan, as a menu prints them.

use super::data::MENU;
use crate::{App, AppError, now};
use patron_domain::ids::{MenuItemId, StaffId, TenantId};
use patron_domain::menu::{CardKind, MemberPrice, MenuItem, PriceTarget};
use patron_domain::money::Money;
use patron_store::menu::PriceWrite;

/// The level whose members get the signature-dish prices.
pub const GOLD: &str = "gold";

/// `fen × rate_bp / 10,000` rounded to whole yuan, half up. Dishes with member prices
/// cost 10 yuan or more and rates are at most 92%, so the result stays below `fen`.
fn at_rate_whole_yuan(fen: i64, rate_bp: i64) -> Money {
    Money::from_fen((fen * rate_bp + 500_000) / 1_000_000 * 100)
}

/// The member prices of the dish at `MENU[index]` (the demo inserts its items in `MENU`
/// order).
pub(super) fn member_prices(index: usize, item: &MenuItem) -> Vec<MemberPrice> {
    let dish = &MENU[index];
    let card_rate = match dish.category {
        1 | 2 => 8_800,
        0 | 3 => 9_000,
        4 | 5 => 9_200,
        _ => return Vec::new(),
    };
    // Rice at 3 yuan is not worth a member price.
    if !dish.joins_discounts || dish.price < 1_000 {
        return Vec::new();
    }
    let mut out = vec![MemberPrice {
        item_id: item.id,
        target: PriceTarget::CardKind(CardKind::MemberPrice),
        price: at_rate_whole_yuan(dish.price, card_rate),
    }];
    if matches!(dish.category, 1 | 2) && dish.popularity >= 3 {
        out.push(MemberPrice {
            item_id: item.id,
            target: PriceTarget::Level(GOLD.into()),
            price: at_rate_whole_yuan(dish.price, 8_500),
        });
    }
    out
}

/// Sets the demo items' member prices, giving every item (with or without member prices)
/// its first price-history row, in one transaction.
pub(super) async fn record(
    app: &App,
    tenant: TenantId,
    items: &[MenuItem],
    owner: StaffId,
) -> Result<(), AppError> {
    let prices: Vec<(MenuItemId, Vec<MemberPrice>)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.id, member_prices(i, item)))
        .collect();
    match app
        .storage
        .set_member_prices(tenant, &prices, now(), Some(owner))
        .await?
    {
        PriceWrite::Done => Ok(()),
        PriceWrite::AboveRegular { item, .. } => Err(AppError::Internal(format!(
            "demo member price above the regular price of {item}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patron_domain::card::CardKinds;
    use patron_domain::ids::TenantId;
    use patron_domain::menu::{Buyer, PriceBasis, quote};
    use uuid::Uuid;

    fn item(i: usize) -> MenuItem {
        MenuItem {
            tenant_id: TenantId(Uuid::nil()),
            id: MenuItemId(Uuid::from_u128(i as u128)),
            category_id: Uuid::nil(),
            name: MENU[i].name.into(),
            name_en: MENU[i].name_en.into(),
            price: Money::from_fen(MENU[i].price),
            joins_discounts: MENU[i].joins_discounts,
            active: true,
        }
    }

    #[test]
    fn realistic_member_prices() {
        let card = Buyer {
            level: None,
            card_kinds: CardKinds {
                stored_value: false,
                points: false,
                member_price: true,
            },
            member_price_access: true,
        };
        let gold = Buyer {
            level: Some(GOLD.into()),
            ..card.clone()
        };
        let (mut with_card, mut with_gold) = (0, 0);
        for (i, dish) in MENU.iter().enumerate() {
            let it = item(i);
            let prices = member_prices(i, &it);
            for p in &prices {
                assert!(
                    p.price < it.price && p.price.fen() % 100 == 0,
                    "{}",
                    dish.name
                );
            }
            let c = quote(&it, &prices, &card);
            let g = quote(&it, &prices, &gold);
            assert!(g.unit_price <= c.unit_price);
            if c.basis != PriceBasis::Regular {
                with_card += 1;
                // 88–92% of the regular price, within half a yuan.
                let rate = c.unit_price.fen() * 10_000 / it.price.fen();
                let slack = 50 * 10_000 / it.price.fen();
                assert!(
                    (8_800 - slack..=9_200 + slack).contains(&rate),
                    "{} {rate}",
                    dish.name
                );
            }
            if g.basis == PriceBasis::Level(GOLD.into()) {
                with_gold += 1;
            }
            if dish.category >= 6 || !dish.joins_discounts {
                assert!(prices.is_empty(), "{}", dish.name);
            }
        }
        assert!(with_card >= 40, "{with_card}");
        assert!((5..=25).contains(&with_gold), "{with_gold}");
        // 红烧肉 68 yuan: 60 for member-price cards (88% = 59.84), 58 for gold (85% = 57.80).
        let i = MENU.iter().position(|d| d.name == "红烧肉").unwrap();
        let prices = member_prices(i, &item(i));
        assert_eq!(
            quote(&item(i), &prices, &card).unit_price,
            Money::from_yuan(60)
        );
        assert_eq!(
            quote(&item(i), &prices, &gold).unit_price,
            Money::from_yuan(58)
        );
    }

    #[tokio::test]
    async fn the_demo_menu_has_member_prices_and_history() {
        let (storage, _dir) = patron_store::testing::fresh_sqlite().await;
        let app = App::new(storage, b"demo-prices-test-key-0123456789ab".to_vec());
        let opts = crate::demo::DemoOptions {
            members: 0,
            seed: 1,
            history: false,
        };
        app.generate_demo(opts, &|_, _, _| {}).await.unwrap();
        let tenant = app
            .storage
            .tenant_by_code("demo")
            .await
            .unwrap()
            .unwrap()
            .id;
        let items = app
            .storage
            .menu_items(tenant, &Default::default())
            .await
            .unwrap();
        assert_eq!(items.len(), MENU.len());
        let with_prices = items.iter().filter(|i| !i.member_prices.is_empty()).count();
        assert!(with_prices >= 40, "{with_prices}");
        for i in &items {
            let h = app.storage.price_history(tenant, i.item.id).await.unwrap();
            assert_eq!(h.len(), 1, "{}", i.item.name);
            assert_eq!(h[0].kind, patron_domain::menu::PriceChangeKind::Recorded);
            assert_eq!(
                (h[0].price, &h[0].member_prices),
                (i.item.price, &i.member_prices)
            );
            assert!(h[0].staff_id.is_some());
        }
    }
}
