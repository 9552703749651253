//! Fuzz targets for the customer import (plain proptest, run with the unit tests;
//! `PROPTEST_CASES` sets the number of cases).
//!
//! - Arbitrary bytes as a `.csv`/`.tsv`/`.txt` file, and damaged `.xlsx` files: reading
//!   and checking either refuses the file as a whole (a `file` or `header` error with a
//!   code) or reports each bad row by its line and field. Never a panic.
//! - Arbitrary but plausible files (real headers in English or Chinese, cells right,
//!   nearly right or hostile, quoting, line breaks in cells, CRLF, a BOM, GB18030, row
//!   keys and references between rows) through the whole import against a database: the
//!   report's rows and lines match the file, each rejected row is reported with its cells
//!   as written, and the import takes every row, the good rows, or nothing, as asked.

use super::*;
use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

/// Case count: `PROPTEST_CASES` when set, else `default` (kept moderate for CI).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fields a row error may name: the input's fields, the row key, the row itself.
fn known_field(f: &str) -> bool {
    f == "row" || f == "id" || FIELDS.iter().any(|(_, name, _)| *name == f)
}

/// Rows read and the problems of the bad ones, by line.
struct Parsed {
    rows: u64,
    bad: Vec<(u64, Vec<FieldError>)>,
}

/// Pass 1's reading and row checks, without the database (the look-ups against stored
/// customers are the only part left out).
fn parse(path: &Path) -> Result<Parsed, AppError> {
    let (mut src, _, cols) = open_with_headers(path)?;
    let ctx = ValidationContext {
        id_hash_key: b"fuzz-key",
        today: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
    };
    let mut out = Parsed {
        rows: 0,
        bad: Vec::new(),
    };
    loop {
        let chunk = read_chunk(&mut src)?;
        if chunk.is_empty() {
            return Ok(out);
        }
        for c in check_chunk(&cols, &chunk, ctx) {
            out.rows += 1;
            if let Err(errors) = c.result {
                out.bad.push((c.line, errors));
            }
        }
    }
}

/// A refusal of the whole file: a validation error on `file` or `header`, with a code.
fn is_file_refusal(e: &AppError) -> Result<(), TestCaseError> {
    let AppError::Validation(v) = e else {
        return Err(TestCaseError::fail(format!("not a clean refusal: {e:?}")));
    };
    prop_assert!(!v.0.is_empty());
    for f in &v.0 {
        prop_assert!(f.field == "file" || f.field == "header", "{f:?}");
        prop_assert!(!f.code.is_empty() && !f.message.is_empty(), "{f:?}");
    }
    Ok(())
}

/// A clean report: bad rows by increasing line after the header, each with at least one
/// problem naming a known field and a code.
fn is_clean_report(p: &Parsed) -> Result<(), TestCaseError> {
    prop_assert!(p.bad.len() as u64 <= p.rows);
    let mut last = 1;
    for (line, errors) in &p.bad {
        prop_assert!(*line > last, "line {} after {}", line, last);
        last = *line;
        prop_assert!(!errors.is_empty());
        for e in errors {
            prop_assert!(known_field(&e.field), "{e:?}");
            prop_assert!(!e.code.is_empty() && !e.message.is_empty(), "{e:?}");
        }
    }
    Ok(())
}

