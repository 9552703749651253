//! Customer import from a CSV or Excel (.xlsx) file.
//!
//! # The file
//!
//! - The first row holds the headers: the [`CustomerInput`] field names (`name`, `phone`,
//!   `gender`, `birthday`, ...) or the Chinese labels staff type (姓名, 手机/手机号/电话,
//!   性别, 生日, ...; see [`Field`]'s table). Header case, spaces and a trailing `*` are
//!   ignored. An unknown header, a column named twice or a missing name column refuses the
//!   whole file before any row is read ([`AppError::Validation`], field `header`).
//! - Lists (`tags`, `tastes`, `favourite_dishes`, `allergies`) are split on `;`, `；`,
//!   `、` and `|`. `marketing_consent` takes yes/no, true/false, 1/0, y/n, 是/否, 同意/不同意.
//! - CSV files may be UTF-8 (with or without a BOM), UTF-16 with a BOM, or GB18030/GBK as
//!   Chinese Excel saves them (detected: the start of the file is not valid UTF-8). The
//!   delimiter is `,`, or tab or `;` when the header line uses those instead.
//! - Excel files: the first sheet, its first non-empty row being the headers. Numbers
//!   written as numbers (phones) and date cells (birthdays) are converted back to text.
//! - An `id` column is optional: the row's key inside the file (the export writes the
//!   customer id there). `organization_id` and `referred_by` may name another row of the
//!   file by that key, or an existing customer by id. Imported customers always get new
//!   ids; references between rows are rewritten to them.
//! - `id_number_masked` (written by the export) and `line`, `field`, `reason` (written by
//!   [`write_rejects_csv`]) are accepted and ignored, so that an export or a corrected
//!   rejects file imports as it is.
//!
//! # Checks
//!
//! Every row is validated with [`CustomerInput::validate`]; every problem of every row is
//! reported with its physical line (the header is line 1), field and reason. A phone or ID
//! number repeated within the file rejects the later rows (the message names the first
//! line); one already held by an existing customer rejects the row (the message names that
//! customer's id). References must name a row of the file or an existing customer.
//!
//! # Atomicity and speed
//!
//! Two passes over the file: the first validates everything and checks uniqueness against
//! the database in batches; the second validates again and inserts through one
//! [`patron_store::CustomerImport`] transaction, in multi-row INSERTs. Nothing is visible
//! until the commit and a failure rolls everything back. Validation runs on all cores.
//! Memory holds the phones and ID hashes of the file (for duplicates), not its rows.
//! The per-row work of both passes runs on a reader thread (validation on all cores)
//! that feeds the async task through a small channel, so it overlaps the database work.
//! A conflicting customer created by someone else between the two passes fails the commit
//! with [`AppError::Conflict`] and nothing is imported.

use crate::{Actor, App, AppError, new_uuid, now};
use csv::StringRecord;
use patron_domain::customer::{Customer, CustomerInput, CustomerProfile, ValidationContext};
use patron_domain::ids::CustomerId;
use patron_domain::permissions::Permission;
use patron_domain::{FieldError, ValidationErrors};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use uuid::Uuid;

/// How to treat bad rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// `false` (default): if any row is bad nothing is imported and the report lists every
    /// problem. `true`: the good rows are imported and the bad ones reported.
    pub skip_bad_rows: bool,
}

/// Which pass the import is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportPhase {
    /// First pass: reading and checking every row (total unknown for CSV).
    Validating,
    /// Second pass: writing the good rows (total known).
    Inserting,
}

/// Reported every few thousand rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportProgress {
    pub phase: ImportPhase,
    /// Rows done in this phase.
    pub done: u64,
    /// Rows this phase will handle, when known.
    pub total: Option<u64>,
}

/// One problem with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Physical line in the file where the row starts (the header is line 1); for Excel,
    /// the sheet's row number.
    pub line: u64,
    /// The field's API name (`phone`, `birthday`...), or `row` for the row as a whole.
    pub field: String,
    /// Stable machine code (`invalid_phone`, `duplicate_in_file`, `phone_in_use`...).
    pub code: &'static str,
    /// A sentence for a person.
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Data rows read (blank rows are not counted).
    pub rows: u64,
    /// Customers created: 0 when there were bad rows and `skip_bad_rows` was off.
    pub imported: u64,
    /// Every problem, by line.
    pub rejected: Vec<RowError>,
    /// The bad rows as they were in the file (line, cells), by line: one per bad row.
    pub rejected_lines: Vec<(u64, Vec<String>)>,
    /// The header row as it was in the file.
    pub headers: Vec<String>,
}

/// Rows validated and written per step (also the progress granularity).
const CHUNK: usize = 8192;
/// The first bytes looked at to tell UTF-8 from GB18030.
const SNIFF: usize = 1 << 20;

