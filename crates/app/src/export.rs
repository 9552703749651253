//! Customer export to CSV or Excel (.xlsx).
//!
//! The columns are `id` (the customer id), then the import's headers (the
//! [`CustomerInput`](patron_domain::customer::CustomerInput) field names, lists joined by
//! `;`), with `id_number_masked` in place of `id_number`: the clear ID number is never
//! stored, so it cannot be exported. An export therefore imports again as it is (into an
//! empty tenant, say): references between customers (`organization_id`, `referred_by`)
//! follow the `id` column, and only the ID documents are lost.
//!
//! CSV is UTF-8 with a BOM so that Excel shows Chinese correctly. Excel files have a bold,
//! frozen header row and text-formatted phone and ID columns, and are written in
//! constant memory. Customers are read 1,000 at a time in id order; merged records are
//! left out. The file is written under a temporary name and renamed when complete.

use crate::import::Field;
use crate::{Actor, App, AppError};
use patron_domain::ValidationErrors;
use patron_domain::customer::Customer;
use patron_domain::ids::CustomerId;
use patron_domain::permissions::Permission;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Export file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Xlsx,
}

impl ExportFormat {
    /// The format a file name asks for: `.csv` or `.xlsx` (any case).
    pub fn from_path(path: &Path) -> Result<ExportFormat, AppError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(ExportFormat::Csv),
            Some("xlsx") => Ok(ExportFormat::Xlsx),
            _ => Err(ValidationErrors::single(
                "file",
                "unsupported_format",
                format!(
                    "{}: the file name must end in .csv or .xlsx",
                    path.display()
                ),
            )
            .into()),
        }
    }
}

/// Customers read per query.
const PAGE: i64 = 1000;
/// Excel's row limit, header included.
const XLSX_MAX_ROWS: u64 = 1_048_576;

/// An export column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Id,
    Field(Field),
    IdNumberMasked,
}

fn columns() -> Vec<Col> {
    let mut cols = vec![Col::Id];
    for f in Field::ALL {
        cols.push(if f == Field::IdNumber {
            Col::IdNumberMasked
        } else {
            Col::Field(f)
        });
    }
    cols
}

impl Col {
    fn header(self) -> &'static str {
        match self {
            Col::Id => "id",
            Col::Field(f) => f.name(),
            Col::IdNumberMasked => "id_number_masked",
        }
    }
    /// Phone and ID columns are text in Excel (no 1.38E+10, no lost leading zeros).
    fn is_text(self) -> bool {
        matches!(
            self,
            Col::Id | Col::IdNumberMasked | Col::Field(Field::Phone | Field::WorkPhone)
        )
    }
}

