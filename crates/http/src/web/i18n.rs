//! Languages of the web back office: Simplified Chinese and English. Messages live in
//! Fluent files under `crates/http/web/locales/<lang>/*.ftl` (one file per screen),
//! embedded at compile time; this module chooses the language and formats money and
//! dates the way each language writes them.

use axum::http::HeaderMap;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike, Utc};
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};
use patron_domain::money::Money;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./web/locales",
        fallback_language: "zh-CN",
        // No Unicode isolation marks around arguments: they would end up in form values
        // and confuse screen readers and tests alike.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The cookie remembering a chosen language.
pub const LANG_COOKIE: &str = "patron_lang";

/// A language of the back office.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

static ZH: LazyLock<LanguageIdentifier> = LazyLock::new(|| "zh-CN".parse().expect("zh-CN"));
static EN: LazyLock<LanguageIdentifier> = LazyLock::new(|| "en".parse().expect("en"));

impl Lang {
    /// The BCP 47 tag, as in `<html lang>` and the cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Lang> {
        let t = tag.trim().to_ascii_lowercase();
        if t.starts_with("zh") {
            Some(Lang::Zh)
        } else if t.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// The language of a request: the `patron_lang` cookie when set, else the best of
    /// `Accept-Language` that we speak, else Chinese (the product's home market).
    pub fn negotiate(headers: &HeaderMap) -> Lang {
        if let Some(l) = cookie(headers, LANG_COOKIE).and_then(|v| Lang::from_tag(&v)) {
            return l;
        }
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::Zh;
        };
        // "en-GB,en;q=0.9,zh;q=0.8": highest q wins, ties keep the header's order.
        let mut best: Option<(u16, Lang)> = None;
        for part in accept.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("");
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, parse_q);
            if let Some(l) = Lang::from_tag(tag)
                && q > 0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, l));
            }
        }
        best.map_or(Lang::Zh, |(_, l)| l)
    }

    /// The message `key`, or the key itself when no catalogue has it (visible in review,
    /// never a crash).
    pub fn t(self, key: &str) -> String {
        LOCALES
            .try_lookup(self.id(), key)
            .unwrap_or_else(|| key.to_string())
    }

    /// The message `key` with arguments.
    pub fn t_args(self, key: &str, args: &[(&str, String)]) -> String {
        let map: HashMap<Cow<'static, str>, FluentValue<'static>> = args
            .iter()
            .map(|(k, v)| (Cow::Owned(k.to_string()), FluentValue::from(v.clone())))
            .collect();
        LOCALES
            .try_lookup_with_args(self.id(), key, &map)
            .unwrap_or_else(|| key.to_string())
    }

    /// The message `key` if a catalogue has it.
    pub fn try_t(self, key: &str) -> Option<String> {
        LOCALES.try_lookup(self.id(), key)
    }

    /// A date the way the language writes it: 2026年11月24日 / 24 Nov 2026.
    pub fn date(self, d: NaiveDate) -> String {
        match self {
            Lang::Zh => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
            Lang::En => d.format("%-d %b %Y").to_string(),
        }
    }

    /// A moment in the tenant's local time: 2026年11月24日 14:05 / 24 Nov 2026, 14:05.
    pub fn datetime(self, t: DateTime<Utc>, offset: FixedOffset) -> String {
        let l = t.with_timezone(&offset);
        let hm = format!("{:02}:{:02}", l.hour(), l.minute());
        match self {
            Lang::Zh => format!("{} {hm}", self.date(l.date_naive())),
            Lang::En => format!("{}, {hm}", self.date(l.date_naive())),
        }
    }
}

fn parse_q(s: &str) -> u16 {
    // q is 0..=1 with up to three decimals; compare as thousandths, no floats.
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: u16 = int.parse().unwrap_or(0).min(1);
    let mut f = frac.chars().take(3).collect::<String>();
    while f.len() < 3 {
        f.push('0');
    }
    (int * 1000 + f.parse::<u16>().unwrap_or(0)).min(1000)
}

pub use crate::extract::cookie;

/// Money as people read it: ¥1,234.56 (two decimals, thousands grouped; -¥12.00).
pub fn money(m: Money) -> String {
    let fen = m.fen();
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", group(abs / 100), abs % 100)
}

/// An integer with thousands grouped: 12,345.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn money_is_grouped_with_two_decimals() {
        assert_eq!(money(Money::from_fen(0)), "¥0.00");
        assert_eq!(money(Money::from_fen(5)), "¥0.05");
        assert_eq!(money(Money::from_fen(123_456)), "¥1,234.56");
        assert_eq!(money(Money::from_fen(-1200)), "-¥12.00");
        assert_eq!(money(Money::from_fen(10_000_000_000)), "¥100,000,000.00");
    }

    #[test]
    fn accept_language_and_cookie_choose_the_language() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::negotiate(&h), Lang::Zh);
        h.insert(
            "accept-language",
            HeaderValue::from_static("en-GB,en;q=0.9,zh;q=0.8"),
        );
        assert_eq!(Lang::negotiate(&h), Lang::En);
        h.insert(
            "accept-language",
            HeaderValue::from_static("fr, zh-CN;q=0.5, en;q=0.4"),
        );
        assert_eq!(Lang::negotiate(&h), Lang::Zh);
        h.insert("cookie", HeaderValue::from_static("a=b; patron_lang=en"));
        assert_eq!(Lang::negotiate(&h), Lang::En);
    }

    #[test]
    fn dates_in_each_language() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap();
        assert_eq!(Lang::Zh.date(d), "2026年11月4日");
        assert_eq!(Lang::En.date(d), "4 Nov 2026");
    }

    #[test]
    fn both_catalogues_have_the_same_keys() {
        // A key present in one language only would show raw in the other.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/web/locales");
        let keys = |lang: &str| {
            let mut keys = std::collections::BTreeSet::new();
            for e in std::fs::read_dir(format!("{dir}/{lang}")).unwrap() {
                let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
                for line in text.lines() {
                    if let Some((k, _)) = line.split_once(" =")
                        && !k.starts_with(['#', ' ', '.'])
                        && !k.is_empty()
                    {
                        keys.insert(k.to_string());
                    }
                }
            }
            keys
        };
        let (zh, en) = (keys("zh-CN"), keys("en"));
        for lang in ["zh-CN", "en"] {
            let mut seen = std::collections::BTreeMap::new();
            for e in std::fs::read_dir(format!("{dir}/{lang}")).unwrap() {
                let path = e.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    if let Some((k, _)) = line.split_once(" =")
                        && !k.starts_with(['#', ' ', '.'])
                        && !k.is_empty()
                        && let Some(first) = seen.insert(k.to_string(), path.clone())
                    {
                        panic!("{k} is defined in both {first:?} and {path:?}");
                    }
                }
            }
        }
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only zh: {only_zh:?}; only en: {only_en:?}"
        );
    }
}