/// Writes the rejected rows as a UTF-8 CSV (with a BOM, for Excel): the file's columns as
/// they were, then `line`, `field` and `reason` (several problems of one row joined by
/// "; "). Corrected, it can be imported again as it is.
pub fn write_rejects_csv(report: &ImportReport, path: &Path) -> io::Result<()> {
    let mut out = io::BufWriter::new(File::create(path)?);
    io::Write::write_all(&mut out, "\u{feff}".as_bytes())?;
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
    let width = report.headers.len();
    let mut header: Vec<&str> = report.headers.iter().map(String::as_str).collect();
    header.extend(["line", "field", "reason"]);
    w.write_record(&header)?;
    let mut by_line: HashMap<u64, Vec<&RowError>> = HashMap::new();
    for e in &report.rejected {
        by_line.entry(e.line).or_default().push(e);
    }
    for (line, cells) in &report.rejected_lines {
        let errors = by_line.get(line).map(Vec::as_slice).unwrap_or_default();
        let mut record: Vec<String> = cells.clone();
        record.resize(record.len().max(width), String::new());
        record.push(line.to_string());
        record.push(dedup_join(errors.iter().map(|e| e.field.as_str())));
        record.push(
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
        );
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

fn dedup_join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for i in items {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    seen.join("; ")
}

// ---------------------------------------------------------------------------------------
// Columns

/// The importable fields: the [`CustomerInput`] fields, in the export's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    Name,
    Phone,
    Gender,
    Birthday,
    AgeBand,
    Nationality,
    CustomerType,
    Industry,
    Title,
    Company,
    WorkPhone,
    CreditRating,
    IdDocumentKind,
    IdNumber,
    Email,
    Address,
    OrganizationId,
    AcquisitionSource,
    ReferredBy,
    MarketingConsent,
    MarketingConsentSource,
    FavouriteDishes,
    Tastes,
    SeatPreference,
    Allergies,
    Tags,
    Notes,
    LifecycleStage,
    ChurnReason,
    ChurnNote,
}

/// Field, API name, accepted aliases (compared after [`normalise_header`]).
const FIELDS: &[(Field, &str, &[&str])] = &[
    (
        Field::Name,
        "name",
        &["姓名", "名字", "客户姓名", "客户名称", "名称"],
    ),
    (
        Field::Phone,
        "phone",
        &[
            "手机",
            "手机号",
            "手机号码",
            "电话",
            "电话号码",
            "联系电话",
            "mobile",
        ],
    ),
    (Field::Gender, "gender", &["性别"]),
    (Field::Birthday, "birthday", &["生日", "出生日期"]),
    (Field::AgeBand, "age_band", &["年龄段"]),
    (Field::Nationality, "nationality", &["国籍"]),
    (Field::CustomerType, "customer_type", &["客户类型"]),
    (Field::Industry, "industry", &["行业"]),
    (Field::Title, "title", &["职位", "职务", "头衔"]),
    (Field::Company, "company", &["公司", "工作单位"]),
    (
        Field::WorkPhone,
        "work_phone",
        &["工作电话", "办公电话", "单位电话"],
    ),
    (
        Field::CreditRating,
        "credit_rating",
        &["信用等级", "信用评级"],
    ),
    (Field::IdDocumentKind, "id_document_kind", &["证件类型"]),
    (
        Field::IdNumber,
        "id_number",
        &["身份证号", "身份证", "身份证号码", "证件号", "证件号码"],
    ),
    (
        Field::Email,
        "email",
        &["邮箱", "电子邮箱", "电子邮件", "邮件", "e_mail"],
    ),
    (Field::Address, "address", &["地址", "住址", "联系地址"]),
    (Field::OrganizationId, "organization_id", &[]),
    (
        Field::AcquisitionSource,
        "acquisition_source",
        &["来源", "客户来源", "获客渠道"],
    ),
    (Field::ReferredBy, "referred_by", &[]),
    (
        Field::MarketingConsent,
        "marketing_consent",
        &["营销同意", "同意营销", "接受营销"],
    ),
    (
        Field::MarketingConsentSource,
        "marketing_consent_source",
        &["营销同意来源"],
    ),
    (
        Field::FavouriteDishes,
        "favourite_dishes",
        &["喜好菜品", "喜欢的菜", "爱吃的菜", "favorite_dishes"],
    ),
    (Field::Tastes, "tastes", &["口味", "口味偏好"]),
    (Field::SeatPreference, "seat_preference", &["座位偏好"]),
    (Field::Allergies, "allergies", &["过敏", "过敏源", "过敏原"]),
    (Field::Tags, "tags", &["标签"]),
    (Field::Notes, "notes", &["备注"]),
    (
        Field::LifecycleStage,
        "lifecycle_stage",
        &["生命周期", "生命周期阶段", "客户阶段"],
    ),
    (Field::ChurnReason, "churn_reason", &["流失原因"]),
    (Field::ChurnNote, "churn_note", &["流失说明", "流失备注"]),
];

/// Headers accepted and ignored: the export's masked ID, the rejects file's columns.
const IGNORED: &[&str] = &["id_number_masked", "line", "field", "reason"];
/// The row key column (see the module documentation).
const KEY: &[&str] = &["id", "客户id", "客户编号"];

impl Field {
    pub(crate) const ALL: [Field; 30] = {
        let mut all = [Field::Name; 30];
        let mut i = 0;
        while i < FIELDS.len() {
            all[i] = FIELDS[i].0;
            i += 1;
        }
        all
    };

    /// The API name, also the CSV header.
    pub(crate) fn name(self) -> &'static str {
        FIELDS[self as usize].1
    }

    /// The field's text in a file, from an input (lists joined by ";").
    pub(crate) fn get(self, i: &CustomerInput) -> String {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        match self {
            Field::Name => s(&i.name),
            Field::Phone => s(&i.phone),
            Field::Gender => s(&i.gender),
            Field::Birthday => s(&i.birthday),
            Field::AgeBand => s(&i.age_band),
            Field::Nationality => s(&i.nationality),
            Field::CustomerType => s(&i.customer_type),
            Field::Industry => s(&i.industry),
            Field::Title => s(&i.title),
            Field::Company => s(&i.company),
            Field::WorkPhone => s(&i.work_phone),
            Field::CreditRating => s(&i.credit_rating),
            Field::IdDocumentKind => s(&i.id_document_kind),
            Field::IdNumber => s(&i.id_number),
            Field::Email => s(&i.email),
            Field::Address => s(&i.address),
            Field::OrganizationId => s(&i.organization_id),
            Field::AcquisitionSource => s(&i.acquisition_source),
            Field::ReferredBy => s(&i.referred_by),
            Field::MarketingConsent => match i.marketing_consent {
                Some(true) => "true".into(),
                Some(false) => "false".into(),
                None => String::new(),
            },
            Field::MarketingConsentSource => s(&i.marketing_consent_source),
            Field::FavouriteDishes => i.favourite_dishes.join(";"),
            Field::Tastes => i.tastes.join(";"),
            Field::SeatPreference => s(&i.seat_preference),
            Field::Allergies => i.allergies.join(";"),
            Field::Tags => i.tags.join(";"),
            Field::Notes => s(&i.notes),
            Field::LifecycleStage => s(&i.lifecycle_stage),
            Field::ChurnReason => s(&i.churn_reason),
            Field::ChurnNote => s(&i.churn_note),
        }
    }

    /// Puts a non-empty cell into the input.
    fn set(self, i: &mut CustomerInput, v: &str) -> Result<(), FieldError> {
        let t = Some(v.to_string());
        match self {
            Field::Name => i.name = t,
            Field::Phone => i.phone = t,
            Field::Gender => i.gender = t,
            Field::Birthday => i.birthday = t,
            Field::AgeBand => i.age_band = t,
            Field::Nationality => i.nationality = t,
            Field::CustomerType => i.customer_type = t,
            Field::Industry => i.industry = t,
            Field::Title => i.title = t,
            Field::Company => i.company = t,
            Field::WorkPhone => i.work_phone = t,
            Field::CreditRating => i.credit_rating = t,
            Field::IdDocumentKind => i.id_document_kind = t,
            Field::IdNumber => i.id_number = t,
            Field::Email => i.email = t,
            Field::Address => i.address = t,
            Field::OrganizationId => i.organization_id = t,
            Field::AcquisitionSource => i.acquisition_source = t,
            Field::ReferredBy => i.referred_by = t,
            Field::MarketingConsent => {
                i.marketing_consent = Some(parse_bool(v).ok_or_else(|| {
                    FieldError::new(
                        self.name(),
                        "invalid_boolean",
                        format!(
                            "“{}” is not yes or no (yes/no, true/false, 1/0, 是/否)",
                            v.trim()
                        ),
                    )
                })?)
            }
            Field::MarketingConsentSource => i.marketing_consent_source = t,
            Field::FavouriteDishes => i.favourite_dishes = split_list(v),
            Field::Tastes => i.tastes = split_list(v),
            Field::SeatPreference => i.seat_preference = t,
            Field::Allergies => i.allergies = split_list(v),
            Field::Tags => i.tags = split_list(v),
            Field::Notes => i.notes = t,
            Field::LifecycleStage => i.lifecycle_stage = t,
            Field::ChurnReason => i.churn_reason = t,
            Field::ChurnNote => i.churn_note = t,
        }
        Ok(())
    }
}

/// What a column of the file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    Field(Field),
    /// The row key (`id`).
    Key,
    /// Accepted and not read.
    Ignored,
    /// A column without a header: must stay empty.
    Unnamed,
}

/// Lower-cases ASCII, drops a BOM, surrounding spaces and a trailing required-marker `*`,
/// and turns inner spaces and dashes into `_`.
fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .trim()
        .trim_end_matches(['*', '＊'])
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Maps the header row to columns, refusing unknown and repeated headers and a file
/// without a name column.
fn map_headers(headers: &[String]) -> Result<Vec<Column>, ValidationErrors> {
    let mut lookup: HashMap<String, Column> = HashMap::new();
    for &(f, name, aliases) in FIELDS {
        lookup.insert(name.into(), Column::Field(f));
        for a in aliases {
            lookup.insert(normalise_header(a), Column::Field(f));
        }
    }
    for k in KEY {
        lookup.insert(normalise_header(k), Column::Key);
    }
    for k in IGNORED {
        lookup.insert((*k).into(), Column::Ignored);
    }
    let mut errors = ValidationErrors::default();
    let mut cols = Vec::with_capacity(headers.len());
    let mut seen: HashMap<Column, &str> = HashMap::new();
    for (n, raw) in headers.iter().enumerate() {
        let norm = normalise_header(raw);
        let col = if norm.is_empty() {
            Column::Unnamed
        } else if let Some(c) = lookup.get(&norm) {
            *c
        } else {
            errors.push(FieldError::new(
                "header",
                "unknown_header",
                format!(
                    "unknown column “{}” (column {}); the columns are: {}, or their Chinese names (姓名, 手机, 性别, 生日...)",
                    raw.trim(),
                    n + 1,
                    FIELDS.iter().map(|f| f.1).collect::<Vec<_>>().join(", ")
                ),
            ));
            Column::Ignored
        };
        if matches!(col, Column::Field(_) | Column::Key) {
            if let Some(first) = seen.get(&col) {
                errors.push(FieldError::new(
                    "header",
                    "duplicate_header",
                    format!(
                        "columns “{}” and “{}” (column {}) are the same field",
                        first.trim(),
                        raw.trim(),
                        n + 1
                    ),
                ));
            } else {
                seen.insert(col, raw);
            }
        }
        cols.push(col);
    }
    if errors.is_empty() && !cols.contains(&Column::Field(Field::Name)) {
        errors.push(FieldError::new(
            "header",
            "missing_header",
            "the file has no name column (name or 姓名)",
        ));
    }
    errors.into_result(cols)
}