fn write_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A small valid workbook to damage.
fn workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["姓名", "手机", "生日", "标签"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "张伟").unwrap();
    sheet.write_number(1, 1, 13800138000.0).unwrap();
    sheet.write_string(1, 2, "1988-05-17").unwrap();
    sheet.write_string(1, 3, "常客;辣").unwrap();
    sheet.write_string(2, 0, "").unwrap();
    sheet.write_string(2, 1, "12345").unwrap();
    book.save_to_buffer().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn arbitrary_bytes_are_refused_or_reported(
        head in prop_oneof![
            Just(Vec::new()),
            Just(b"name,phone,birthday,tags\n".to_vec()),
            Just("\u{feff}姓名,手机,生日\r\n".as_bytes().to_vec()),
            Just(b"\xff\xfen\x00a\x00m\x00e\x00\n\x00".to_vec()),
        ],
        body in prop_oneof![
            // Raw bytes, CSV structure and multi-byte lead bytes more often than chance.
            proptest::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    proptest::sample::select(b",;\t\"\r\n\xe5\xbc\xa0\x81\x30".to_vec()),
                ],
                0..2048,
            ),
            // Text that gets past the encoding checks to the rows.
            "[a-z0-9 ,;\t\"\r\n@.:/*\\-张王伟男女是否]{0,600}".prop_map(String::into_bytes),
        ],
        ext in proptest::sample::select(vec!["csv", "tsv", "txt"]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = head;
        bytes.extend(body);
        let path = write_file(&dir, &format!("f.{ext}"), &bytes);
        match parse(&path) {
            Ok(p) => is_clean_report(&p)?,
            Err(e) => is_file_refusal(&e)?,
        }
    }

    #[test]
    fn damaged_workbooks_are_refused_or_reported(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = workbook();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "f.xlsx", &bytes);
        match parse(&path) {
            Ok(p) => is_clean_report(&p)?,
            Err(e) => is_file_refusal(&e)?,
        }
    }
}

// ---- Plausible files through the whole import ----

/// What a column of a generated file holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Field(Field),
    Key,
    /// `id_number_masked`: accepted and ignored.
    Masked,
}

/// Row keys and reference targets: few, so that rows refer to each other (and in circles).
const KEYS: [&str; 4] = [
    "0190a000-0000-7000-8000-000000000001",
    "0190a000-0000-7000-8000-000000000002",
    "0190a000-0000-7000-8000-000000000003",
    "0190a000-0000-7000-8000-000000000004",
];

fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just("   ".to_string()),
        Just("'; DROP TABLE customers; --".to_string()),
        Just("<script>alert(1)</script>".to_string()),
        Just("\"quoted\", with a comma".to_string()),
        Just("two\nlines".to_string()),
        Just("crlf\r\nbreak".to_string()),
        Just("nul\u{0}byte".to_string()),
        Just("=HYPERLINK(\"x\")".to_string()),
        Just("x".repeat(2100)),
        "\\PC{0,12}",
        ".{0,12}",
    ]
    .boxed()
}

/// A made-up resident ID number with a correct check character.
fn resident_id() -> impl Strategy<Value = String> {
    ("[0-9]{6}", 1950i32..2005, 1u32..13, 1u32..29, "[0-9]{3}").prop_map(
        |(region, y, m, d, seq)| {
            let body = format!("{region}{y:04}{m:02}{d:02}{seq}");
            const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
            let sum: u32 = body
                .bytes()
                .zip(WEIGHTS)
                .map(|(c, w)| u32::from(c - b'0') * w)
                .sum();
            let check = b"10X98765432"[(sum % 11) as usize] as char;
            format!("{body}{check}")
        },
    )
}

fn words() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(
            proptest::sample::select(vec!["常客", "辣", "VIP", "不吃香菜", "素", " 海鲜 "]),
            0..5,
        ),
        proptest::sample::select(vec![";", "；", "、", "|"]),
    )
        .prop_map(|(w, sep)| w.join(sep))
}

