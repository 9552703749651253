//! Receipts. Checkout builds one [`ReceiptDoc`]; it is sent as JSON (serde), shown as a
//! printable HTML page ([`render_html`]), laid out as fixed-width text ([`render_text`]),
//! or turned into ESC/POS bytes for 58 mm and 80 mm thermal printers ([`render_escpos`])
//! and sent to a network printer ([`print_to`]).
//!
//! Amounts are given in the sale's sense (positive); a reversal or refund prints them
//! negated (and discounts as additions), whatever their sign in the document, so a
//! reversal can reuse the original sale's figures. Balance and points moves are printed
//! as given: they are states, not amounts of this document.

mod escpos;
mod html;
mod print;
mod text;

pub use escpos::render_escpos;
pub use html::render_html;
pub use print::{DEFAULT_PORT, PrintError, print_to};
pub use text::render_text;

use chrono::{NaiveDate, NaiveDateTime};
use patron_domain::money::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Everything printed on one receipt, already decided and masked by the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptDoc {
    /// The chain's name, e.g. "和府小馆".
    pub title: String,
    pub store_name: String,
    pub store_address: Option<String>,
    pub store_phone: Option<String>,
    /// Receipt number, e.g. "SH01-20261123-0042".
    pub number: String,
    pub kind: ReceiptKind,
    /// Local time of the sale, without an offset (e.g. "2026-11-23T19:42:05").
    #[schema(value_type = String, example = "2026-11-23T19:42:05")]
    pub at: NaiveDateTime,
    pub cashier: String,
    /// Already masked, e.g. "张** 138****0001".
    pub customer: Option<String>,
    /// Already masked, e.g. "**** 0042".
    pub card_number: Option<String>,
    /// Member level, e.g. "金卡".
    pub level: Option<String>,
    pub lines: Vec<ReceiptLine>,
    /// Discounts as positive amounts (member price, coupons, ...); printed as reductions.
    pub discounts: Vec<ReceiptAmount>,
    pub gross: Money,
    pub total_discount: Money,
    pub amount_due: Money,
    /// "储值卡 本金" / "储值卡 赠送" / "微信" / "现金"...
    pub tenders: Vec<ReceiptAmount>,
    /// Cash given back, if any.
    pub change: Option<Money>,
    pub stored_value: Option<BalanceMove>,
    pub points: Option<PointsMove>,
    /// Names with codes.
    pub coupons_used: Vec<String>,
    pub coupons_issued: Vec<IssuedCouponLine>,
    /// Free lines, e.g. how the points were computed.
    pub notes: Vec<String>,
    /// e.g. "谢谢惠顾，欢迎再次光临".
    pub footer: Option<String>,
}

/// A sale, or the undoing of one (printed with a banner and negative amounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    #[default]
    Sale,
    /// 反结账: the whole checkout undone.
    Reversal,
    /// 退款: money given back.
    Refund,
}

/// One dish: `gross` is quantity × unit price, `net` what it costs after line-level
/// prices (member price); both are printed when they differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptLine {
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub gross: Money,
    pub net: Money,
}

/// A labelled amount (a discount or a tender), labelled in Chinese and English.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptAmount {
    pub label: String,
    pub label_en: String,
    pub amount: Money,
}

/// A stored-value balance around this receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BalanceMove {
    pub before: Money,
    /// Signed: negative = spent.
    pub this_time: Money,
    pub after: Money,
}

/// A points balance around this receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PointsMove {
    pub before: i64,
    pub earned: i64,
    pub used: i64,
    pub after: i64,
}

/// A coupon given with this receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssuedCouponLine {
    pub name: String,
    pub code: String,
    pub valid_to: NaiveDate,
}

/// Thermal paper width. Columns count ASCII characters; a Chinese character takes two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
pub enum Paper {
    /// 58 mm: 32 columns.
    #[serde(rename = "58mm")]
    Mm58,
    /// 80 mm: 48 columns.
    #[default]
    #[serde(rename = "80mm")]
    Mm80,
}

impl Paper {
    /// Characters per line in the printer's standard font (12×24 dots).
    pub const fn columns(self) -> usize {
        match self {
            Paper::Mm58 => 32,
            Paper::Mm80 => 48,
        }
    }
}

impl std::str::FromStr for Paper {
    type Err = String;
    /// "58", "58mm", "80", "80mm".
    fn from_str(s: &str) -> Result<Paper, String> {
        match s.trim().to_ascii_lowercase().trim_end_matches("mm") {
            "58" => Ok(Paper::Mm58),
            "80" => Ok(Paper::Mm80),
            _ => Err(format!("unknown paper {s:?}: expected 58mm or 80mm")),
        }
    }
}

/// How an amount of this document prints: negated on a reversal or refund.
fn signed(doc: &ReceiptDoc, m: Money) -> Money {
    let abs = m.fen().checked_abs().unwrap_or(i64::MAX);
    match doc.kind {
        ReceiptKind::Sale => m,
        ReceiptKind::Reversal | ReceiptKind::Refund => Money::from_fen(-abs),
    }
}

/// How a discount prints: a reduction on a sale, an addition on a reversal or refund.
fn reduction(doc: &ReceiptDoc, m: Money) -> Money {
    let abs = m.fen().checked_abs().unwrap_or(i64::MAX);
    match doc.kind {
        ReceiptKind::Sale => Money::from_fen(-abs),
        ReceiptKind::Reversal | ReceiptKind::Refund => Money::from_fen(abs),
    }
}