/// Splits a list cell on `;`, `；`, `、` and `|`, trimming and dropping empty items.
pub(crate) fn split_list(v: &str) -> Vec<String> {
    v.split([';', '；', '、', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// yes/no, true/false, 1/0, y/n, 是/否, 同意/不同意 (case-insensitive).
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    let t = v.trim();
    const YES: &[&str] = &["yes", "true", "1", "y", "是", "同意", "t"];
    const NO: &[&str] = &["no", "false", "0", "n", "否", "不同意", "f"];
    if YES.iter().any(|y| t.eq_ignore_ascii_case(y)) {
        Some(true)
    } else if NO.iter().any(|n| t.eq_ignore_ascii_case(n)) {
        Some(false)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// One data row of the file.
struct Record {
    line: u64,
    cells: StringRecord,
    /// Excel cells holding an error value (#N/A...): column index and the error's text.
    cell_errors: Vec<(usize, String)>,
}

/// Rows of a CSV or Excel file, header first.
enum Source {
    Csv(Box<csv::Reader<LineIndex<Box<dyn Read + Send>>>>),
    Sheet(std::vec::IntoIter<Record>),
}

fn file_error(path: &Path, code: &'static str, what: impl std::fmt::Display) -> AppError {
    ValidationErrors::single("file", code, format!("{}: {what}", path.display())).into()
}

impl Source {
    fn open(path: &Path) -> Result<Source, AppError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") | Some("txt") | Some("tsv") => Self::open_csv(path),
            Some("xlsx") | Some("xlsm") => Self::open_xlsx(path),
            _ => Err(file_error(
                path,
                "unsupported_format",
                "the file name must end in .csv or .xlsx",
            )),
        }
    }

    fn open_csv(path: &Path) -> Result<Source, AppError> {
        let mut file = File::open(path).map_err(|e| file_error(path, "unreadable", e))?;
        let mut head = Vec::with_capacity(SNIFF.min(64 * 1024));
        (&mut file)
            .take(SNIFF as u64)
            .read_to_end(&mut head)
            .map_err(|e| file_error(path, "unreadable", e))?;
        let complete = head.len() < SNIFF;
        let (encoding, bom) = sniff_encoding(&head, complete);
        let head_rest = head.split_off(bom);
        let delimiter = sniff_delimiter(&head_rest, encoding);
        let raw = io::Cursor::new(head_rest).chain(BufReader::with_capacity(256 * 1024, file));
        let reader: Box<dyn Read + Send> = if encoding == encoding_rs::UTF_8 {
            Box::new(raw)
        } else {
            Box::new(Decoding::new(raw, encoding))
        };
        Ok(Source::Csv(Box::new(
            csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(delimiter)
                .buffer_capacity(256 * 1024)
                .from_reader(LineIndex::new(reader)),
        )))
    }

    fn open_xlsx(path: &Path) -> Result<Source, AppError> {
        // calamine parses untrusted bytes, and a damaged workbook has made it panic (an
        // overflow on a huge cell reference, found by `import::fuzz`): such a file is
        // refused like any other unreadable workbook instead of ending the import.
        std::panic::catch_unwind(|| Self::read_xlsx(path)).unwrap_or_else(|_| {
            Err(file_error(
                path,
                "invalid_xlsx",
                "the workbook is damaged and cannot be read",
            ))
        })
    }

    fn read_xlsx(path: &Path) -> Result<Source, AppError> {
        use calamine::{Data, Reader, Xlsx, open_workbook};
        let mut book: Xlsx<_> =
            open_workbook(path).map_err(|e| file_error(path, "invalid_xlsx", e))?;
        let range = book
            .worksheet_range_at(0)
            .ok_or_else(|| file_error(path, "invalid_xlsx", "the workbook has no sheet"))?
            .map_err(|e| file_error(path, "invalid_xlsx", e))?;
        let first_row = range.start().map(|(r, _)| r as u64).unwrap_or(0);
        let mut records = Vec::with_capacity(range.height());
        for (i, row) in range.rows().enumerate() {
            let mut cells = Vec::with_capacity(row.len());
            let mut cell_errors = Vec::new();
            for (c, d) in row.iter().enumerate() {
                cells.push(match d {
                    Data::Empty => String::new(),
                    Data::String(s) => s.clone(),
                    Data::Int(n) => n.to_string(),
                    Data::Float(f) => float_text(*f),
                    Data::Bool(b) => b.to_string(),
                    Data::DateTime(dt) => {
                        let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
                        if dt.is_datetime() && (h, mi, s) == (0, 0, 0) {
                            format!("{y:04}-{mo:02}-{d:02}")
                        } else if dt.is_datetime() {
                            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
                        } else {
                            float_text(dt.as_f64())
                        }
                    }
                    Data::DateTimeIso(s) => s.strip_suffix("T00:00:00").unwrap_or(s).to_string(),
                    Data::DurationIso(s) => s.clone(),
                    Data::Error(e) => {
                        cell_errors.push((c, e.to_string()));
                        String::new()
                    }
                });
            }
            records.push(Record {
                line: first_row + i as u64 + 1,
                cells: StringRecord::from(cells),
                cell_errors,
            });
        }
        Ok(Source::Sheet(records.into_iter()))
    }

    /// The next row (blank rows included), or `None` at the end.
    fn next(&mut self) -> Result<Option<Record>, AppError> {
        match self {
            Source::Sheet(rows) => Ok(rows.next()),
            Source::Csv(r) => {
                let mut cells = StringRecord::new();
                match r.read_record(&mut cells) {
                    Ok(false) => Ok(None),
                    Ok(true) => {
                        let pos = cells.position().expect("csv records have a position");
                        let line = r.get_mut().line_at(pos.byte()).unwrap_or(pos.line());
                        Ok(Some(Record {
                            line,
                            cells,
                            cell_errors: Vec::new(),
                        }))
                    }
                    Err(e) => Err(csv_error(e)),
                }
            }
        }
    }

    /// Whether the number of rows is known before reading them.
    fn len_hint(&self) -> Option<u64> {
        match self {
            Source::Sheet(rows) => Some(rows.len() as u64),
            Source::Csv(_) => None,
        }
    }
}

fn csv_error(e: csv::Error) -> AppError {
    let line = e.position().map(|p| p.line());
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    let (code, message) = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => (
            "invalid_encoding",
            format!(
                "{at}the text is not valid UTF-8 although the start of the file is; save the whole file as UTF-8 (or GB18030)"
            ),
        ),
        csv::ErrorKind::Io(io) if io.kind() == io::ErrorKind::InvalidData => {
            ("invalid_encoding", format!("{at}{io}"))
        }
        _ => ("unreadable", format!("{at}{e}")),
    };
    ValidationErrors::single("file", code, message).into()
}

/// A number cell as text: whole numbers without ".0" (phones typed as numbers).
fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// The encoding of a CSV file and the length of its BOM. Without a BOM: UTF-8 when the
/// first bytes are valid UTF-8, otherwise GB18030 (a superset of GBK and GB2312, what
/// Chinese Excel writes).
fn sniff_encoding(head: &[u8], complete: bool) -> (&'static encoding_rs::Encoding, usize) {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(head) {
        return (enc, bom);
    }
    match std::str::from_utf8(head) {
        Ok(_) => (encoding_rs::UTF_8, 0),
        // A character cut by the end of the sniffed block is fine.
        Err(e) if !complete && e.error_len().is_none() => (encoding_rs::UTF_8, 0),
        Err(_) => (encoding_rs::GB18030, 0),
    }
}

/// `,` unless the header line has more tabs or semicolons than commas.
fn sniff_delimiter(head: &[u8], encoding: &'static encoding_rs::Encoding) -> u8 {
    let line: Vec<u8> = if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
        let end = head.len().min(8192) & !1;
        let (text, _) = encoding.decode_without_bom_handling(&head[..end]);
        text.lines().next().unwrap_or("").as_bytes().to_vec()
    } else {
        head.split(|b| *b == b'\n').next().unwrap_or(&[]).to_vec()
    };
    let count = |c: u8| line.iter().filter(|b| **b == c).count();
    let (commas, tabs, semis) = (count(b','), count(b'\t'), count(b';'));
    if tabs > commas && tabs >= semis {
        b'\t'
    } else if semis > commas {
        b';'
    } else {
        b','
    }
}

/// Physical line numbers for the CSV reader, whose own count skips blank lines and
/// lags behind with CRLF line ends (Excel's). Remembers where each non-empty line starts
/// in the bytes read so far (the CSV reader's buffer ahead, not the whole file). `\r\n`,
/// `\n` and a lone `\r` each end a line, as for the CSV reader.
struct LineIndex<R> {
    inner: R,
    offset: u64,
    line: u64,
    at_line_start: bool,
    after_cr: bool,
    /// (byte offset, line) of the start of each non-empty line not yet passed.
    starts: std::collections::VecDeque<(u64, u64)>,
}

impl<R> LineIndex<R> {
    fn new(inner: R) -> Self {
        LineIndex {
            inner,
            offset: 0,
            line: 1,
            at_line_start: true,
            after_cr: false,
            starts: Default::default(),
        }
    }

    /// The line of the first non-empty line starting at or after `byte`: where a record
    /// whose parsing began at `byte` really starts (only line ends can come between).
    fn line_at(&mut self, byte: u64) -> Option<u64> {
        while self.starts.front().is_some_and(|(o, _)| *o < byte) {
            self.starts.pop_front();
        }
        self.starts.front().map(|(_, l)| *l)
    }
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.line += 1;
                    self.at_line_start = true;
                    self.after_cr = b == b'\r';
                }
                _ => {
                    self.after_cr = false;
                    if self.at_line_start {
                        self.starts.push_back((self.offset + i as u64, self.line));
                        self.at_line_start = false;
                    }
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A reader that decodes another encoding into UTF-8 as it goes, failing on malformed
/// input rather than inventing characters.
struct Decoding<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    name: &'static str,
    raw: Box<[u8]>,
    raw_start: usize,
    raw_end: usize,
    raw_offset: u64,
    eof: bool,
    done: bool,
    out: Box<[u8]>,
    out_start: usize,
    out_end: usize,
}