fn cell(kind: Kind) -> BoxedStrategy<String> {
    let s = |v: &[&'static str]| proptest::sample::select(v.to_vec()).prop_map(String::from);
    let plausible: BoxedStrategy<String> = match kind {
        Kind::Field(Field::Name) => s(&["张伟", "王芳", "Li Lei", "欧阳娜娜", "A"]).boxed(),
        Kind::Field(Field::Phone | Field::WorkPhone) => prop_oneof![
            "1[3-9][0-9]{9}",
            "\\+86 1[3-9][0-9] [0-9]{4} [0-9]{4}",
            "[0-9]{1,10}",
            Just("phone".to_string()),
        ]
        .boxed(),
        Kind::Field(Field::Gender) => s(&["男", "女", "male", "female", "x"]).boxed(),
        Kind::Field(Field::Birthday) => prop_oneof![
            "(19[5-9][0-9]|200[0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])",
            "19[5-9][0-9]/[1-9]/[1-9]",
            s(&["2099-01-01", "2023-02-30", "19900517", "生日", "0000-00-00"]),
        ]
        .boxed(),
        Kind::Field(Field::Email) => prop_oneof![
            "[a-z]{1,8}@example\\.com",
            s(&["no-at-sign", "@", "a@b", "张@例子.中国"]),
        ]
        .boxed(),
        Kind::Field(Field::IdNumber) => prop_oneof![
            resident_id(),
            "[0-9]{17}[0-9X]",
            s(&["11010519491231002X", "123"]),
        ]
        .boxed(),
        Kind::Field(Field::Tags | Field::Tastes | Field::Allergies) => words().boxed(),
        Kind::Field(Field::MarketingConsent) => {
            s(&["是", "否", "yes", "NO", "1", "同意", "perhaps"]).boxed()
        }
        Kind::Field(Field::LifecycleStage) => {
            s(&["new", "active", "dormant", "lost", "bogus"]).boxed()
        }
        Kind::Field(Field::ReferredBy | Field::OrganizationId) | Kind::Key => prop_oneof![
            proptest::sample::select(KEYS.to_vec()).prop_map(String::from),
            Just(uuid::Uuid::nil().to_string()),
            Just("not-a-uuid".to_string()),
        ]
        .boxed(),
        Kind::Field(_) | Kind::Masked => "\\PC{0,30}".boxed(),
    };
    prop_oneof![8 => plausible, 2 => Just(String::new()), 1 => hostile_text()].boxed()
}

/// The columns of a file: a name column (in English or Chinese) and some others, in any
/// order, each header as an English name or one of its Chinese aliases.
fn columns() -> impl Strategy<Value = Vec<(String, Kind)>> {
    let others = vec![
        Kind::Field(Field::Phone),
        Kind::Field(Field::Gender),
        Kind::Field(Field::Birthday),
        Kind::Field(Field::Email),
        Kind::Field(Field::IdNumber),
        Kind::Field(Field::Tags),
        Kind::Field(Field::Tastes),
        Kind::Field(Field::MarketingConsent),
        Kind::Field(Field::LifecycleStage),
        Kind::Field(Field::Notes),
        Kind::Field(Field::Company),
        Kind::Field(Field::ReferredBy),
        Kind::Field(Field::OrganizationId),
        Kind::Key,
        Kind::Masked,
    ];
    (
        proptest::sample::subsequence(others.clone(), 0..=others.len()),
        any::<prop::sample::Index>(),
        proptest::collection::vec(any::<prop::sample::Index>(), others.len() + 1),
    )
        .prop_map(|(mut kinds, at, alias)| {
            kinds.insert(at.index(kinds.len() + 1), Kind::Field(Field::Name));
            kinds
                .into_iter()
                .zip(alias)
                .map(|(k, a)| {
                    let header = match k {
                        Kind::Field(f) => {
                            let (_, name, aliases) = FIELDS[f as usize];
                            let all: Vec<&str> = std::iter::once(name)
                                .chain(aliases.iter().copied())
                                .collect();
                            all[a.index(all.len())].to_string()
                        }
                        Kind::Key => ["id", "客户编号"][a.index(2)].to_string(),
                        Kind::Masked => "id_number_masked".to_string(),
                    };
                    (header, k)
                })
                .collect()
        })
}

/// A generated file and what it should read back as.
#[derive(Debug)]
struct PlausibleFile {
    bytes: Vec<u8>,
    /// (line, cells) of each non-blank data row, in order.
    rows: Vec<(u64, Vec<String>)>,
}

/// Line breaks as the import counts them: `\r\n`, `\n` and a lone `\r`.
fn line_breaks(b: &[u8]) -> u64 {
    let mut n = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')) {
            n += 1;
        }
    }
    n
}

