//! The fixed-width layout shared by plain text and ESC/POS: the receipt as a list of
//! blocks, each laid out into lines of exactly the paper's width. Widths are measured
//! by a [`Face`]: Unicode display width for text, GB18030 glyph cells for a printer.

use super::{Paper, ReceiptDoc, banner, delta, points_delta, reduction, signed};
use unicode_width::UnicodeWidthStr;

/// How a target measures and cleans text.
#[derive(Clone, Copy)]
pub(super) struct Face {
    /// Columns a string takes.
    pub width: fn(&str) -> usize,
    /// What a character becomes: control characters must never reach a printer as
    /// commands, nor break the layout.
    pub clean: fn(char) -> char,
}

/// A terminal or text file: Unicode display widths (a CJK character is 2 columns).
pub(super) const TERMINAL: Face = Face {
    width: UnicodeWidthStr::width,
    clean: clean_control,
};

/// Control characters, line/paragraph separators and bidi overrides become spaces.
pub(super) fn clean_control(c: char) -> char {
    let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if c.is_control() || bidi || c == '\u{2028}' || c == '\u{2029}' {
        ' '
    } else {
        c
    }
}

/// How a block prints on a thermal printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Normal,
    Bold,
    /// Double size and bold when it fits in one line at half the columns, else double
    /// height only (plain text ignores the size).
    Big,
}