impl<R: Read> Decoding<R> {
    fn new(inner: R, encoding: &'static encoding_rs::Encoding) -> Self {
        Decoding {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            name: encoding.name(),
            raw: vec![0; 64 * 1024].into_boxed_slice(),
            raw_start: 0,
            raw_end: 0,
            raw_offset: 0,
            eof: false,
            done: false,
            out: vec![0; 128 * 1024].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
        }
    }
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = buf.len().min(self.out_end - self.out_start);
                buf[..n].copy_from_slice(&self.out[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.raw_start == self.raw_end && !self.eof {
                self.raw_offset += self.raw_end as u64;
                self.raw_start = 0;
                self.raw_end = self.inner.read(&mut self.raw)?;
                self.eof = self.raw_end == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.raw[self.raw_start..self.raw_end],
                &mut self.out,
                self.eof,
            );
            self.raw_start += read;
            self.out_start = 0;
            self.out_end = written;
            match result {
                encoding_rs::DecoderResult::InputEmpty => self.done = self.eof,
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the file is neither UTF-8 nor {} (bad bytes near byte {}); save it as UTF-8",
                            self.name,
                            self.raw_offset + self.raw_start as u64
                        ),
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Checking rows

/// A row turned into a profile, or its problems.
struct Checked {
    line: u64,
    key: Option<Uuid>,
    result: Result<CustomerProfile, Vec<FieldError>>,
}

/// Reads one row into an input and validates it, collecting every problem.
fn check_row(cols: &[Column], r: &Record, ctx: ValidationContext<'_>) -> Checked {
    let mut input = CustomerInput::default();
    let mut errors: Vec<FieldError> = Vec::new();
    let mut key = None;
    for (i, cell) in r.cells.iter().enumerate() {
        let v = cell.trim();
        if v.is_empty() {
            continue;
        }
        match cols.get(i).copied().unwrap_or(Column::Unnamed) {
            Column::Field(f) => {
                if let Err(e) = f.set(&mut input, v) {
                    errors.push(e);
                }
            }
            Column::Key => match Uuid::parse_str(v) {
                Ok(u) => key = Some(u),
                Err(_) => errors.push(FieldError::new(
                    "id",
                    "invalid_id",
                    format!(
                        "“{v}” is not a customer id (the id column takes the ids an export writes)"
                    ),
                )),
            },
            Column::Ignored => {}
            Column::Unnamed => errors.push(FieldError::new(
                "row",
                "unexpected_value",
                format!("column {} has no header but holds “{v}”", i + 1),
            )),
        }
    }
    for (i, what) in &r.cell_errors {
        let field = match cols.get(*i) {
            Some(Column::Field(f)) => f.name(),
            _ => "row",
        };
        errors.push(FieldError::new(
            field,
            "cell_error",
            format!("the cell holds the Excel error {what}"),
        ));
    }
    let result = match input.validate(ctx, None) {
        Ok(p) if errors.is_empty() => Ok(p),
        Ok(_) => Err(errors),
        Err(v) => {
            // Problems of reading a cell come first, then the validation's.
            errors.extend(v.0);
            Err(errors)
        }
    };
    Checked {
        line: r.line,
        key,
        result,
    }
}

fn cells_of(r: &Record) -> Vec<String> {
    r.cells.iter().map(String::from).collect()
}

fn is_blank(r: &Record) -> bool {
    r.cells.iter().all(|c| c.trim().is_empty()) && r.cell_errors.is_empty()
}

/// Checks a chunk of rows on all cores.
fn check_chunk(cols: &[Column], rows: &[Record], ctx: ValidationContext<'_>) -> Vec<Checked> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(16);
    if threads <= 1 || rows.len() < 256 {
        return rows.iter().map(|r| check_row(cols, r, ctx)).collect();
    }
    let per = rows.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|r| check_row(cols, r, ctx))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("row validation does not panic"))
            .collect()
    })
}

/// Reads up to `CHUNK` non-blank rows.
fn read_chunk(src: &mut Source) -> Result<Vec<Record>, AppError> {
    let mut rows = Vec::with_capacity(CHUNK);
    while rows.len() < CHUNK {
        match src.next()? {
            None => break,
            Some(r) if is_blank(&r) => {}
            Some(r) => rows.push(r),
        }
    }
    Ok(rows)
}

/// Opens the file and reads and maps its header row.
fn open_with_headers(path: &Path) -> Result<(Source, Vec<String>, Vec<Column>), AppError> {
    let mut src = Source::open(path)?;
    let headers = loop {
        match src.next()? {
            None => {
                return Err(file_error(path, "empty_file", "the file has no header row"));
            }
            Some(r) if is_blank(&r) => {}
            Some(r) => break r.cells.iter().map(String::from).collect::<Vec<String>>(),
        }
    };
    let cols = map_headers(&headers)?;
    Ok((src, headers, cols))
}

/// What the first pass learns.
#[derive(Default)]
struct Pass1 {
    rows: u64,
    errors: Vec<RowError>,
    bad_lines: HashSet<u64>,
    /// The cells of the bad rows, for the report.
    bad: HashMap<u64, Vec<String>>,
    /// The cells of the rows with references, which are checked after the whole file.
    ref_cells: HashMap<u64, Vec<String>>,
    /// First line of each phone / ID hash.
    phones: HashMap<String, u64>,
    id_hashes: HashMap<String, u64>,
    /// Line of each row key.
    keys: HashMap<Uuid, u64>,
    /// (line, field, target) of every reference.
    refs: Vec<(u64, &'static str, Uuid)>,
    /// Waiting for the batched look-up against existing customers.
    pending_phones: Vec<(String, u64)>,
    pending_ids: Vec<(String, u64, String)>,
    /// The tenant had no customers when the import started: no look-ups needed.
    no_customers: bool,
}

impl Pass1 {
    /// Records a checked row: its problems, its phone, ID hash, key and references.
    fn add(&mut self, c: Checked, r: &Record) {
        self.rows += 1;
        if let Some(k) = c.key {
            if let Some(&first) = self.keys.get(&k) {
                self.reject(
                    c.line,
                    "id",
                    "duplicate_in_file",
                    format!("id {k} is also on line {first}"),
                );
            } else {
                self.keys.insert(k, c.line);
            }
        }
        let profile = match c.result {
            Ok(p) => p,
            Err(errors) => {
                for e in errors {
                    self.reject(c.line, e.field, e.code, e.message);
                }
                return;
            }
        };
        if let Some(phone) = &profile.phone {
            if let Some(&first) = self.phones.get(phone.as_str()) {
                self.reject(
                    c.line,
                    "phone",
                    "duplicate_in_file",
                    format!("phone {phone} is also on line {first}"),
                );
            } else {
                self.phones.insert(phone.as_str().to_string(), c.line);
                self.pending_phones
                    .push((phone.as_str().to_string(), c.line));
            }
        }
        if let Some(doc) = &profile.id_document {
            if let Some(&first) = self.id_hashes.get(&doc.hash) {
                self.reject(
                    c.line,
                    "id_number",
                    "duplicate_in_file",
                    format!("ID number {} is also on line {first}", doc.masked),
                );
            } else {
                self.id_hashes.insert(doc.hash.clone(), c.line);
                self.pending_ids
                    .push((doc.hash.clone(), c.line, doc.masked.clone()));
            }
        }
        for (field, target) in [
            ("organization_id", profile.organization_id),
            ("referred_by", profile.referred_by),
        ] {
            if let Some(t) = target {
                self.refs.push((c.line, field, t.0));
                self.ref_cells.insert(c.line, cells_of(r));
            }
        }
    }

    fn reject(&mut self, line: u64, field: impl Into<String>, code: &'static str, message: String) {
        self.bad_lines.insert(line);
        self.errors.push(RowError {
            line,
            field: field.into(),
            code,
            message,
        });
    }
}

/// The rows of a pass, read and checked on a thread of their own (and validated on all
/// cores) while the async task talks to the database. At most a few chunks wait in the
/// channel; dropping the receiver stops the thread.
fn spawn_pass<T: Send + 'static>(
    work: impl FnOnce(&tokio::sync::mpsc::Sender<Result<T, AppError>>) -> Result<(), AppError>
    + Send
    + 'static,
) -> tokio::sync::mpsc::Receiver<Result<T, AppError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    std::thread::Builder::new()
        .name("patron-import".into())
        .spawn(move || {
            if let Err(e) = work(&tx) {
                let _ = tx.blocking_send(Err(e));
            }
        })
        .expect("a thread can be started");
    rx
}

/// What the second pass needs to know from the first.
struct Plan {
    bad_lines: HashSet<u64>,
    /// New ids of the rows other rows refer to, by the row's file key.
    key_ids: HashMap<Uuid, CustomerId>,
    /// File key of those rows, by line.
    keys_by_line: HashMap<u64, Uuid>,
    /// Rows to write.
    good: u64,
}

/// The second pass's producer: reads and validates the file again and turns its good rows
/// into customers, in an order where every in-file reference points to a row sent before.
fn produce_customers(
    mut src: Source,
    cols: Vec<Column>,
    ctx: ValidationContext<'_>,
    plan: &Plan,
    make: &dyn Fn(CustomerId, CustomerProfile) -> Customer,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<Customer>, AppError>>,
) -> Result<(), AppError> {
    let file_ids: HashSet<CustomerId> = plan.key_ids.values().copied().collect();
    // Rows waiting for a later row they refer to, and the referenced rows already sent.
    let mut deferred: Vec<Customer> = Vec::new();
    let mut sent_ids: HashSet<CustomerId> = HashSet::new();
    let mut sent: u64 = 0;
    let waits = |c: &Customer, sent_ids: &HashSet<CustomerId>| {
        refs_of(c).any(|r| file_ids.contains(&r) && !sent_ids.contains(&r))
    };
    let stopped = || AppError::Internal("the import was stopped".into());
    loop {
        let chunk = read_chunk(&mut src)?;
        if chunk.is_empty() {
            break;
        }
        let mut batch = Vec::with_capacity(chunk.len());
        for c in check_chunk(&cols, &chunk, ctx) {
            if plan.bad_lines.contains(&c.line) {
                continue;
            }
            let profile = c.result.map_err(|e| {
                AppError::Internal(format!(
                    "line {} changed while it was being imported ({})",
                    c.line,
                    e.first().map(|e| e.message.as_str()).unwrap_or("")
                ))
            })?;
            let id = plan
                .keys_by_line
                .get(&c.line)
                .and_then(|k| plan.key_ids.get(k))
                .copied()
                .unwrap_or_else(|| CustomerId(new_uuid()));
            let customer = make(id, profile);
            if waits(&customer, &sent_ids) {
                deferred.push(customer);
            } else {
                if file_ids.contains(&id) {
                    // Sent before the rows after it, possibly in the same INSERT.
                    sent_ids.insert(id);
                }
                batch.push(customer);
            }
        }
        sent += batch.len() as u64;
        tx.blocking_send(Ok(batch)).map_err(|_| stopped())?;
    }
    // Rows that referred to later rows, each after its targets (cycles were rejected).
    while !deferred.is_empty() {
        let (ready, rest): (Vec<Customer>, Vec<Customer>) =
            deferred.into_iter().partition(|c| !waits(c, &sent_ids));
        if ready.is_empty() {
            return Err(AppError::Internal(
                "circular references between rows slipped through the check".into(),
            ));
        }
        sent_ids.extend(ready.iter().map(|c| c.id));
        sent += ready.len() as u64;
        tx.blocking_send(Ok(ready)).map_err(|_| stopped())?;
        deferred = rest;
    }
    if sent != plan.good {
        return Err(AppError::Internal(format!(
            "the file changed while it was being imported ({} good rows checked, {sent} read again)",
            plan.good
        )));
    }
    Ok(())
}