fn plausible_file() -> impl Strategy<Value = PlausibleFile> {
    columns()
        .prop_flat_map(|cols| {
            let row = cols.iter().map(|(_, k)| cell(*k)).collect::<Vec<_>>();
            (
                Just(cols),
                proptest::collection::vec(
                    (
                        row,
                        // Now and then a cell under no header, or a short row.
                        proptest::option::weighted(0.1, hostile_text()),
                        proptest::option::weighted(0.1, any::<prop::sample::Index>()),
                    ),
                    0..10,
                ),
                any::<bool>(),
                proptest::sample::select(vec!["utf-8", "utf-8-bom", "gb18030"]),
            )
        })
        .prop_map(|(cols, rows, crlf, encoding)| {
            let mut w = csv::WriterBuilder::new()
                .flexible(true)
                .terminator(if crlf {
                    csv::Terminator::CRLF
                } else {
                    csv::Terminator::Any(b'\n')
                })
                .from_writer(Vec::new());
            w.write_record(cols.iter().map(|(h, _)| h.as_str()))
                .unwrap();
            let mut expect = Vec::new();
            for (mut cells, extra, short) in rows {
                if let Some(x) = extra {
                    cells.push(x);
                }
                if let Some(s) = short {
                    cells.truncate(s.index(cells.len()).max(1));
                }
                w.flush().unwrap();
                let line = line_breaks(w.get_ref()) + 1;
                w.write_record(&cells).unwrap();
                if cells.iter().any(|c| !c.trim().is_empty()) {
                    expect.push((line, cells));
                }
            }
            let text = w.into_inner().unwrap();
            let bytes = match encoding {
                "utf-8-bom" => [b"\xef\xbb\xbf".as_slice(), &text].concat(),
                "gb18030" => {
                    let s = String::from_utf8(text).unwrap();
                    let (b, _, unmappable) = encoding_rs::GB18030.encode(&s);
                    // Kept only when it reads back as GB18030: bytes that happen to be
                    // valid UTF-8 would (rightly) be read as UTF-8.
                    let misread = std::str::from_utf8(&b).is_ok() && *b != *s.as_bytes();
                    if unmappable || misread {
                        s.into_bytes()
                    } else {
                        b.into_owned()
                    }
                }
                _ => text,
            };
            PlausibleFile {
                bytes,
                rows: expect,
            }
        })
}

/// The whole import (both passes, the database) on plausible files, all or nothing and
/// with `skip_bad_rows`, one database across the cases (so earlier cases' phones and ID
/// numbers clash with later ones, as in real use).
#[test]
fn plausible_files_import_or_report_every_bad_row() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (dir, app, actor) = rt.block_on(test_support::app());
    let mut runner = TestRunner::new(ProptestConfig::with_cases(cases(64)));
    let n = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&(plausible_file(), any::<bool>()), |(file, skip)| {
            let k = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = write_file(&dir, &format!("f{k}.csv"), &file.bytes);
            let before = rt
                .block_on(app.storage.count_customers(actor.tenant_id))
                .unwrap();
            let report = rt
                .block_on(app.import_customers(
                    &actor,
                    &path,
                    ImportOptions {
                        skip_bad_rows: skip,
                    },
                    &|_| {},
                ))
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let after = rt
                .block_on(app.storage.count_customers(actor.tenant_id))
                .unwrap();
            // Every non-blank row was read, none lost or invented.
            prop_assert_eq!(report.rows, file.rows.len() as u64);
            let lines: Vec<u64> = file.rows.iter().map(|r| r.0).collect();
            for e in &report.rejected {
                prop_assert!(lines.contains(&e.line), "{e:?} not a row's line {lines:?}");
                prop_assert!(known_field(&e.field), "{e:?}");
                prop_assert!(!e.code.is_empty() && !e.message.is_empty(), "{e:?}");
            }
            // One entry per rejected row, by line, with its cells as they were in the file.
            let mut rejected: Vec<u64> = report.rejected.iter().map(|e| e.line).collect();
            prop_assert!(
                rejected.windows(2).all(|w| w[0] <= w[1]),
                "by line: {rejected:?}"
            );
            rejected.dedup();
            let listed: Vec<u64> = report.rejected_lines.iter().map(|r| r.0).collect();
            prop_assert_eq!(&listed, &rejected);
            prop_assert!(listed.windows(2).all(|w| w[0] < w[1]));
            for (line, cells) in &report.rejected_lines {
                let row = file.rows.iter().find(|r| r.0 == *line).unwrap();
                prop_assert_eq!(cells, &row.1);
            }
            // All, the good rows, or nothing.
            let bad = report.rejected_lines.len() as u64;
            let expected = if skip || bad == 0 {
                report.rows - bad
            } else {
                0
            };
            prop_assert_eq!(report.imported, expected);
            prop_assert_eq!(after - before, expected as i64);
            Ok(())
        })
        .unwrap();
}
