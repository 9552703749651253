//! Pagination parameters shared by every list.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 500;

/// Page number (from 1) and page size, clamped to sane bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, IntoParams, ToSchema)]
pub struct PageRequest {
    #[serde(default = "one")]
    pub page: u32,
    #[serde(default = "default_per_page")]
    pub per_page: u32,
}

fn one() -> u32 {
    1
}
fn default_per_page() -> u32 {
    DEFAULT_PER_PAGE
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl PageRequest {
    pub fn new(page: u32, per_page: u32) -> Self {
        Self { page, per_page }.clamped()
    }
    pub fn clamped(self) -> Self {
        Self {
            page: self.page.max(1),
            per_page: self.per_page.clamp(1, MAX_PER_PAGE),
        }
    }
    pub fn limit(self) -> i64 {
        i64::from(self.clamped().per_page)
    }
    pub fn offset(self) -> i64 {
        let p = self.clamped();
        i64::from(p.page - 1) * i64::from(p.per_page)
    }
}

/// One page of results; `has_more` tells whether a next page exists (no costly count).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `per_page + 1` fetched rows.
    pub fn from_overfetch(mut rows: Vec<T>, req: PageRequest) -> Self {
        let req = req.clamped();
        let has_more = rows.len() > req.per_page as usize;
        rows.truncate(req.per_page as usize);
        Page {
            items: rows,
            page: req.page,
            per_page: req.per_page,
            has_more,
        }
    }
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            per_page: self.per_page,
            has_more: self.has_more,
        }
    }
}