/// What the audit log keeps of an import.
fn report_summary(r: &ImportReport) -> serde_json::Value {
    serde_json::json!({"rows": r.rows, "imported": r.imported, "rejected_rows": r.rejected_lines.len()})
}

impl App {
    /// Imports customers from a `.csv` or `.xlsx` file (see the module documentation for
    /// the format and the checks). `progress` is called every few thousand rows.
    ///
    /// Returns `Err` for a problem with the file as a whole (unreadable, unknown header,
    /// bad encoding) or the database; bad rows are in the report. Without
    /// `skip_bad_rows`, a report with rejected rows means nothing was imported.
    pub async fn import_customers(
        &self,
        actor: &Actor,
        path: &Path,
        opts: ImportOptions,
        progress: &(dyn Fn(ImportProgress) + Send + Sync),
    ) -> Result<ImportReport, AppError> {
        actor.require(Permission::ImportCustomers)?;
        let in_file = |e: AppError| match e {
            AppError::Internal(m) => AppError::Internal(format!("{}: {m}", path.display())),
            e => e,
        };
        let today = self.validation_context().today;
        let (src, headers, cols) = open_with_headers(path)?;
        let (mut report, plan) = self
            .validate_file(actor, src, cols, today, progress)
            .await
            .map_err(in_file)?;
        report.headers = headers;
        if !report.rejected.is_empty() && !opts.skip_bad_rows || plan.good == 0 {
            self.audit_file(actor, "import.customers", path, &report_summary(&report))
                .await?;
            return Ok(report);
        }
        let (src, _, cols) = open_with_headers(path)?;
        report.imported = self
            .insert_file(actor, src, cols, today, plan, progress)
            .await
            .map_err(in_file)?;
        self.audit_file(actor, "import.customers", path, &report_summary(&report))
            .await?;
        Ok(report)
    }

    /// Pass 1: validates every row, finds duplicates within the file and clashes with
    /// existing customers.
    async fn validate_file(
        &self,
        actor: &Actor,
        src: Source,
        cols: Vec<Column>,
        today: chrono::NaiveDate,
        progress: &(dyn Fn(ImportProgress) + Send + Sync),
    ) -> Result<(ImportReport, Plan), AppError> {
        let total = src.len_hint();
        let key = self.id_hash_key.clone();
        let mut rx = spawn_pass(move |tx| {
            let ctx = ValidationContext {
                id_hash_key: &key,
                today,
            };
            let mut src = src;
            loop {
                let chunk = read_chunk(&mut src)?;
                if chunk.is_empty() {
                    return Ok(());
                }
                let checked = check_chunk(&cols, &chunk, ctx);
                if tx.blocking_send(Ok((chunk, checked))).is_err() {
                    return Ok(());
                }
            }
        });
        let mut p = Pass1 {
            // A tenant without customers has no phone or ID number to clash with.
            no_customers: self.storage.count_customers(actor.tenant_id).await? == 0,
            ..Pass1::default()
        };
        progress(ImportProgress {
            phase: ImportPhase::Validating,
            done: 0,
            total,
        });
        while let Some(next) = rx.recv().await {
            let (chunk, checked) = next?;
            for (c, r) in checked.into_iter().zip(&chunk) {
                p.add(c, r);
            }
            self.check_existing(actor.tenant_id, &mut p).await?;
            for r in &chunk {
                if p.bad_lines.contains(&r.line) && !p.bad.contains_key(&r.line) {
                    p.bad.insert(r.line, cells_of(r));
                }
            }
            progress(ImportProgress {
                phase: ImportPhase::Validating,
                done: p.rows,
                total,
            });
        }
        let key_ids = self.check_references(actor.tenant_id, &mut p).await?;

        p.errors.sort_by_key(|e| e.line);
        let mut rejected_lines: Vec<(u64, Vec<String>)> = p.bad.drain().collect();
        rejected_lines.sort_by_key(|(l, _)| *l);
        let keys_by_line = p
            .keys
            .iter()
            .filter(|(k, _)| key_ids.contains_key(*k))
            .map(|(k, l)| (*l, *k))
            .collect();
        let plan = Plan {
            good: p.rows - rejected_lines.len() as u64,
            bad_lines: p.bad_lines,
            key_ids,
            keys_by_line,
        };
        let report = ImportReport {
            rows: p.rows,
            imported: 0,
            rejected: p.errors,
            rejected_lines,
            headers: Vec::new(),
        };
        Ok((report, plan))
    }

    /// Pass 2: reads the file again and inserts its good rows in one transaction.
    async fn insert_file(
        &self,
        actor: &Actor,
        src: Source,
        cols: Vec<Column>,
        today: chrono::NaiveDate,
        plan: Plan,
        progress: &(dyn Fn(ImportProgress) + Send + Sync),
    ) -> Result<u64, AppError> {
        let good = plan.good;
        let key = self.id_hash_key.clone();
        let (tenant_id, home_store_id, at) = (actor.tenant_id, actor.store_id, now());
        let mut rx = spawn_pass(move |tx| {
            let ctx = ValidationContext {
                id_hash_key: &key,
                today,
            };
            let make = |id, profile| {
                new_customer(tenant_id, home_store_id, id, profile, &plan.key_ids, at)
            };
            produce_customers(src, cols, ctx, &plan, &make, tx)
        });
        let mut writer = self.storage.begin_customer_import().await?;
        let mut written: u64 = 0;
        progress(ImportProgress {
            phase: ImportPhase::Inserting,
            done: 0,
            total: Some(good),
        });
        while let Some(batch) = rx.recv().await {
            let batch = batch?;
            writer.write(&batch).await?;
            written += batch.len() as u64;
            progress(ImportProgress {
                phase: ImportPhase::Inserting,
                done: written,
                total: Some(good),
            });
        }
        if written != good {
            return Err(AppError::Internal(format!(
                "{written} of {good} rows were written; nothing was imported"
            )));
        }
        writer.commit().await.map_err(|e| match AppError::from(e) {
            AppError::Conflict { field, .. } => AppError::Conflict {
                code: "import_conflict",
                field,
                message: format!(
                    "a {} in the file was taken by another customer during the import; nothing was imported, run it again",
                    field.unwrap_or("value")
                ),
                existing: None,
            },
            other => other,
        })?;
        Ok(written)
    }

