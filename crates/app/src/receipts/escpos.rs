//! ESC/POS bytes for thermal printers in Chinese (GB18030) mode, from the text layout.
//!
//! Widths are the printer's: an ASCII byte prints in one column, a two-byte GB18030
//! character in two. Characters the printer's font has no glyph for (anything needing
//! a four-byte GB18030 sequence: emoji, rare scripts) print as "?", so they can neither
//! garble the bytes that follow nor shift the columns.

use super::text::{Face, Style, blocks, clean_control};
use super::{Paper, ReceiptDoc};

const ESC: u8 = 0x1B;
const FS: u8 = 0x1C;
const GS: u8 = 0x1D;
const LF: u8 = 0x0A;

/// ESC @: reset the printer.
pub(super) const INIT: [u8; 2] = [ESC, b'@'];
/// FS &: Chinese (two-byte character) mode.
pub(super) const CHINESE: [u8; 2] = [FS, b'&'];
/// GS V 66 0: feed to the cutter and cut, leaving a hinge.
pub(super) const PARTIAL_CUT: [u8; 4] = [GS, b'V', 66, 0];

/// A thermal printer's font in Chinese mode.
pub(super) const PRINTER: Face = Face {
    width: printer_width,
    clean: printer_clean,
};

/// Bytes of `c` in GB18030 (1, 2 or 4).
fn gb_len(c: char) -> usize {
    let mut buf = [0u8; 4];
    let (bytes, _, _) = encoding_rs::GB18030.encode(c.encode_utf8(&mut buf));
    bytes.len()
}

fn printer_clean(c: char) -> char {
    match clean_control(c) {
        // U+00A5 needs four bytes in GB18030; the full-width yen sign is in GB2312.
        '¥' => '￥',
        c if gb_len(c) <= 2 => c,
        _ => '?',
    }
}

