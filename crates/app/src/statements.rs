//! A card's statement rendered for print (HTML) and spreadsheets (CSV).

use crate::cards::Statement;
use patron_domain::money::Money;

fn amount(balance: &str, v: i64) -> String {
    if balance == "points" {
        v.to_string()
    } else {
        Money::from_fen(v).to_decimal_string()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// CSV with a UTF-8 BOM (so Excel shows the Chinese memos), one row per entry.
pub fn csv(st: &Statement) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "time",
        "seq",
        "kind",
        "balance",
        "amount",
        "balance_after",
        "memo",
        "transaction",
    ])
    .expect("in memory");
    for l in &st.lines {
        w.write_record([
            l.at.to_rfc3339(),
            l.seq.to_string(),
            l.kind.clone(),
            l.balance.clone(),
            amount(&l.balance, l.amount),
            amount(&l.balance, l.balance_after),
            l.memo.clone(),
            l.txn_id.to_string(),
        ])
        .expect("in memory");
    }
    let body = String::from_utf8(w.into_inner().expect("in memory")).expect("utf-8");
    format!("\u{feff}{body}")
}

/// A printable page: card, balances, and every entry with its running balance.
pub fn html(st: &Statement) -> String {
    let c = &st.card;
    let mut rows = String::new();
    for l in &st.lines {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            l.at.format("%Y-%m-%d %H:%M"),
            esc(&l.kind),
            esc(&l.balance),
            amount(&l.balance, l.amount),
            amount(&l.balance, l.balance_after),
            esc(&l.memo)
        ));
    }
    format!(
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8><title>会员卡对账单 Card statement {num}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left}}.n{{text-align:right;font-variant-numeric:tabular-nums}}\
         @media print{{button{{display:none}}}}</style></head><body>\
         <h1>会员卡对账单 / Card statement</h1><p>卡号 Card: <b>{num}</b> · 状态 Status: {status}</p>\
         <p>本金 Principal: <b>{p}</b> · 赠送 Bonus: <b>{b}</b> · 积分 Points: <b>{pts}</b></p>\
         <button onclick=print()>打印 Print</button>\
         <table><thead><tr><th>时间 Time</th><th>类型 Kind</th><th>账户 Balance</th><th class=n>金额 Amount</th>\
         <th class=n>余额 After</th><th>摘要 Memo</th></tr></thead><tbody>{rows}</tbody></table></body></html>",
        num = esc(&c.card.number),
        status = c.card.status.as_str(),
        p = c.balances.principal,
        b = c.balances.bonus,
        pts = c.balances.points,
    )
}