/// A customer as the cells of one row, in [`columns`] order.
fn cells(cols: &[Col], c: &Customer) -> Vec<String> {
    let input = c.profile.to_input();
    cols.iter()
        .map(|col| match col {
            Col::Id => c.id.to_string(),
            Col::Field(f) => f.get(&input),
            Col::IdNumberMasked => c
                .profile
                .id_document
                .as_ref()
                .map(|d| d.masked.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// Where the rows go. (One per export: the size difference between variants is irrelevant.)
#[allow(clippy::large_enum_variant)]
enum Sink {
    Csv(csv::Writer<BufWriter<File>>),
    Xlsx {
        book: Box<rust_xlsxwriter::Workbook>,
        row: u32,
    },
}

fn xlsx_error(e: rust_xlsxwriter::XlsxError) -> AppError {
    AppError::Internal(format!("writing the Excel file failed: {e}"))
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("writing {} failed: {e}", path.display()))
}

impl Sink {
    fn open(format: ExportFormat, tmp: &Path, cols: &[Col]) -> Result<Sink, AppError> {
        let headers: Vec<&str> = cols.iter().map(|c| c.header()).collect();
        match format {
            ExportFormat::Csv => {
                let mut out = BufWriter::with_capacity(
                    256 * 1024,
                    File::create(tmp).map_err(|e| io_error(tmp, e))?,
                );
                out.write_all("\u{feff}".as_bytes())
                    .map_err(|e| io_error(tmp, e))?;
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&headers).map_err(|e| io_error(tmp, e))?;
                Ok(Sink::Csv(w))
            }
            ExportFormat::Xlsx => {
                use rust_xlsxwriter::{Format, Workbook};
                let mut book = Box::new(Workbook::new());
                let sheet = book
                    .add_worksheet_with_constant_memory()
                    .map_err(xlsx_error)?
                    .set_name("customers")
                    .map_err(xlsx_error)?;
                let bold = Format::new().set_bold();
                let text = Format::new().set_num_format("@");
                for (i, c) in cols.iter().enumerate() {
                    let i = i as u16;
                    if c.is_text() {
                        sheet.set_column_format(i, &text).map_err(xlsx_error)?;
                    }
                    let width = match c {
                        Col::Id => 38.0,
                        Col::Field(Field::Notes | Field::Address) => 30.0,
                        _ => 14.0,
                    };
                    sheet.set_column_width(i, width).map_err(xlsx_error)?;
                    sheet
                        .write_string_with_format(0, i, c.header(), &bold)
                        .map_err(xlsx_error)?;
                }
                sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
                Ok(Sink::Xlsx { book, row: 1 })
            }
        }
    }

    fn write(&mut self, tmp: &Path, cols: &[Col], c: &Customer) -> Result<(), AppError> {
        let row = cells(cols, c);
        match self {
            Sink::Csv(w) => w.write_record(&row).map_err(|e| io_error(tmp, e)),
            Sink::Xlsx { book, row: r } => {
                if u64::from(*r) >= XLSX_MAX_ROWS {
                    return Err(ValidationErrors::single(
                        "file",
                        "too_many_rows",
                        "more customers than an Excel sheet holds (1,048,575); export to .csv",
                    )
                    .into());
                }
                let sheet = book.worksheet_from_index(0).map_err(xlsx_error)?;
                for (i, v) in row.iter().enumerate() {
                    if !v.is_empty() {
                        sheet
                            .write_string(*r, i as u16, v.as_str())
                            .map_err(xlsx_error)?;
                    }
                }
                *r += 1;
                Ok(())
            }
        }
    }

    fn finish(self, tmp: &Path) -> Result<(), AppError> {
        match self {
            Sink::Csv(w) => {
                let out = w.into_inner().map_err(|e| io_error(tmp, e.error()))?;
                let file = out.into_inner().map_err(|e| io_error(tmp, e.error()))?;
                file.sync_all().map_err(|e| io_error(tmp, e))
            }
            Sink::Xlsx { mut book, .. } => book.save(tmp).map_err(xlsx_error),
        }
    }
}

/// A hidden sibling of the target, renamed over it when the export is complete.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    path.with_file_name(format!(".{name}.partial"))
}

impl App {
    /// Writes every customer of the actor's tenant (merged records excepted) to `path`,
    /// in id order; `progress` gets the number of rows written after each page of 1,000.
    /// Returns the number of customers written. The target appears only when complete.
    pub async fn export_customers(
        &self,
        actor: &Actor,
        path: &Path,
        format: ExportFormat,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, AppError> {
        actor.require(Permission::ExportPersonalData)?;
        let cols = columns();
        let tmp = temp_path(path);
        let result = self
            .export_to(actor, &tmp, format, &cols, progress)
            .await
            .and_then(|n| {
                std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
                Ok(n)
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        let n = result?;
        self.audit_file(
            actor,
            "export.customers",
            path,
            &serde_json::json!({"rows": n, "format": format!("{format:?}").to_lowercase()}),
        )
        .await?;
        Ok(n)
    }

    async fn export_to(
        &self,
        actor: &Actor,
        tmp: &Path,
        format: ExportFormat,
        cols: &[Col],
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, AppError> {
        let mut sink = Sink::open(format, tmp, cols)?;
        let mut after: Option<CustomerId> = None;
        let mut n: u64 = 0;
        progress(0);
        loop {
            let page = self
                .storage
                .customers_after(actor.tenant_id, after, PAGE)
                .await?;
            for c in &page {
                sink.write(tmp, cols, c)?;
            }
            n += page.len() as u64;
            progress(n);
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = Some(last.id),
                _ => break,
            }
        }
        sink.finish(tmp)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::test_support;
    use crate::import::{ImportOptions, ImportProgress};
    use patron_domain::customer::{CustomerInput, CustomerProfile};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn format_from_the_file_name() {
        assert_eq!(
            ExportFormat::from_path(Path::new("a/b.csv")).unwrap(),
            ExportFormat::Csv
        );
        assert_eq!(
            ExportFormat::from_path(Path::new("B.XLSX")).unwrap(),
            ExportFormat::Xlsx
        );
        assert!(ExportFormat::from_path(Path::new("b.xls")).is_err());
        assert!(ExportFormat::from_path(Path::new("noext")).is_err());
    }

    fn input(name: &str) -> CustomerInput {
        CustomerInput {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// A tenant with an organization, a member with everything filled in, a referred
    /// friend who was lost, and a merged pair.
    async fn sample(app: &App, actor: &Actor) -> Vec<Customer> {
        let org = app
            .create_customer(
                actor,
                &CustomerInput {
                    customer_type: Some("单位".into()),
                    phone: Some("021-6123 4567".into()),
                    email: Some("hr@xingchen.example".into()),
                    credit_rating: Some("a".into()),
                    ..input("星辰科技有限公司")
                },
            )
            .await
            .unwrap();
        let member = app
            .create_customer(
                actor,
                &CustomerInput {
                    phone: Some("+86 138 0013 8000".into()),
                    gender: Some("男".into()),
                    birthday: Some("1988-05-17".into()),
                    nationality: Some("中国".into()),
                    industry: Some("互联网".into()),
                    title: Some("总监".into()),
                    company: Some("星辰科技".into()),
                    work_phone: Some("021-61234568".into()),
                    id_number: Some("11010519491231002X".into()),
                    address: Some("上海市静安区南京西路1号, \"3楼\"".into()),
                    organization_id: Some(org.id.to_string()),
                    acquisition_source: Some("转介绍".into()),
                    marketing_consent: Some(true),
                    marketing_consent_source: Some("in_store".into()),
                    favourite_dishes: vec!["红烧肉".into(), "清蒸鲈鱼".into()],
                    tastes: vec!["微辣".into(), "不要香菜".into()],
                    seat_preference: Some("靠窗".into()),
                    allergies: vec!["花生".into()],
                    tags: vec!["VIP".into(), "常客".into()],
                    notes: Some("喜欢安静,\n生日送长寿面".into()),
                    lifecycle_stage: Some("loyal".into()),
                    ..input("张伟")
                },
            )
            .await
            .unwrap();
        let friend = app
            .create_customer(
                actor,
                &CustomerInput {
                    phone: Some("13900139000".into()),
                    referred_by: Some(member.id.to_string()),
                    lifecycle_stage: Some("lost".into()),
                    churn_reason: Some("moved".into()),
                    churn_note: Some("搬去北京".into()),
                    marketing_consent: Some(false),
                    ..input("Anna Müller")
                },
            )
            .await
            .unwrap();
        let twin = |phone: &str| CustomerInput {
            phone: Some(phone.into()),
            birthday: Some("1990-01-01".into()),
            ..input("李娜")
        };
        let keep = app
            .create_customer(actor, &twin("13700137000"))
            .await
            .unwrap();
        let dup = app
            .create_customer(actor, &twin("13700137001"))
            .await
            .unwrap();
        let (keep, _) = app.merge_customers(actor, keep.id, dup.id).await.unwrap();
        vec![org, member, friend, keep]
    }

    /// Exports tenant alpha, imports the file into a new tenant and compares.
    async fn round_trip(format: ExportFormat, file: &str) {
        let (dir, app, alpha) = test_support::app().await;
        let originals = sample(&app, &alpha).await;
        let path = dir.path().join(file);
        let last = AtomicU64::new(u64::MAX);
        let n = app
            .export_customers(&alpha, &path, format, &|n| last.store(n, Ordering::Relaxed))
            .await
            .unwrap();
        assert_eq!(n, 4, "the merged record is left out");
        assert_eq!(last.load(Ordering::Relaxed), 4);
        assert!(!temp_path(&path).exists());

        let beta = test_support::tenant(&app, "beta").await;
        let report = app
            .import_customers(
                &beta,
                &path,
                ImportOptions::default(),
                &|_: ImportProgress| {},
            )
            .await
            .unwrap();
        assert_eq!(report.rejected, vec![], "{file}");
        assert_eq!((report.rows, report.imported), (4, 4));

        let imported = app
            .storage
            .customers_after(beta.tenant_id, None, 100)
            .await
            .unwrap();
        let by_name: HashMap<&str, &Customer> = imported
            .iter()
            .map(|c| (c.profile.name.as_str(), c))
            .collect();
        let new_id: HashMap<CustomerId, CustomerId> = originals
            .iter()
            .map(|o| (o.id, by_name[o.profile.name.as_str()].id))
            .collect();
        for o in &originals {
            let got = by_name[o.profile.name.as_str()];
            let expect = CustomerProfile {
                id_document: None,
                organization_id: o.profile.organization_id.map(|i| new_id[&i]),
                referred_by: o.profile.referred_by.map(|i| new_id[&i]),
                ..o.profile.clone()
            };
            assert_eq!(got.profile, expect, "{file}: {}", o.profile.name);
            assert_eq!(
                got.marketing_consent_at.is_some(),
                o.profile.marketing_consent
            );
        }
    }

    #[tokio::test]
    async fn csv_export_imports_again() {
        round_trip(ExportFormat::Csv, "customers.csv").await;
    }

    #[tokio::test]
    async fn xlsx_export_imports_again() {
        round_trip(ExportFormat::Xlsx, "customers.xlsx").await;
    }

    #[tokio::test]
    async fn csv_has_a_bom_english_headers_and_only_the_masked_id() {
        let (dir, app, actor) = test_support::app().await;
        sample(&app, &actor).await;
        let path = dir.path().join("c.csv");
        app.export_customers(&actor, &path, ExportFormat::Csv, &|_| {})
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        assert!(
            header.starts_with("\u{feff}id,name,phone,gender,birthday,age_band,"),
            "{header}"
        );
        assert!(header.contains(",id_document_kind,id_number_masked,email,"));
        assert!(!header.contains(",id_number,"));
        assert!(text.contains("110***********002X"));
        assert!(!text.contains("11010519491231002X"));
        assert!(text.contains("红烧肉;清蒸鲈鱼"));
    }

    #[tokio::test]
    async fn xlsx_phones_are_text() {
        use calamine::{Data, Reader, Xlsx, open_workbook};
        let (dir, app, actor) = test_support::app().await;
        sample(&app, &actor).await;
        let path = dir.path().join("c.xlsx");
        app.export_customers(&actor, &path, ExportFormat::Xlsx, &|_| {})
            .await
            .unwrap();
        let mut book: Xlsx<_> = open_workbook(&path).unwrap();
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        assert_eq!(range.get((0, 2)), Some(&Data::String("phone".into())));
        let phones: Vec<&Data> = range.rows().skip(1).map(|r| &r[2]).collect();
        assert!(
            phones.contains(&&Data::String("13800138000".into())),
            "{phones:?}"
        );
    }

    #[tokio::test]
    async fn pages_through_every_customer() {
        let (dir, app, actor) = test_support::app().await;
        let ctx = app.validation_context();
        let profiles: Vec<CustomerProfile> = (0..2500)
            .map(|i| {
                CustomerInput {
                    phone: Some(format!("138{i:08}")),
                    ..input(&format!("客户{i}"))
                }
                .validate(ctx, None)
                .unwrap()
            })
            .collect();
        app.create_customers_bulk(&actor, profiles, None)
            .await
            .unwrap();
        let path = dir.path().join("all.csv");
        let calls = AtomicU64::new(0);
        let n = app
            .export_customers(&actor, &path, ExportFormat::Csv, &|_| {
                calls.fetch_add(1, Ordering::Relaxed);
            })
            .await
            .unwrap();
        assert_eq!(n, 2500);
        assert!(calls.load(Ordering::Relaxed) >= 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2501);
    }
}