    /// Looks the pending phones and ID hashes up among existing customers.
    async fn check_existing(
        &self,
        tenant: patron_domain::ids::TenantId,
        p: &mut Pass1,
    ) -> Result<(), AppError> {
        if p.no_customers {
            p.pending_phones.clear();
            p.pending_ids.clear();
        }
        if !p.pending_phones.is_empty() {
            let pending = std::mem::take(&mut p.pending_phones);
            let phones: Vec<String> = pending.iter().map(|(ph, _)| ph.clone()).collect();
            let used: HashMap<String, CustomerId> = self
                .storage
                .phones_in_use(tenant, &phones)
                .await?
                .into_iter()
                .collect();
            for (phone, line) in pending {
                if let Some(owner) = used.get(&phone) {
                    p.reject(
                        line,
                        "phone",
                        "phone_in_use",
                        format!("phone {phone} already belongs to customer {owner}"),
                    );
                }
            }
        }
        if !p.pending_ids.is_empty() {
            let pending = std::mem::take(&mut p.pending_ids);
            let hashes: Vec<String> = pending.iter().map(|(h, _, _)| h.clone()).collect();
            let used: HashMap<String, CustomerId> = self
                .storage
                .id_hashes_in_use(tenant, &hashes)
                .await?
                .into_iter()
                .collect();
            for (hash, line, masked) in pending {
                if let Some(owner) = used.get(&hash) {
                    p.reject(
                        line,
                        "id_number",
                        "id_number_in_use",
                        format!("ID number {masked} already belongs to customer {owner}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Checks `organization_id` and `referred_by`: a row of the file (by its `id`) or an
    /// existing customer. Returns the new ids given to the rows other rows refer to.
    async fn check_references(
        &self,
        tenant: patron_domain::ids::TenantId,
        p: &mut Pass1,
    ) -> Result<HashMap<Uuid, CustomerId>, AppError> {
        let mut key_ids: HashMap<Uuid, CustomerId> = HashMap::new();
        let mut existing: HashMap<Uuid, bool> = HashMap::new();
        // In-file edges, for the cycle and cascade checks: (line, target line, field).
        let mut edges: Vec<(u64, u64, &'static str)> = Vec::new();
        let refs = std::mem::take(&mut p.refs);
        for (line, field, target) in refs {
            if let Some(&tline) = p.keys.get(&target) {
                if tline == line {
                    p.reject(
                        line,
                        field,
                        "self_reference",
                        "a customer cannot refer to itself".into(),
                    );
                } else {
                    key_ids
                        .entry(target)
                        .or_insert_with(|| CustomerId(new_uuid()));
                    edges.push((line, tline, field));
                }
                continue;
            }
            let found = match existing.get(&target) {
                Some(f) => *f,
                None => {
                    let f = self
                        .storage
                        .customer(tenant, CustomerId(target))
                        .await?
                        .is_some_and(|c| c.merged_into.is_none());
                    existing.insert(target, f);
                    f
                }
            };
            if !found {
                p.reject(
                    line,
                    field,
                    "unknown_customer",
                    format!(
                        "no customer {target}, neither in this file (id column) nor already stored"
                    ),
                );
            }
        }
        // Cycles: rows that can only be written after themselves.
        let mut out: HashMap<u64, Vec<u64>> = HashMap::new();
        for (l, t, _) in &edges {
            out.entry(*l).or_default().push(*t);
        }
        let mut in_cycle: HashSet<u64> = HashSet::new();
        let mut state: HashMap<u64, u8> = HashMap::new(); // 1 = on the path, 2 = done
        for &(start, _, _) in &edges {
            if state.contains_key(&start) {
                continue;
            }
            let mut stack: Vec<(u64, usize)> = vec![(start, 0)];
            state.insert(start, 1);
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let targets = out.get(&node).map(Vec::as_slice).unwrap_or_default();
                if let Some(&t) = targets.get(*next) {
                    *next += 1;
                    match state.get(&t) {
                        None => {
                            state.insert(t, 1);
                            stack.push((t, 0));
                        }
                        Some(1) => {
                            let from = stack.iter().position(|(n, _)| *n == t).unwrap_or(0);
                            in_cycle.extend(stack[from..].iter().map(|(n, _)| *n));
                        }
                        _ => {}
                    }
                } else {
                    state.insert(node, 2);
                    stack.pop();
                }
            }
        }
        for &(l, t, field) in &edges {
            if in_cycle.contains(&l) && in_cycle.contains(&t) {
                p.reject(
                    l,
                    field,
                    "circular_reference",
                    format!(
                        "line {l} and line {t} refer to each other (directly or through other rows)"
                    ),
                );
            }
        }
        // A row referring to a rejected row is rejected too (it could not be written).
        loop {
            let mut changed = false;
            for &(l, t, field) in &edges {
                if p.bad_lines.contains(&t) && !p.bad_lines.contains(&l) {
                    p.reject(
                        l,
                        field,
                        "rejected_reference",
                        format!("refers to line {t}, which is rejected"),
                    );
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Rows rejected here all have references, whose cells were kept.
        let ref_cells = std::mem::take(&mut p.ref_cells);
        for (line, cells) in ref_cells {
            if p.bad_lines.contains(&line) {
                p.bad.entry(line).or_insert(cells);
            }
        }
        Ok(key_ids)
    }
}

/// The references of a customer.
fn refs_of(c: &Customer) -> impl Iterator<Item = CustomerId> {
    [c.profile.organization_id, c.profile.referred_by]
        .into_iter()
        .flatten()
}

/// A new customer from an imported row: references to rows of the file are rewritten to
/// the ids those rows get.
fn new_customer(
    tenant_id: patron_domain::ids::TenantId,
    home_store_id: Option<patron_domain::ids::StoreId>,
    id: CustomerId,
    mut profile: CustomerProfile,
    key_ids: &HashMap<Uuid, CustomerId>,
    at: chrono::DateTime<chrono::Utc>,
) -> Customer {
    for r in [&mut profile.organization_id, &mut profile.referred_by] {
        if let Some(target) = r
            && let Some(new) = key_ids.get(&target.0)
        {
            *r = Some(*new);
        }
    }
    if profile.marketing_consent_source.is_none() && profile.marketing_consent {
        profile.marketing_consent_source = Some("import".into());
    }
    Customer {
        id,
        tenant_id,
        marketing_consent_at: profile.marketing_consent.then_some(at),
        profile,
        level: None,
        home_store_id,
        merged_into: None,
        created_at: at,
        updated_at: at,
    }
}

/// A migrated SQLite database in a temporary directory, with one tenant.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::auth::InitRequest;
    use crate::{Actor, App};
    use std::sync::Arc;

    pub(crate) async fn app() -> (tempfile::TempDir, App, Actor) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("patron.db");
        let storage = patron_store::sqlite::SqliteStorage::open(db.to_str().unwrap())
            .await
            .unwrap();
        patron_store::Storage::migrate(&storage).await.unwrap();
        let app = App::new(Arc::new(storage), b"test-key".to_vec());
        let actor = tenant(&app, "alpha").await;
        (dir, app, actor)
    }

    /// Another tenant in the same database.
    pub(crate) async fn tenant(app: &App, code: &str) -> Actor {
        let out = app
            .init_tenant(InitRequest {
                tenant_code: code.into(),
                tenant_name: format!("{code} 酒家"),
                store_code: "main".into(),
                store_name: "总店".into(),
                username: "owner".into(),
                display_name: "老板".into(),
                password: "correct horse".into(),
            })
            .await
            .unwrap();
        Actor {
            tenant_id: out.tenant.id,
            staff_id: out.owner.id,
            role: out.owner.role,
            store_id: Some(out.store.id),
            display_name: out.owner.display_name,
            scope: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patron_domain::page::PageRequest;
    use patron_store::CustomerFilter;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn headers(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn no_progress(_: ImportProgress) {}

    #[test]
    fn the_field_table_is_the_input() {
        for (i, (f, name, _)) in FIELDS.iter().enumerate() {
            assert_eq!(*f as usize, i, "{name} is out of order");
            assert_eq!(f.name(), *name);
        }
        let input = serde_json::to_value(CustomerInput::default()).unwrap();
        let mut keys: Vec<&str> = input
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.1).collect();
        keys.sort_unstable();
        names.sort_unstable();
        assert_eq!(keys, names);
    }

    #[test]
    fn maps_english_and_chinese_headers() {
        let cols = map_headers(&headers(&[
            "\u{feff}Name",
            " 手机号 ",
            "性别",
            "生日*",
            "邮箱",
            "地址",
            "身份证号",
            "证件类型",
            "标签",
            "备注",
            "口味",
            "喜好菜品",
            "过敏",
            "座位偏好",
            "来源",
            "营销同意",
            "客户类型",
            "行业",
            "职位",
            "公司",
            "国籍",
            "生命周期",
            "流失原因",
            "Work Phone",
            "id",
            "id_number_masked",
            "",
        ]))
        .unwrap();
        use Field::*;
        let expect = [
            Name,
            Phone,
            Gender,
            Birthday,
            Email,
            Address,
            IdNumber,
            IdDocumentKind,
            Tags,
            Notes,
            Tastes,
            FavouriteDishes,
            Allergies,
            SeatPreference,
            AcquisitionSource,
            MarketingConsent,
            CustomerType,
            Industry,
            Title,
            Company,
            Nationality,
            LifecycleStage,
            ChurnReason,
            WorkPhone,
        ];
        for (i, f) in expect.iter().enumerate() {
            assert_eq!(cols[i], Column::Field(*f), "column {i}");
        }
        assert_eq!(
            &cols[24..],
            &[Column::Key, Column::Ignored, Column::Unnamed]
        );
        for alias in ["手机", "电话"] {
            assert_eq!(
                map_headers(&headers(&["姓名", alias])).unwrap()[1],
                Column::Field(Phone)
            );
        }
        assert_eq!(
            map_headers(&headers(&["姓名", "证件号"])).unwrap()[1],
            Column::Field(IdNumber)
        );
    }

    #[test]
    fn refuses_unknown_repeated_and_missing_headers() {
        let e = map_headers(&headers(&["name", "phone", "会员卡号", "shoe size"])).unwrap_err();
        assert_eq!(e.0.len(), 2);
        assert_eq!(e.0[0].code, "unknown_header");
        assert!(
            e.0[0].message.contains("“会员卡号” (column 3)"),
            "{}",
            e.0[0].message
        );
        assert!(e.0[1].message.contains("shoe size"));
        let e = map_headers(&headers(&["name", "phone", "手机"])).unwrap_err();
        assert_eq!(e.0[0].code, "duplicate_header");
        assert!(
            e.0[0].message.contains("“phone” and “手机”"),
            "{}",
            e.0[0].message
        );
        let e = map_headers(&headers(&["phone"])).unwrap_err();
        assert_eq!(e.0[0].code, "missing_header");
    }

    #[test]
    fn splits_lists_and_reads_booleans() {
        assert_eq!(
            split_list("微辣; 不要香菜；少盐、免葱|VIP ;;"),
            vec!["微辣", "不要香菜", "少盐", "免葱", "VIP"]
        );
        assert!(split_list(" ; ").is_empty());
        for y in ["yes", "YES", "true", "1", "是", "y", "Y", " 同意 "] {
            assert_eq!(parse_bool(y), Some(true), "{y}");
        }
        for n in ["no", "False", "0", "否", "n", "不同意"] {
            assert_eq!(parse_bool(n), Some(false), "{n}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    /// Reads a whole file through [`Source`]: (line, cells) per non-blank row.
    fn read_all(path: &Path) -> Result<Vec<(u64, Vec<String>)>, AppError> {
        let (mut src, headers, _) = open_with_headers(path)?;
        let mut out = vec![(1, headers)];
        loop {
            let chunk = read_chunk(&mut src)?;
            if chunk.is_empty() {
                return Ok(out);
            }
            out.extend(chunk.iter().map(|r| (r.line, cells_of(r))));
        }
    }

    #[test]
    fn decodes_gb18030_and_strips_a_bom() {
        let dir = tempfile::tempdir().unwrap();
        let text = "姓名,手机,标签\n张伟,13800138000,贵宾、常客\n\n“李娜”,13900139000,\n";
        let (gbk, _, bad) = encoding_rs::GB18030.encode(text);
        assert!(!bad);
        assert!(std::str::from_utf8(&gbk).is_err());
        let expect = vec![
            (1, headers(&["姓名", "手机", "标签"])),
            (2, headers(&["张伟", "13800138000", "贵宾、常客"])),
            (4, headers(&["“李娜”", "13900139000", ""])),
        ];
        assert_eq!(read_all(&write(&dir, "gbk.csv", &gbk)).unwrap(), expect);
        let mut bom = "\u{feff}".as_bytes().to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(read_all(&write(&dir, "bom.csv", &bom)).unwrap(), expect);
        let tsv = text.replace(',', "\t");
        assert_eq!(
            read_all(&write(&dir, "tab.csv", tsv.as_bytes())).unwrap(),
            expect
        );
        // Bytes that are neither UTF-8 nor GB18030 are a clear error, not mojibake.
        let mut broken = gbk.to_vec();
        broken.extend_from_slice(b"\x81\x20\n");
        let e = read_all(&write(&dir, "broken.csv", &broken)).unwrap_err();
        assert!(e.to_string().contains("neither UTF-8 nor gb18030"), "{e}");
    }

    #[test]
    fn lines_are_physical_lines() {
        let dir = tempfile::tempdir().unwrap();
        for (text, lines) in [
            ("name\na\n\n\nb\n", vec![2, 5]),
            (
                "name\r\na\r\n\r\n\"x\r\ny\"\r\n\r\nb\r\nc",
                vec![2, 4, 7, 8],
            ),
            ("name\ra\r\rb\r", vec![2, 4]),
            ("\n\nname\n \t \nb", vec![5]),
        ] {
            let got: Vec<u64> = read_all(&write(&dir, "l.csv", text.as_bytes()))
                .unwrap()
                .into_iter()
                .skip(1) // the header
                .map(|(l, _)| l)
                .collect();
            assert_eq!(got, lines, "{text:?}");
        }
    }

    #[test]
    fn the_decoder_survives_any_read_size() {
        struct Trickle<R>(R);
        impl<R: Read> Read for Trickle<R> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let text = "姓名,备注\n".to_string() + &"欧阳娜娜,不吃辣🌶\n".repeat(20_000);
        let (gbk, _, _) = encoding_rs::GB18030.encode(&text);
        let mut out = String::new();
        Decoding::new(Trickle(&gbk[..]), encoding_rs::GB18030)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
    }

    #[tokio::test]
    async fn reports_every_problem_with_line_and_field_and_imports_nothing() {
        let (dir, app, actor) = test_support::app().await;
        let csv = "name,phone,gender,birthday,marketing_consent,email,id_number\n\
                   张伟,13800138000,男,1988-05-17,是,zw@example.com,11010519491231002X\n\
                   ,123,x,2099-01-01,perhaps,nope,\n\
                   \"王\n芳\",13900139000,女,,,,\n\
                   赵敏,13800138000,,,,,11010519491231002X\n";
        let path = write(&dir, "bad.csv", csv.as_bytes());
        let report = app
            .import_customers(&actor, &path, ImportOptions::default(), &no_progress)
            .await
            .unwrap();
        assert_eq!(report.rows, 4);
        assert_eq!(report.imported, 0);
        let got: Vec<(u64, &str, &str)> = report
            .rejected
            .iter()
            .map(|e| (e.line, e.field.as_str(), e.code))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "marketing_consent", "invalid_boolean"),
                (3, "name", "required"),
                (3, "phone", "invalid_phone"),
                (3, "gender", "invalid_choice"),
                (3, "birthday", "in_future"),
                (3, "email", "invalid_email"),
                (6, "phone", "duplicate_in_file"),
                (6, "id_number", "duplicate_in_file"),
            ]
        );
        assert!(report.rejected[6].message.contains("also on line 2"));
        assert!(
            !report.rejected[7].message.contains("11010519491231002X"),
            "no clear ID numbers in reports"
        );
        assert_eq!(
            report.rejected_lines,
            vec![
                (
                    3,
                    headers(&["", "123", "x", "2099-01-01", "perhaps", "nope", ""])
                ),
                (
                    6,
                    headers(&["赵敏", "13800138000", "", "", "", "", "11010519491231002X"])
                ),
            ]
        );
        assert_eq!(
            app.storage.count_customers(actor.tenant_id).await.unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn unknown_headers_refuse_the_file() {
        let (dir, app, actor) = test_support::app().await;
        let path = write(
            &dir,
            "h.csv",
            "姓名,手机,会员等级\n张伟,13800138000,金卡\n".as_bytes(),
        );
        let e = app
            .import_customers(&actor, &path, ImportOptions::default(), &no_progress)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AppError::Validation(v) if v.0[0].code == "unknown_header"),
            "{e}"
        );
        assert!(e.to_string().contains("会员等级"));
        let e = app
            .import_customers(
                &actor,
                &dir.path().join("x.json"),
                ImportOptions::default(),
                &no_progress,
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains(".csv or .xlsx"), "{e}");
    }

    #[tokio::test]
    async fn skip_bad_rows_imports_the_rest_and_the_rejects_file_reimports() {
        let (dir, app, actor) = test_support::app().await;
        let existing = app
            .create_customer(
                &actor,
                &CustomerInput {
                    name: Some("老客".into()),
                    phone: Some("13700137000".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let csv = "姓名,手机,生日,标签,营销同意\n\
                   张伟,13800138000,1988-05-17,贵宾；常客,是\n\
                   李娜,13700137000,,,\n\
                   王芳,13900139000,1990-02-30,,\n\
                   赵敏,,,,否\n";
        let path = write(&dir, "mixed.csv", csv.as_bytes());
        let calls = AtomicU64::new(0);
        let report = app
            .import_customers(
                &actor,
                &path,
                ImportOptions {
                    skip_bad_rows: true,
                },
                &|_: ImportProgress| {
                    calls.fetch_add(1, Ordering::Relaxed);
                },
            )
            .await
            .unwrap();
        assert!(calls.load(Ordering::Relaxed) >= 4);
        assert_eq!((report.rows, report.imported), (4, 2));
        assert_eq!(report.rejected.len(), 2);
        assert_eq!(
            (report.rejected[0].line, report.rejected[0].code),
            (3, "phone_in_use")
        );
        assert!(
            report.rejected[0]
                .message
                .contains(&existing.id.to_string())
        );
        assert_eq!(
            (report.rejected[1].line, report.rejected[1].field.as_str()),
            (4, "birthday")
        );

        let page = app
            .list_customers(&actor, &CustomerFilter::default(), PageRequest::default())
            .await
            .unwrap();
        let mut names: Vec<&str> = page.items.iter().map(|c| c.profile.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["张伟", "老客", "赵敏"]);
        let zw = page
            .items
            .iter()
            .find(|c| c.profile.name == "张伟")
            .unwrap();
        assert_eq!(zw.profile.tags, vec!["贵宾", "常客"]);
        assert!(zw.profile.marketing_consent && zw.marketing_consent_at.is_some());
        assert_eq!(
            zw.profile.marketing_consent_source.as_deref(),
            Some("import")
        );

        // The rejects file: original columns plus line, field, reason; fixed, it imports.
        let rejects = dir.path().join("rejects.csv");
        write_rejects_csv(&report, &rejects).unwrap();
        let text = std::fs::read_to_string(&rejects).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("\u{feff}姓名,手机,生日,标签,营销同意,line,field,reason")
        );
        assert!(lines.next().unwrap().starts_with(
            "李娜,13700137000,,,,3,phone,phone: phone 13700137000 already belongs to customer"
        ));
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("王芳,13900139000,1990-02-30,,,4,birthday,")
        );
        let fixed = text
            .replace("13700137000,,,,3", "13700137001,,,,3")
            .replace("1990-02-30", "1990-02-28");
        std::fs::write(&rejects, fixed).unwrap();
        let again = app
            .import_customers(&actor, &rejects, ImportOptions::default(), &no_progress)
            .await
            .unwrap();
        assert_eq!(
            (again.imported, again.rejected.len()),
            (2, 0),
            "{:?}",
            again.rejected
        );
        assert_eq!(
            app.storage.count_customers(actor.tenant_id).await.unwrap(),
            5
        );
    }

    #[tokio::test]
    async fn references_between_rows_follow_the_id_column() {
        let (dir, app, actor) = test_support::app().await;
        let (org, member, friend, ghost, a, b) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        // member refers forward to org; friend backward to member; two rows refer to each other.
        let csv = format!(
            "id,name,customer_type,organization_id,referred_by\n\
             {member},员工甲,,{org},\n\
             {org},星辰科技,单位,,\n\
             {friend},朋友乙,,,{member}\n\
             ,孤儿,,,{ghost}\n\
             {a},甲,,,{b}\n\
             {b},乙,,,{a}\n"
        );
        let path = write(&dir, "refs.csv", csv.as_bytes());
        let report = app
            .import_customers(
                &actor,
                &path,
                ImportOptions {
                    skip_bad_rows: true,
                },
                &no_progress,
            )
            .await
            .unwrap();
        let got: Vec<(u64, &str)> = report.rejected.iter().map(|e| (e.line, e.code)).collect();
        assert_eq!(
            got,
            vec![
                (5, "unknown_customer"),
                (6, "circular_reference"),
                (7, "circular_reference")
            ]
        );
        assert_eq!(report.imported, 3);
        let all = app
            .storage
            .customers_after(actor.tenant_id, None, 100)
            .await
            .unwrap();
        let by_name = |n: &str| all.iter().find(|c| c.profile.name == n).unwrap();
        let (o, m, f) = (by_name("星辰科技"), by_name("员工甲"), by_name("朋友乙"));
        assert!(
            ![org, member, friend].contains(&o.id.0),
            "imported customers get new ids"
        );
        assert_eq!(m.profile.organization_id, Some(o.id));
        assert_eq!(f.profile.referred_by, Some(m.id));
    }

    #[tokio::test]
    async fn the_bulk_writer_still_checks_references() {
        let (_dir, app, actor) = test_support::app().await;
        let ctx = app.validation_context();
        let profile = CustomerInput {
            name: Some("孤儿".into()),
            referred_by: Some(Uuid::now_v7().to_string()),
            ..Default::default()
        }
        .validate(ctx, None)
        .unwrap();
        let orphan = new_customer(
            actor.tenant_id,
            actor.store_id,
            CustomerId(new_uuid()),
            profile,
            &HashMap::new(),
            now(),
        );
        let mut w = app.storage.begin_customer_import().await.unwrap();
        w.write(std::slice::from_ref(&orphan)).await.unwrap();
        let e = w.commit().await.unwrap_err();
        assert!(
            matches!(e, patron_store::StoreError::MissingReference(_)),
            "{e}"
        );
        assert_eq!(
            app.storage.count_customers(actor.tenant_id).await.unwrap(),
            0
        );
        // A failed write rolls back too, and ordinary writes enforce foreign keys again.
        let mut w = app.storage.begin_customer_import().await.unwrap();
        let fine = Customer {
            id: CustomerId(new_uuid()),
            profile: CustomerProfile {
                referred_by: None,
                ..orphan.profile.clone()
            },
            ..orphan.clone()
        };
        w.write(std::slice::from_ref(&fine)).await.unwrap();
        assert!(
            w.write(std::slice::from_ref(&fine)).await.is_err(),
            "the same id twice"
        );
        drop(w);
        assert_eq!(
            app.storage.count_customers(actor.tenant_id).await.unwrap(),
            0
        );
        let e = app
            .storage
            .insert_customers(std::slice::from_ref(&orphan))
            .await
            .unwrap_err();
        assert!(
            matches!(e, patron_store::StoreError::MissingReference(_)),
            "{e}"
        );
        app.storage
            .insert_customers(std::slice::from_ref(&fine))
            .await
            .unwrap();
        assert_eq!(
            app.storage.count_customers(actor.tenant_id).await.unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn imports_excel() {
        let (dir, app, actor) = test_support::app().await;
        let path = dir.path().join("in.xlsx");
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["姓名", "手机", "生日", "营销同意", "口味"]
            .iter()
            .enumerate()
        {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        sheet.write_string(1, 0, "张伟").unwrap();
        sheet.write_number(1, 1, 13800138000.0).unwrap();
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(1988, 5, 17).unwrap();
        let fmt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        sheet.write_datetime_with_format(1, 2, &date, &fmt).unwrap();
        sheet.write_boolean(1, 3, true).unwrap();
        sheet.write_string(1, 4, "微辣、不要香菜").unwrap();
        sheet.write_string(3, 0, "李娜").unwrap();
        sheet.write_string(3, 1, "not a phone").unwrap();
        book.save(&path).unwrap();

        let report = app
            .import_customers(
                &actor,
                &path,
                ImportOptions {
                    skip_bad_rows: true,
                },
                &no_progress,
            )
            .await
            .unwrap();
        assert_eq!((report.rows, report.imported), (2, 1));
        assert_eq!(
            (report.rejected[0].line, report.rejected[0].field.as_str()),
            (4, "phone")
        );
        let c = &app
            .storage
            .customers_after(actor.tenant_id, None, 10)
            .await
            .unwrap()[0];
        assert_eq!(c.profile.phone.as_ref().unwrap().as_str(), "13800138000");
        assert_eq!(c.profile.birthday.unwrap().to_string(), "1988-05-17");
        assert!(c.profile.marketing_consent);
        assert_eq!(c.profile.tastes, vec!["微辣", "不要香菜"]);
    }

    #[tokio::test]
    async fn progress_reports_both_phases() {
        let (dir, app, actor) = test_support::app().await;
        let mut csv = String::from("name,phone\n");
        for i in 0..20_000u64 {
            csv.push_str(&format!("客户{i},138{i:08}\n"));
        }
        let path = write(&dir, "many.csv", csv.as_bytes());
        let seen = Mutex::new(Vec::new());
        let report = app
            .import_customers(
                &actor,
                &path,
                ImportOptions::default(),
                &|p: ImportProgress| seen.lock().unwrap().push(p),
            )
            .await
            .unwrap();
        assert_eq!(report.imported, 20_000);
        let seen = seen.into_inner().unwrap();
        assert!(
            seen.iter()
                .any(|p| p.phase == ImportPhase::Validating && p.done == 20_000)
        );
        let last = seen.last().unwrap();
        assert_eq!(
            (last.phase, last.done, last.total),
            (ImportPhase::Inserting, 20_000, Some(20_000))
        );
    }

    /// A realistic CSV of `n` customers: every row has a unique phone, half an ID number.
    pub(super) fn generated_csv(n: u64) -> String {
        const SURNAMES: &[&str] = &[
            "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "欧阳", "司马",
        ];
        const GIVEN: &[&str] = &[
            "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
            "娟",
        ];
        const WEIGHTS: [u64; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let mut out = String::with_capacity(n as usize * 170);
        out.push_str("姓名,手机,性别,生日,邮箱,身份证号,标签,口味,来源,营销同意,备注\n");
        let start = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
        for i in 0..n {
            let birthday = start + chrono::Days::new(i % 20_000);
            let name = format!(
                "{}{}",
                SURNAMES[(i % 12) as usize],
                GIVEN[((i / 12) % 15) as usize]
            );
            let id_number = if i % 2 == 0 {
                let body = format!(
                    "110105{}{:03}",
                    birthday.format("%Y%m%d"),
                    (i / 20_000) % 1000
                );
                let sum: u64 = body
                    .bytes()
                    .zip(WEIGHTS)
                    .map(|(c, w)| u64::from(c - b'0') * w)
                    .sum();
                format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
            } else {
                String::new()
            };
            let email = if i % 3 == 0 {
                format!("guest{i}@example.com")
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{name},13{i:09},{},{birthday},{email},{id_number},{},微辣、不要香菜,{},{},{}\n",
                if i % 2 == 0 { "男" } else { "女" },
                if i % 5 == 0 { "VIP;常客" } else { "" },
                if i % 4 == 0 { "转介绍" } else { "到店" },
                if i % 3 == 0 { "是" } else { "否" },
                if i % 7 == 0 {
                    "喜欢靠窗的位置"
                } else {
                    ""
                },
            ));
        }
        out
    }

    /// `cargo test --release -p patron-app -- --ignored import_speed --nocapture`
    /// (PATRON_IMPORT_ROWS sets the row count; default one million).
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "a benchmark: run in release mode"]
    async fn import_speed() {
        let n: u64 = std::env::var("PATRON_IMPORT_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let (dir, app, actor) = test_support::app().await;
        let path = write(&dir, "million.csv", generated_csv(n).as_bytes());
        let size = std::fs::metadata(&path).unwrap().len();
        let phase_started = Mutex::new((ImportPhase::Validating, std::time::Instant::now()));
        let started = std::time::Instant::now();
        let report = app
            .import_customers(
                &actor,
                &path,
                ImportOptions::default(),
                &|p: ImportProgress| {
                    let mut ps = phase_started.lock().unwrap();
                    if ps.0 != p.phase {
                        eprintln!("validation pass: {:.2}s", ps.1.elapsed().as_secs_f64());
                        *ps = (p.phase, std::time::Instant::now());
                    }
                },
            )
            .await
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "insert pass: {:.2}s",
            phase_started.lock().unwrap().1.elapsed().as_secs_f64()
        );
        assert_eq!(report.rejected, vec![]);
        assert_eq!(report.imported, n);
        eprintln!(
            "imported {n} rows ({:.0} MB CSV) in {secs:.2}s: {:.0} rows/s",
            size as f64 / 1e6,
            n as f64 / secs
        );
        assert_eq!(
            app.storage.count_customers(actor.tenant_id).await.unwrap() as u64,
            n
        );
    }
}

/// Fuzz targets: arbitrary and plausible files never panic the import (see the module).
#[cfg(test)]
mod fuzz;
