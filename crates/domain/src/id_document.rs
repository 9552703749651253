//! ID documents. The number is never stored in clear: a keyed hash (HMAC-SHA256 under a
//! secret kept outside the database) serves look-up and duplicate detection, and a
//! masked form serves display.

use crate::error::FieldError;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

/// Kind of identity document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdDocumentKind {
    /// 居民身份证: 18 characters with an ISO 7064 MOD 11-2 check character.
    ResidentId,
    Passport,
    /// 港澳居民来往内地通行证 and similar permits.
    HkMacaoPermit,
    TaiwanPermit,
    Other,
}

impl IdDocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentId => "resident_id",
            Self::Passport => "passport",
            Self::HkMacaoPermit => "hk_macao_permit",
            Self::TaiwanPermit => "taiwan_permit",
            Self::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "resident_id" | "身份证" | "id" | "" => Self::ResidentId,
            "passport" | "护照" => Self::Passport,
            "hk_macao_permit" | "港澳通行证" => Self::HkMacaoPermit,
            "taiwan_permit" | "台胞证" => Self::TaiwanPermit,
            "other" | "其他" => Self::Other,
            _ => return None,
        })
    }
}

/// A validated, normalised document number, still in clear: it lives only in memory
/// between the input and [`IdDocument::protect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdDocument {
    pub kind: IdDocumentKind,
    number: String,
}

/// What is stored: the kind, the keyed hash and the masked form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedIdDocument {
    pub kind: IdDocumentKind,
    /// Lower-case hex HMAC-SHA256 of "kind:number" under the tenant-independent secret.
    pub hash: String,
    /// e.g. "110***********123X".
    pub masked: String,
}

impl IdDocument {
    /// Normalises (upper-case, no spaces) and validates the number for its kind.
    pub fn parse(kind: IdDocumentKind, raw: &str, field: &str) -> Result<IdDocument, FieldError> {
        let number: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect();
        if number.is_empty()
            || number.len() > 32
            || !number.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(FieldError::new(
                field,
                "invalid_id_number",
                "the ID number must be 1–32 letters and digits",
            ));
        }
        if kind == IdDocumentKind::ResidentId {
            validate_resident_id(&number)
                .map_err(|why| FieldError::new(field, "invalid_id_number", why))?;
        }
        Ok(IdDocument { kind, number })
    }

    /// Hashes and masks; the clear number is dropped with `self`.
    pub fn protect(self, key: &[u8]) -> ProtectedIdDocument {
        ProtectedIdDocument {
            kind: self.kind,
            hash: keyed_hash(key, self.kind, &self.number),
            masked: mask(&self.number),
        }
    }
}

/// The look-up key for a document number typed by a phone agent.
pub fn keyed_hash(key: &[u8], kind: IdDocumentKind, normalised_number: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(kind.as_str().as_bytes());
    mac.update(b":");
    mac.update(normalised_number.as_bytes());
    let out = mac.finalize().into_bytes();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn mask(number: &str) -> String {
    let n = number.len();
    if n <= 4 {
        return "*".repeat(n);
    }
    let (head, tail) = if n >= 10 { (3, 4) } else { (1, 2) };
    format!(
        "{}{}{}",
        &number[..head],
        "*".repeat(n - head - tail),
        &number[n - tail..]
    )
}

fn validate_resident_id(n: &str) -> Result<(), String> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = n.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return Err("a resident ID number has 17 digits and a check character".into());
    }
    let (y, m, d) = (&n[6..10], &n[10..12], &n[12..14]);
    let valid_date = chrono::NaiveDate::from_ymd_opt(
        y.parse().unwrap_or(0),
        m.parse().unwrap_or(0),
        d.parse().unwrap_or(0),
    )
    .is_some();
    if !valid_date {
        return Err("the birth date inside the ID number is not a real date".into());
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    if CHECK[(sum % 11) as usize] != b[17] {
        return Err("the ID number's check character is wrong: mistyped?".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A syntactically valid, made-up number (check character computed).
    const VALID: &str = "11010519491231002X";

    #[test]
    fn validates_resident_ids() {
        assert!(IdDocument::parse(IdDocumentKind::ResidentId, VALID, "id_number").is_ok());
        assert!(
            IdDocument::parse(
                IdDocumentKind::ResidentId,
                "11010519491231002x",
                "id_number"
            )
            .is_ok()
        );
        let e = IdDocument::parse(
            IdDocumentKind::ResidentId,
            "110105194912310021",
            "id_number",
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_id_number");
        assert!(
            IdDocument::parse(
                IdDocumentKind::ResidentId,
                "110105194913310021",
                "id_number"
            )
            .is_err()
        );
        assert!(IdDocument::parse(IdDocumentKind::Passport, "E12345678", "id_number").is_ok());
    }

    #[test]
    fn protects_without_keeping_the_number() {
        let p = IdDocument::parse(IdDocumentKind::ResidentId, VALID, "id")
            .unwrap()
            .protect(b"secret");
        assert_eq!(p.masked, "110***********002X");
        assert_eq!(p.hash.len(), 64);
        assert!(!p.hash.contains("1101"));
        let again = IdDocument::parse(IdDocumentKind::ResidentId, &VALID.to_lowercase(), "id")
            .unwrap()
            .protect(b"secret");
        assert_eq!(p.hash, again.hash, "normalisation makes the hash stable");
        let other_key = IdDocument::parse(IdDocumentKind::ResidentId, VALID, "id")
            .unwrap()
            .protect(b"other");
        assert_ne!(p.hash, other_key.hash, "the hash is keyed");
    }
}