#[derive(Debug, Clone)]
pub(super) enum Body {
    Center(String),
    /// Left-aligned, wrapped.
    Text(String),
    /// A label on the left (English dropped when it would not fit on one line), a value
    /// right-aligned.
    Pair {
        zh: String,
        en: String,
        value: String,
    },
    Rule(char),
    ItemHeader,
    Item {
        name: String,
        qty: String,
        price: String,
        amount: String,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Block {
    pub style: Style,
    pub body: Body,
}

impl Block {
    /// The block's lines, each exactly `width` columns wide (never wider).
    pub(super) fn lines(&self, face: Face, width: usize) -> Vec<String> {
        let c = |s: &str| -> String { s.chars().map(face.clean).collect() };
        let w = face.width;
        let raw = match &self.body {
            Body::Center(s) => wrap(face, &c(s), width)
                .into_iter()
                .map(|l| format!("{}{l}", spaces((width - w(&l).min(width)) / 2)))
                .collect(),
            Body::Text(s) => wrap(face, &c(s), width),
            Body::Pair { zh, en, value } => pair(face, &c(zh), &c(en), &c(value), width),
            Body::Rule(ch) => vec![ch.to_string().repeat(width)],
            Body::ItemHeader => {
                let [q, p, a] = item_columns(width);
                let n = width - q - p - a;
                vec![
                    format!(
                        "{}{}{}{}",
                        left(face, "品名", n),
                        right(face, "数量", q),
                        right(face, "单价", p),
                        right(face, "金额", a)
                    ),
                    format!(
                        "{}{}{}{}",
                        left(face, "Item", n),
                        right(face, "Qty", q),
                        right(face, "Price", p),
                        right(face, "Amount", a)
                    ),
                ]
            }
            Body::Item {
                name,
                qty,
                price,
                amount,
            } => item(face, &c(name), &c(qty), &c(price), &c(amount), width),
        };
        raw.into_iter().map(|l| left(face, &l, width)).collect()
    }
}

fn spaces(n: usize) -> String {
    " ".repeat(n)
}

/// `s` padded on the right to `n` columns.
fn left(face: Face, s: &str, n: usize) -> String {
    format!("{s}{}", spaces(n.saturating_sub((face.width)(s))))
}

/// `s` padded on the left to `n` columns.
fn right(face: Face, s: &str, n: usize) -> String {
    format!("{}{s}", spaces(n.saturating_sub((face.width)(s))))
}

/// Quantity, unit price and amount columns; the item name takes the rest.
fn item_columns(width: usize) -> [usize; 3] {
    if width >= 48 { [5, 10, 11] } else { [4, 9, 9] }
}

/// Words to keep together: runs of ASCII letters and digits; every other character
/// (a CJK character, a space, punctuation) stands alone, with any zero-width marks
/// that follow it.
fn tokens(face: Face, s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut word = false;
    for ch in s.chars() {
        let mut buf = [0u8; 4];
        let zero = (face.width)(ch.encode_utf8(&mut buf)) == 0;
        let wordish = ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_' | '/' | '*');
        match out.last_mut() {
            Some(last) if zero || (word && wordish) => last.push(ch),
            _ => out.push(ch.to_string()),
        }
        if !zero {
            word = wordish;
        }
    }
    out
}

/// Greedy wrapping at word boundaries, breaking words only when longer than a line.
/// Every line is at most `width` columns (`width` ≥ 2, the widest character).
pub(super) fn wrap(face: Face, s: &str, width: usize) -> Vec<String> {
    let w = face.width;
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for token in tokens(face, s) {
        let blank = token.trim().is_empty();
        if blank && line.is_empty() && !out.is_empty() {
            continue; // no leading space on a continuation line
        }
        let candidate = format!("{line}{token}");
        if w(&candidate) <= width {
            line = candidate;
            continue;
        }
        if !line.trim().is_empty() {
            out.push(line.trim_end().to_string());
            line = String::new();
        }
        if blank {
            continue;
        }
        for ch in token.chars() {
            let candidate = format!("{line}{ch}");
            if w(&candidate) <= width || line.is_empty() {
                line = candidate;
            } else {
                out.push(std::mem::take(&mut line));
                line.push(ch);
            }
        }
    }
    if !line.trim().is_empty() || out.is_empty() {
        out.push(line.trim_end().to_string());
    }
    out
}

/// A label and a right-aligned value on one line if they fit (bilingual first, then
/// Chinese only); otherwise the label wraps and the value ends its last line or has a
/// line of its own.
fn pair(face: Face, zh: &str, en: &str, value: &str, width: usize) -> Vec<String> {
    let w = face.width;
    let wv = w(value);
    let both = if en.is_empty() {
        zh.to_string()
    } else {
        format!("{zh} {en}")
    };
    for label in [&both, zh] {
        let wl = w(label);
        if wl + 1 + wv <= width {
            return vec![format!("{label}{}{value}", spaces(width - wl - wv))];
        }
    }
    let mut lines = wrap(face, zh, width);
    let last = lines.pop().unwrap_or_default();
    if w(&last) + 1 + wv <= width {
        lines.push(format!("{last}{}{value}", spaces(width - w(&last) - wv)));
    } else {
        if !last.trim().is_empty() {
            lines.push(last);
        }
        lines.extend(
            wrap(face, value, width)
                .iter()
                .map(|v| right(face, v, width)),
        );
    }
    lines
}

/// A dish: its name and the quantity, unit price and amount in their columns. On wide
/// paper the name wraps inside its column; on narrow paper it takes whole lines and the
/// figures follow on the last one (or a line of their own).
fn item(face: Face, name: &str, qty: &str, price: &str, amount: &str, width: usize) -> Vec<String> {
    let w = face.width;
    let [cq, cp, ca] = item_columns(width);
    if w(qty) >= cq || w(price) >= cp || w(amount) >= ca {
        // Absurd figures: keep them readable rather than in columns.
        let mut out = wrap(face, name, width);
        out.extend(pair(face, &format!("{qty} x {price}"), "", amount, width));
        return out;
    }
    let figures = format!(
        "{}{}{}",
        right(face, qty, cq),
        right(face, price, cp),
        right(face, amount, ca)
    );
    let name_col = width - cq - cp - ca;
    if name_col >= 16 {
        let mut lines = wrap(face, name, name_col - 1);
        let first = format!("{}{figures}", left(face, &lines[0], name_col));
        lines[0] = first;
        return lines;
    }
    let mut lines = wrap(face, name, width);
    let last = lines.pop().unwrap_or_default();
    if w(&last) < name_col {
        lines.push(format!("{}{figures}", left(face, &last, name_col)));
    } else {
        lines.push(last);
        lines.push(right(face, &figures, width));
    }
    lines
}

fn block(style: Style, body: Body) -> Block {
    Block { style, body }
}

fn text(s: &str) -> Block {
    block(Style::Normal, Body::Text(s.to_string()))
}

fn heading(s: &str) -> Block {
    block(Style::Bold, Body::Text(s.to_string()))
}

fn rule(c: char) -> Block {
    block(Style::Normal, Body::Rule(c))
}

fn kv(zh: &str, en: &str, value: impl Into<String>) -> Block {
    block(
        Style::Normal,
        Body::Pair {
            zh: zh.to_string(),
            en: en.to_string(),
            value: value.into(),
        },
    )
}

/// The receipt, top to bottom.
pub(super) fn blocks(doc: &ReceiptDoc) -> Vec<Block> {
    let mut b = vec![
        block(Style::Big, Body::Center(doc.title.clone())),
        block(Style::Normal, Body::Center(doc.store_name.clone())),
    ];
    if let Some(a) = &doc.store_address {
        b.push(block(Style::Normal, Body::Center(a.clone())));
    }
    if let Some(p) = &doc.store_phone {
        b.push(block(Style::Normal, Body::Center(format!("电话 Tel {p}"))));
    }
    b.push(rule('='));
    if let Some((zh, en)) = banner(doc.kind) {
        b.push(block(Style::Big, Body::Center(format!("{zh} / {en}"))));
        b.push(rule('='));
    }
    b.push(kv("单号", "No.", doc.number.clone()));
    b.push(kv(
        "时间",
        "Time",
        doc.at.format("%Y-%m-%d %H:%M:%S").to_string(),
    ));
    b.push(kv("收银", "Cashier", doc.cashier.clone()));
    if let Some(c) = &doc.customer {
        b.push(kv("会员", "Member", c.clone()));
    }
    if let Some(c) = &doc.card_number {
        b.push(kv("卡号", "Card", c.clone()));
    }
    if let Some(l) = &doc.level {
        b.push(kv("等级", "Level", l.clone()));
    }
    b.push(rule('-'));
    b.push(block(Style::Normal, Body::ItemHeader));
    b.push(rule('-'));
    for l in &doc.lines {
        b.push(block(
            Style::Normal,
            Body::Item {
                name: l.name.clone(),
                qty: l.quantity.to_string(),
                price: l.unit_price.to_decimal_string(),
                amount: signed(doc, l.gross).to_decimal_string(),
            },
        ));
        if l.net != l.gross {
            b.push(kv("  折后", "Net", signed(doc, l.net).to_decimal_string()));
        }
    }
    b.push(rule('-'));
    b.push(kv("合计", "Subtotal", signed(doc, doc.gross).to_string()));
    for d in &doc.discounts {
        let v = reduction(doc, d.amount).to_decimal_string();
        b.push(kv(&d.label, &d.label_en, v));
    }
    if doc.total_discount.fen() != 0 {
        let v = reduction(doc, doc.total_discount).to_string();
        b.push(kv("优惠合计", "Discounts", v));
    }
    b.push(rule('='));
    b.push(block(
        Style::Big,
        Body::Pair {
            zh: "应付".into(),
            en: "Due".into(),
            value: signed(doc, doc.amount_due).to_string(),
        },
    ));
    b.push(rule('='));
    if !doc.tenders.is_empty() || doc.change.is_some() {
        b.push(heading("支付方式 Payment"));
        for t in &doc.tenders {
            let v = signed(doc, t.amount).to_decimal_string();
            b.push(kv(&format!("  {}", t.label), &t.label_en, v));
        }
        if let Some(c) = doc.change {
            b.push(kv("  找零", "Change", c.to_decimal_string()));
        }
    }
    if let Some(s) = &doc.stored_value {
        b.push(rule('-'));
        b.push(heading("储值卡余额 Stored value"));
        b.push(kv("  原余额", "Before", s.before.to_string()));
        b.push(kv("  本次", "This time", delta(s.this_time)));
        b.push(kv("  现余额", "After", s.after.to_string()));
    }
    if let Some(p) = &doc.points {
        b.push(rule('-'));
        b.push(heading("积分 Points"));
        b.push(kv("  原有", "Before", p.before.to_string()));
        b.push(kv("  本次获得", "Earned", points_delta(p.earned)));
        b.push(kv(
            "  本次使用",
            "Used",
            points_delta(p.used.saturating_neg()),
        ));
        b.push(kv("  现有", "After", p.after.to_string()));
    }
    if !doc.coupons_used.is_empty() {
        b.push(rule('-'));
        b.push(heading("已用优惠券 Coupons used"));
        for c in &doc.coupons_used {
            b.push(text(&format!("  {c}")));
        }
    }
    if !doc.coupons_issued.is_empty() {
        b.push(rule('-'));
        b.push(heading("获赠优惠券 Coupons issued"));
        for c in &doc.coupons_issued {
            b.push(text(&format!("  {}", c.name)));
            b.push(kv("    券码", "Code", c.code.clone()));
            b.push(kv("    有效期至", "Valid to", c.valid_to.to_string()));
        }
    }
    if !doc.notes.is_empty() {
        b.push(rule('-'));
        for n in &doc.notes {
            b.push(text(n));
        }
    }
    if let Some(f) = &doc.footer {
        b.push(rule('-'));
        b.push(block(Style::Normal, Body::Center(f.clone())));
    }
    b
}

/// The receipt as fixed-width text: every line exactly the paper's columns wide
/// (Unicode display width: a CJK character is 2 columns), names wrapped, amounts
/// right-aligned. Lines end with `\n`.
pub fn render_text(doc: &ReceiptDoc, paper: Paper) -> String {
    let mut out = String::new();
    for b in blocks(doc) {
        for l in b.lines(TERMINAL, paper.columns()) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::sample;
    use super::super::{Money, ReceiptKind};
    use super::*;
    use proptest::prelude::*;

    fn assert_width(s: &str, paper: Paper) {
        for l in s.lines() {
            assert!(l.width() <= paper.columns(), "{paper:?}: {l:?}");
        }
    }

    #[test]
    fn every_line_is_exactly_the_paper_width() {
        let doc = sample();
        for paper in [Paper::Mm58, Paper::Mm80] {
            let t = render_text(&doc, paper);
            assert!(t.ends_with('\n'));
            for l in t.lines() {
                assert_eq!(l.width(), paper.columns(), "{paper:?}: {l:?}");
            }
        }
    }

    #[test]
    fn lays_out_a_realistic_receipt_on_80mm() {
        let t = render_text(&sample(), Paper::Mm80);
        let lines: Vec<&str> = t.lines().map(str::trim_end).collect();
        let has = |s: &str| lines.contains(&s);
        assert!(lines[0].trim() == "和府小馆", "{:?}", lines[0]);
        assert!(has("单号 No.                      SH01-20261123-0042"));
        assert!(has("品名                   数量      单价       金额"));
        // A long name wraps inside its column, the figures on its first line.
        assert!(has("招牌红烧肉配秘制酱汁      1     88.00      88.00"));
        assert!(has("（大份，含米饭两碗）"));
        assert!(has("  折后 Net                                 78.00"));
        assert!(has("宫保鸡丁                  2     38.00      76.00"));
        assert!(has("合计 Subtotal                            ¥266.00"));
        assert!(has("会员价 Member price                       -10.00"));
        assert!(has("优惠合计 Discounts                       -¥40.00"));
        assert!(has("应付 Due                                 ¥226.00"));
        assert!(has("  储值卡 本金 Card principal              150.00"));
        assert!(has("  找零 Change                               4.00"));
        assert!(has("  本次 This time                        -¥180.00"));
        assert!(has("  本次获得 Earned                           +339"));
        assert!(has("  本次使用 Used                             -100"));
        assert!(has("  现有 After                                1439"));
        assert!(has("    有效期至 Valid to                 2026-12-31"));
        assert!(t.contains("本单积分 339 分"));
        assert!(lines.last().unwrap().contains("谢谢惠顾，欢迎再次光临"));
        assert!(!t.contains("REVERSAL"));
    }

    #[test]
    fn narrow_paper_wraps_names_and_keeps_figures_aligned() {
        let t = render_text(&sample(), Paper::Mm58);
        let lines: Vec<&str> = t.lines().map(str::trim_end).collect();
        let has = |s: &str| lines.contains(&s);
        assert!(has("招牌红烧肉配秘制酱汁（大份，含米"));
        assert!(has("饭两碗）     1    88.00    88.00"));
        assert!(has("宫保鸡丁     2    38.00    76.00"));
        // The English label is dropped when it would not fit beside the amount.
        assert!(has("  储值卡 本金             150.00"));
        assert!(has("应付 Due                 ¥226.00"));
    }

    #[test]
    fn reversal_has_a_banner_and_negative_amounts() {
        let mut doc = sample();
        doc.kind = ReceiptKind::Reversal;
        for paper in [Paper::Mm58, Paper::Mm80] {
            let t = render_text(&doc, paper);
            assert!(t.contains("反结账 / REVERSAL"), "{t}");
            assert!(t.contains("-¥226.00"));
            assert!(t.contains("-¥266.00"));
            assert!(t.contains("-150.00"));
            assert!(t.contains("¥40.00") && !t.contains("-¥40.00"));
            for l in t.lines() {
                assert_eq!(l.width(), paper.columns());
            }
        }
    }

    #[test]
    fn control_characters_cannot_break_lines() {
        let mut doc = sample();
        doc.lines[0].name = "红烧\n肉\t\u{1b}[2J\u{202e}abc".into();
        let t = render_text(&doc, Paper::Mm58);
        assert!(!t.contains('\u{1b}') && !t.contains('\t') && !t.contains('\u{202e}'));
        assert_width(&t, Paper::Mm58);
    }

    #[test]
    fn wrap_breaks_at_spaces_and_splits_long_words() {
        let w = |s: &str, n| wrap(TERMINAL, s, n);
        assert_eq!(w("hello big world", 9), ["hello big", "world"]);
        assert_eq!(w("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(w("宫保鸡丁", 5), ["宫保", "鸡丁"]);
        assert_eq!(w("", 5), [""]);
        assert_eq!(w("e\u{301}e\u{301}", 1), ["e\u{301}", "e\u{301}"]);
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 ]{0,60}",
            "[宫保鸡丁红烧肉米饭汤 ]{0,40}",
            "[a-z宫保鸡丁😀🌶️é\u{301}（）, ]{0,50}",
            "\\PC{0,40}",
        ]
    }

    proptest! {
        #[test]
        fn text_never_exceeds_the_paper(
            names in proptest::collection::vec(name(), 1..6),
            label in name(),
            fens in proptest::collection::vec(-10_000_000_000_000i64..10_000_000_000_000, 6),
            qty in 0u32..100_000,
            reversal in any::<bool>(),
        ) {
            let mut doc = sample();
            doc.title = label.clone();
            doc.customer = Some(label.clone());
            doc.kind = if reversal { ReceiptKind::Reversal } else { ReceiptKind::Sale };
            for (i, n) in names.iter().enumerate() {
                doc.lines[i].name = n.clone();
                doc.lines[i].quantity = qty;
                doc.lines[i].unit_price = Money::from_fen(fens[i]);
                doc.lines[i].gross = Money::from_fen(fens[(i + 1) % 6]);
            }
            doc.discounts[0].label = label.clone();
            doc.discounts[0].amount = Money::from_fen(fens[2]);
            doc.amount_due = Money::from_fen(fens[3]);
            doc.tenders[0].label_en = names[0].clone();
            doc.notes.push(names[names.len() - 1].clone());
            doc.footer = Some(label);
            for paper in [Paper::Mm58, Paper::Mm80] {
                let t = render_text(&doc, paper);
                for l in t.lines() {
                    prop_assert!(l.width() <= paper.columns(), "{:?}: {:?}", paper, l);
                }
            }
        }
    }
}
