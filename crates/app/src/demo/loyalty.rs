//! The demo's loyalty side: a gift catalogue, and some history on the first cards —
//! top-ups and purchases through the real use cases, so the ledger, the points lots,
//! the growth values and the levels are exactly what the product itself would write.

use crate::cards::TopUp;
use crate::loyalty::{GiftInput, PaymentLine, RecordPurchase};
use crate::{Actor, App, AppError};
use patron_domain::ids::{CardId, StoreId};
use patron_domain::ledger::Tender;
use patron_domain::money::Money;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// (name, English name, points, stock; None = unlimited)
const GIFTS: &[(&str, &str, i64, Option<i64>)] = &[
    ("代客泊车券", "Valet parking voucher", 500, Some(200)),
    ("招牌酱料礼盒", "Signature sauce gift box", 800, None),
    ("生日蛋糕（6 寸）", "Birthday cake (6 inch)", 2_000, None),
    (
        "明前龙井 100 克",
        "Longjing green tea, 100 g",
        1_500,
        Some(80),
    ),
    (
        "定制骨瓷餐具套装",
        "Bone china tableware set",
        3_000,
        Some(30),
    ),
    ("包间免费升级", "Free private-room upgrade", 5_000, Some(20)),
];

/// Cards that get a history (the rest stay new, as most cards in a drawer are).
const CARDS_WITH_HISTORY: usize = 400;

const TENDERS: [Tender; 4] = [
    Tender::Wechat,
    Tender::Alipay,
    Tender::BankCard,
    Tender::Cash,
];

pub(super) async fn fill(
    app: &App,
    owner: &Actor,
    cards: &[(CardId, StoreId)],
    seed: u64,
) -> Result<(), AppError> {
    for (name, name_en, points, stock) in GIFTS {
        app.create_gift(
            owner,
            &GiftInput {
                name: (*name).into(),
                name_en: (*name_en).into(),
                points_price: *points,
                stock: *stock,
                active: true,
            },
        )
        .await?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x10_7A17);
    for (n, (card, store)) in cards.iter().take(CARDS_WITH_HISTORY).enumerate() {
        let at_store = Actor {
            store_id: Some(*store),
            ..owner.clone()
        };
        // About a third top up stored value, at the usual tiers.
        if rng.random_bool(0.35) {
            let amount = [30_000, 50_000, 100_000, 300_000][rng.random_range(0..4)];
            app.top_up(
                &at_store,
                *card,
                &TopUp {
                    amount: Money::from_fen(amount),
                    tender: TENDERS[rng.random_range(0..TENDERS.len())],
                    idempotency_key: format!("demo-top-up-{n}"),
                },
            )
            .await?;
        }
        // Purchases: a few regulars with many visits, most with one to four.
        let visits = if rng.random_bool(0.1) {
            rng.random_range(8..20)
        } else {
            rng.random_range(1..5)
        };
        for v in 0..visits {
            // A bill of ¥60–¥1,200, rounded to the yuan as menus are.
            let amount = Money::from_fen(rng.random_range(60..1_200) * 100);
            let tender = TENDERS[rng.random_range(0..TENDERS.len())];
            app.record_purchase(
                &at_store,
                &RecordPurchase {
                    card_id: Some(*card),
                    customer_id: None,
                    amount,
                    payments: vec![PaymentLine {
                        method: tender.as_str().into(),
                        amount,
                    }],
                    idempotency_key: format!("demo-purchase-{n}-{v}"),
                    memo: None,
                },
            )
            .await?;
        }
    }
    Ok(())
}
