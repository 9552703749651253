//! Search keys for names: Chinese names are found by characters, full pinyin or pinyin
//! initials ("张伟" ← "张", "zhangwei", "zw"), Latin names case-insensitively.

use pinyin::ToPinyin;

/// Lower-case pinyin without tones, concatenated ("zhangwei"); other letters and digits
/// kept lower-cased, the rest dropped.
pub fn pinyin_full(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for c in name.chars() {
        if let Some(p) = c.to_pinyin() {
            out.push_str(p.plain());
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Pinyin initials ("zw"); for Latin words, their first letters.
pub fn pinyin_initials(name: &str) -> String {
    let mut out = String::new();
    let mut word_start = true;
    for c in name.chars() {
        if let Some(p) = c.to_pinyin() {
            out.push_str(p.first_letter());
            word_start = true;
        } else if c.is_alphanumeric() {
            if word_start {
                out.extend(c.to_lowercase());
            }
            word_start = false;
        } else {
            word_start = true;
        }
    }
    out
}

/// What kind of look-up a free-text query at the till most likely is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupQuery {
    /// All digits, long enough to be a phone or card number.
    Number(String),
    /// Letters: a name fragment or pinyin.
    Name(String),
}

/// Classifies a till query: digits (with spaces or dashes) are a number, anything else a name.
pub fn classify(query: &str) -> LookupQuery {
    let q = query.trim();
    let digits: String = q.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = digits.strip_prefix('+').unwrap_or(&digits).to_string();
    if digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
        LookupQuery::Number(digits)
    } else {
        LookupQuery::Name(q.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinyin_keys() {
        assert_eq!(pinyin_full("张伟"), "zhangwei");
        assert_eq!(pinyin_initials("张伟"), "zw");
        assert_eq!(pinyin_full("Anna Li"), "annali");
        assert_eq!(pinyin_initials("Anna Li"), "al");
        assert_eq!(pinyin_initials("欧阳·娜娜"), "oynn");
    }

    #[test]
    fn classifies() {
        assert_eq!(
            classify(" 138 0013 8000"),
            LookupQuery::Number("13800138000".into())
        );
        assert_eq!(classify("张"), LookupQuery::Name("张".into()));
        assert_eq!(classify("ZW"), LookupQuery::Name("zw".into()));
    }
}