/// "+¥1.00", "-¥1.00", "¥0.00": a change of a balance.
fn delta(m: Money) -> String {
    if m.fen() > 0 {
        format!("+{m}")
    } else {
        m.to_string()
    }
}

/// "+429", "-100", "0": a change of points.
fn points_delta(p: i64) -> String {
    if p > 0 {
        format!("+{p}")
    } else {
        p.to_string()
    }
}

/// The big banner of a receipt that undoes a sale.
fn banner(kind: ReceiptKind) -> Option<(&'static str, &'static str)> {
    match kind {
        ReceiptKind::Sale => None,
        ReceiptKind::Reversal => Some(("反结账", "REVERSAL")),
        ReceiptKind::Refund => Some(("退款", "REFUND")),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    fn amount(label: &str, label_en: &str, yuan: &str) -> ReceiptAmount {
        ReceiptAmount {
            label: label.into(),
            label_en: label_en.into(),
            amount: Money::parse_yuan(yuan).unwrap(),
        }
    }

    fn line(name: &str, quantity: u32, unit: &str, net: &str) -> ReceiptLine {
        let unit_price = Money::parse_yuan(unit).unwrap();
        ReceiptLine {
            name: name.into(),
            quantity,
            unit_price,
            gross: Money::from_fen(unit_price.fen() * i64::from(quantity)),
            net: Money::parse_yuan(net).unwrap(),
        }
    }

    /// A gold member's lunch: member prices, a coupon, stored value split
    /// principal/bonus, points earned and used, a coupon issued.
    pub fn sample() -> ReceiptDoc {
        ReceiptDoc {
            title: "和府小馆".into(),
            store_name: "静安寺店".into(),
            store_address: Some("上海市静安区南京西路1601号越洋广场B1层".into()),
            store_phone: Some("021-6288 0000".into()),
            number: "SH01-20261123-0042".into(),
            kind: ReceiptKind::Sale,
            at: NaiveDate::from_ymd_opt(2026, 11, 23)
                .unwrap()
                .and_hms_opt(12, 34, 56)
                .unwrap(),
            cashier: "王芳".into(),
            customer: Some("张** 138****0001".into()),
            card_number: Some("**** 0042".into()),
            level: Some("金卡".into()),
            lines: vec![
                line(
                    "招牌红烧肉配秘制酱汁（大份，含米饭两碗）",
                    1,
                    "88.00",
                    "78.00",
                ),
                line("宫保鸡丁", 2, "38.00", "76.00"),
                line("清炒时蔬", 1, "22.00", "22.00"),
                line("Hainanese chicken rice, large portion", 1, "42.00", "42.00"),
                line("酸梅汤", 3, "8.00", "24.00"),
                line("米饭", 4, "3.50", "14.00"),
            ],
            discounts: vec![
                amount("会员价", "Member price", "10.00"),
                amount("满200减30 券", "Coupon 30 off 200", "30.00"),
            ],
            gross: Money::parse_yuan("266.00").unwrap(),
            total_discount: Money::parse_yuan("40.00").unwrap(),
            amount_due: Money::parse_yuan("226.00").unwrap(),
            tenders: vec![
                amount("储值卡 本金", "Card principal", "150.00"),
                amount("储值卡 赠送", "Card bonus", "30.00"),
                amount("现金", "Cash", "50.00"),
            ],
            change: Some(Money::parse_yuan("4.00").unwrap()),
            stored_value: Some(BalanceMove {
                before: Money::parse_yuan("500.00").unwrap(),
                this_time: Money::parse_yuan("-180.00").unwrap(),
                after: Money::parse_yuan("320.00").unwrap(),
            }),
            points: Some(PointsMove {
                before: 1200,
                earned: 339,
                used: 100,
                after: 1439,
            }),
            coupons_used: vec!["满200减30 券 (CP-8H2K-3M9Q)".into()],
            coupons_issued: vec![IssuedCouponLine {
                name: "下次到店 9 折券".into(),
                code: "CP-Q7MX-22KD".into(),
                valid_to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            }],
            notes: vec!["本单积分 339 分：消费 226 元 × 1 分/元 × 金卡 1.5 倍 = 339 分".into()],
            footer: Some("谢谢惠顾，欢迎再次光临".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips() {
        let doc = fixtures::sample();
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["kind"], "sale");
        assert_eq!(json["amount_due"], 22600);
        assert_eq!(json["at"], "2026-11-23T12:34:56");
        let back: ReceiptDoc = serde_json::from_value(json).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn paper_parses() {
        assert_eq!("58mm".parse::<Paper>().unwrap(), Paper::Mm58);
        assert_eq!("80".parse::<Paper>().unwrap(), Paper::Mm80);
        assert!("76mm".parse::<Paper>().is_err());
        assert_eq!(serde_json::to_value(Paper::Mm58).unwrap(), "58mm");
    }

    #[test]
    fn reversal_negates_amounts_and_adds_back_discounts() {
        let mut doc = fixtures::sample();
        doc.kind = ReceiptKind::Reversal;
        assert_eq!(signed(&doc, Money::from_fen(100)), Money::from_fen(-100));
        assert_eq!(signed(&doc, Money::from_fen(-100)), Money::from_fen(-100));
        assert_eq!(reduction(&doc, Money::from_fen(100)), Money::from_fen(100));
        doc.kind = ReceiptKind::Sale;
        assert_eq!(reduction(&doc, Money::from_fen(100)), Money::from_fen(-100));
        assert_eq!(delta(Money::from_fen(100)), "+¥1.00");
        assert_eq!(points_delta(0), "0");
    }
}
