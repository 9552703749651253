//! The receipt as a standalone printable page: inline CSS, a receipt-wide column, Chinese
//! labels with English in small type. Every string from the document is escaped.

use super::{ReceiptDoc, banner, delta, points_delta, reduction, signed};
use std::fmt::Write;

/// Text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bilingual label: Chinese, then English in small type (both escaped).
fn label(zh: &str, en: &str) -> String {
    if en.is_empty() {
        esc(zh)
    } else {
        format!("{} <small>{}</small>", esc(zh), esc(en))
    }
}

/// A table row: label on the left, value right-aligned (the value is escaped).
fn row(out: &mut String, class: &str, label_html: &str, value: &str) {
    let _ = write!(
        out,
        "<tr class=\"{class}\"><th>{label_html}</th><td class=\"n\">{}</td></tr>",
        esc(value)
    );
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;background:#eee;color:#000}\
.receipt{width:80mm;max-width:100%;margin:16px auto;padding:4mm;background:#fff;\
font:14px/1.45 \"PingFang SC\",\"Microsoft YaHei\",\"Noto Sans CJK SC\",\"Source Han Sans SC\",sans-serif}\
h1{font-size:1.6em;text-align:center;margin:0}\
p{margin:0}.c{text-align:center}\
small{font-size:.7em;color:#555;font-weight:normal}\
hr{border:0;border-top:1px dashed #000;margin:6px 0}\
hr.d{border-top:3px double #000}\
table{width:100%;border-collapse:collapse}\
th{text-align:left;font-weight:normal;vertical-align:top;padding:1px 0}\
td{vertical-align:top;padding:1px 0}\
.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums;padding-left:6px}\
thead th{border-bottom:1px solid #000}\
.lines thead th.n{text-align:right}\
.net th,.net td{color:#444;font-size:.9em;padding-left:1em}\
.banner{border:3px solid #000;text-align:center;font-size:1.5em;font-weight:bold;margin:6px 0;padding:2px}\
.due th,.due td{font-size:1.4em;font-weight:bold;padding:4px 0}\
.sec{font-weight:bold;margin-top:6px}\
.sub th{padding-left:1em}\
.notes{font-size:.9em}\
footer{text-align:center;margin-top:8px}\
button{display:block;margin:12px auto 0;padding:6px 20px;font-size:1em}\
@media print{@page{size:80mm auto;margin:0}body{background:none}\
.receipt{width:auto;margin:0;padding:2mm}button{display:none}}";

/// The receipt as a complete HTML page, ready to print from a browser.
pub fn render_html(doc: &ReceiptDoc) -> String {
    let mut h = String::with_capacity(8192);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>小票 Receipt {}</title><style>{STYLE}</style></head><body>\
         <main class=\"receipt\"><header><h1>{}</h1><p class=\"c\">{}</p>",
        esc(&doc.number),
        esc(&doc.title),
        esc(&doc.store_name)
    );
    if let Some(a) = &doc.store_address {
        let _ = write!(h, "<p class=\"c\"><small>{}</small></p>", esc(a));
    }
    if let Some(p) = &doc.store_phone {
        let _ = write!(h, "<p class=\"c\">电话 <small>Tel</small> {}</p>", esc(p));
    }
    h.push_str("</header>");
    if let Some((zh, en)) = banner(doc.kind) {
        let _ = write!(h, "<div class=\"banner\">{zh} / {en}</div>");
    } else {
        h.push_str("<hr class=\"d\">");
    }

    h.push_str("<table class=\"meta\">");
    row(&mut h, "", &label("单号", "No."), &doc.number);
    let at = doc.at.format("%Y-%m-%d %H:%M:%S").to_string();
    row(&mut h, "", &label("时间", "Time"), &at);
    row(&mut h, "", &label("收银", "Cashier"), &doc.cashier);
    if let Some(c) = &doc.customer {
        row(&mut h, "", &label("会员", "Member"), c);
    }
    if let Some(c) = &doc.card_number {
        row(&mut h, "", &label("卡号", "Card"), c);
    }
    if let Some(l) = &doc.level {
        row(&mut h, "", &label("等级", "Level"), l);
    }
    h.push_str("</table><hr>");

    h.push_str(
        "<table class=\"lines\"><thead><tr><th>品名 <small>Item</small></th>\
         <th class=\"n\">数量 <small>Qty</small></th><th class=\"n\">单价 <small>Price</small></th>\
         <th class=\"n\">金额 <small>Amount</small></th></tr></thead><tbody>",
    );
    for l in &doc.lines {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&l.name),
            l.quantity,
            l.unit_price.to_decimal_string(),
            signed(doc, l.gross).to_decimal_string()
        );
        if l.net != l.gross {
            let _ = write!(
                h,
                "<tr class=\"net\"><td colspan=\"3\">折后 <small>Net</small></td><td class=\"n\">{}</td></tr>",
                signed(doc, l.net).to_decimal_string()
            );
        }
    }
    h.push_str("</tbody></table><hr><table class=\"sums\">");
    row(
        &mut h,
        "",
        &label("合计", "Subtotal"),
        &signed(doc, doc.gross).to_string(),
    );
    for d in &doc.discounts {
        let v = reduction(doc, d.amount).to_decimal_string();
        row(&mut h, "sub", &label(&d.label, &d.label_en), &v);
    }
    if doc.total_discount.fen() != 0 {
        let v = reduction(doc, doc.total_discount).to_string();
        row(&mut h, "", &label("优惠合计", "Discounts"), &v);
    }
    let due = signed(doc, doc.amount_due).to_string();
    row(&mut h, "due", &label("应付", "Amount due"), &due);
    h.push_str("</table>");

    if !doc.tenders.is_empty() || doc.change.is_some() {
        h.push_str("<hr><p class=\"sec\">支付方式 <small>Payment</small></p><table>");
        for t in &doc.tenders {
            let v = signed(doc, t.amount).to_decimal_string();
            row(&mut h, "sub", &label(&t.label, &t.label_en), &v);
        }
        if let Some(c) = doc.change {
            row(
                &mut h,
                "sub",
                &label("找零", "Change"),
                &c.to_decimal_string(),
            );
        }
        h.push_str("</table>");
    }
    if let Some(s) = &doc.stored_value {
        h.push_str("<hr><p class=\"sec\">储值卡余额 <small>Stored value</small></p><table>");
        row(
            &mut h,
            "sub",
            &label("原余额", "Before"),
            &s.before.to_string(),
        );
        row(
            &mut h,
            "sub",
            &label("本次", "This time"),
            &delta(s.this_time),
        );
        row(
            &mut h,
            "sub",
            &label("现余额", "After"),
            &s.after.to_string(),
        );
        h.push_str("</table>");
    }
    if let Some(p) = &doc.points {
        h.push_str("<hr><p class=\"sec\">积分 <small>Points</small></p><table>");
        row(
            &mut h,
            "sub",
            &label("原有", "Before"),
            &p.before.to_string(),
        );
        row(
            &mut h,
            "sub",
            &label("本次获得", "Earned"),
            &points_delta(p.earned),
        );
        let used = points_delta(p.used.saturating_neg());
        row(&mut h, "sub", &label("本次使用", "Used"), &used);
        row(&mut h, "sub", &label("现有", "After"), &p.after.to_string());
        h.push_str("</table>");
    }
    if !doc.coupons_used.is_empty() {
        h.push_str("<hr><p class=\"sec\">已用优惠券 <small>Coupons used</small></p><ul>");
        for c in &doc.coupons_used {
            let _ = write!(h, "<li>{}</li>", esc(c));
        }
        h.push_str("</ul>");
    }
    if !doc.coupons_issued.is_empty() {
        h.push_str("<hr><p class=\"sec\">获赠优惠券 <small>Coupons issued</small></p><ul>");
        for c in &doc.coupons_issued {
            let _ = write!(
                h,
                "<li>{}<br><small>券码 Code</small> <b>{}</b><br><small>有效期至 Valid to</small> {}</li>",
                esc(&c.name),
                esc(&c.code),
                c.valid_to
            );
        }
        h.push_str("</ul>");
    }
    if !doc.notes.is_empty() {
        h.push_str("<hr><div class=\"notes\">");
        for n in &doc.notes {
            let _ = write!(h, "<p>{}</p>", esc(n));
        }
        h.push_str("</div>");
    }
    if let Some(f) = &doc.footer {
        let _ = write!(h, "<hr><footer>{}</footer>", esc(f));
    }
    h.push_str(
        "<button type=\"button\" onclick=\"window.print()\">打印 Print</button></main></body></html>",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::super::ReceiptKind;
    use super::super::fixtures::sample;
    use super::*;

    #[test]
    fn renders_every_part_of_the_receipt() {
        let h = render_html(&sample());
        assert!(h.starts_with("<!doctype html>"));
        assert!(h.ends_with("</html>"));
        assert!(h.contains("@media print"));
        for part in [
            "<h1>和府小馆</h1>",
            "静安寺店",
            "SH01-20261123-0042",
            "2026-11-23 12:34:56",
            "张** 138****0001",
            "招牌红烧肉配秘制酱汁（大份，含米饭两碗）",
            "<td class=\"n\">88.00</td>",
            "<td class=\"n\">78.00</td>",
            "会员价 <small>Member price</small>",
            "<td class=\"n\">-10.00</td>",
            "<td class=\"n\">¥226.00</td>",
            "储值卡 本金 <small>Card principal</small>",
            "<td class=\"n\">150.00</td>",
            "<td class=\"n\">-¥180.00</td>",
            "<td class=\"n\">¥320.00</td>",
            "<td class=\"n\">+339</td>",
            "<td class=\"n\">-100</td>",
            "<td class=\"n\">1439</td>",
            "CP-8H2K-3M9Q",
            "CP-Q7MX-22KD",
            "2026-12-31",
            "本单积分 339 分",
            "<footer>谢谢惠顾，欢迎再次光临</footer>",
        ] {
            assert!(h.contains(part), "missing {part:?}");
        }
        assert!(!h.contains("banner\">"));
    }

    #[test]
    fn escapes_every_user_string() {
        let mut doc = sample();
        doc.lines[0].name = "<script>alert('x')</script>".into();
        doc.title = "A & B \"小馆\"".into();
        doc.number = "</title><script>".into();
        doc.discounts[0].label_en = "<img src=x onerror=alert(1)>".into();
        doc.coupons_issued[0].code = "<b>".into();
        let h = render_html(&doc);
        assert!(!h.contains("<script>"));
        assert!(!h.contains("<img"));
        assert!(!h.contains("<b><b>"));
        assert!(h.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(h.contains("A &amp; B &quot;小馆&quot;"));
        assert!(h.contains("<title>小票 Receipt &lt;/title&gt;&lt;script&gt;</title>"));
    }

    #[test]
    fn refund_has_a_banner_and_negative_amounts() {
        let mut doc = sample();
        doc.kind = ReceiptKind::Refund;
        let h = render_html(&doc);
        assert!(h.contains("<div class=\"banner\">退款 / REFUND</div>"));
        assert!(h.contains("<td class=\"n\">-¥226.00</td>"));
        assert!(h.contains("<td class=\"n\">-88.00</td>"));
        // A discount undone is added back.
        assert!(h.contains("<td class=\"n\">10.00</td>"));
    }
}