/// Columns on paper: one per ASCII byte, two per double-byte character.
fn printer_width(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

fn push_line(out: &mut Vec<u8>, line: &str) {
    let (bytes, _, _) = encoding_rs::GB18030.encode(line.trim_end());
    out.extend_from_slice(&bytes);
    out.push(LF);
}

/// The receipt as ESC/POS: reset, Chinese mode, GB18030 text laid out for the paper,
/// title and amount due bold and double-sized, then feed and partial cut.
pub fn render_escpos(doc: &ReceiptDoc, paper: Paper) -> Vec<u8> {
    let cols = paper.columns();
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&INIT);
    out.extend_from_slice(&CHINESE);
    for block in blocks(doc) {
        match block.style {
            Style::Normal => {
                for l in block.lines(PRINTER, cols) {
                    push_line(&mut out, &l);
                }
            }
            Style::Bold => {
                out.extend_from_slice(&[ESC, b'E', 1]);
                for l in block.lines(PRINTER, cols) {
                    push_line(&mut out, &l);
                }
                out.extend_from_slice(&[ESC, b'E', 0]);
            }
            Style::Big => {
                // Double width halves the columns: use it only when the block still
                // takes a single line, else double height alone.
                let half = block.lines(PRINTER, cols / 2);
                let (gs, fs, lines) = if half.len() == 1 {
                    (0x11, 0x0C, half)
                } else {
                    (0x01, 0x08, block.lines(PRINTER, cols))
                };
                // GS ! sizes single-byte characters, FS ! the Chinese ones.
                out.extend_from_slice(&[ESC, b'E', 1, GS, b'!', gs, FS, b'!', fs]);
                for l in lines {
                    push_line(&mut out, &l);
                }
                out.extend_from_slice(&[GS, b'!', 0, FS, b'!', 0, ESC, b'E', 0]);
            }
        }
    }
    // ESC d 3: a little paper past the last line before the cutter.
    out.extend_from_slice(&[ESC, b'd', 3]);
    out.extend_from_slice(&PARTIAL_CUT);
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::sample;
    use super::super::{Paper, ReceiptKind};
    use super::*;

    fn gb(s: &str) -> Vec<u8> {
        encoding_rs::GB18030.encode(s).0.into_owned()
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn count(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).filter(|w| *w == needle).count()
    }

    #[test]
    fn starts_with_init_and_chinese_mode_and_ends_with_cut() {
        for paper in [Paper::Mm58, Paper::Mm80] {
            let bytes = render_escpos(&sample(), paper);
            assert!(bytes.starts_with(&[0x1B, 0x40, 0x1C, 0x26]));
            assert!(bytes.ends_with(&[0x1D, 0x56, 0x42, 0x00]));
            assert_eq!(gb("合计"), [0xBA, 0xCF, 0xBC, 0xC6]);
            assert!(contains(&bytes, &gb("合计")));
            assert!(contains(&bytes, &gb("招牌红烧肉")));
            assert!(contains(&bytes, &gb("谢谢惠顾")));
            // The amount due, bold and double-sized, in the printer's yen sign.
            let due = [
                &[0x1B, b'E', 1, 0x1D, b'!', 0x11, 0x1C, b'!', 0x0C][..],
                &gb("应付"),
            ]
            .concat();
            assert!(contains(&bytes, &due), "{paper:?}");
            assert!(contains(&bytes, &gb("￥226.00")));
            // The text is GB18030, not UTF-8.
            assert!(!contains(&bytes, "合计".as_bytes()));
        }
    }

    #[test]
    fn lines_fit_the_paper_in_printer_columns() {
        let mut doc = sample();
        doc.kind = ReceiptKind::Refund;
        doc.lines[1].name = "Très épicé 🌶️ chicken ¥ test — “quoted” ×2 ÷ ①".into();
        for paper in [Paper::Mm58, Paper::Mm80] {
            for b in blocks(&doc) {
                let cols =
                    if b.style == Style::Big && b.lines(PRINTER, paper.columns() / 2).len() == 1 {
                        paper.columns() / 2
                    } else {
                        paper.columns()
                    };
                for l in b.lines(PRINTER, cols) {
                    assert_eq!(printer_width(&l), cols, "{paper:?} {l:?}");
                    // Every character is one or two bytes: the width is the byte count.
                    assert_eq!(gb(&l).len(), cols, "{paper:?} {l:?}");
                }
            }
        }
    }

    #[test]
    fn unencodable_characters_and_control_bytes_are_neutralised() {
        let mut doc = sample();
        doc.lines[0].name = "辣子鸡🌶🔥\u{1b}@\u{1d}V\u{0}".into();
        let bytes = render_escpos(&doc, Paper::Mm58);
        // The emoji became "?", the ESC and GS from the name spaces: one reset only.
        assert!(contains(&bytes, &gb("辣子鸡?? @ V")));
        assert_eq!(count(&bytes, &INIT), 1);
        assert_eq!(count(&bytes, &PARTIAL_CUT), 1);
        // No four-byte GB18030 sequence (second byte 0x30..=0x39) anywhere.
        let text: Vec<u8> = bytes.clone();
        let mut i = 0;
        while i < text.len() {
            if text[i] >= 0x81 && i + 1 < text.len() {
                assert!(
                    !(0x30..=0x39).contains(&text[i + 1]),
                    "4-byte sequence at {i}"
                );
                i += 2;
            } else {
                i += 1;
            }
        }
    }

    #[test]
    fn reversal_prints_its_banner_big() {
        let mut doc = sample();
        doc.kind = ReceiptKind::Reversal;
        let bytes = render_escpos(&doc, Paper::Mm80);
        let banner = [&[0x1B, b'E', 1, 0x1D, b'!'][..]].concat();
        assert!(contains(&bytes, &banner));
        assert!(contains(&bytes, &gb("反结账 / REVERSAL")));
        assert!(contains(&bytes, &gb("-￥226.00")));
    }
}
