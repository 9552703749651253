//! Static files (CSS, JS, vendored htmx, ECharts and the Noto Sans SC font) embedded in the binary: nothing is
//! fetched from a CDN, at run time or at build time.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/static"]
struct Static;

#[derive(RustEmbed)]
#[folder = "assets/vendor"]
#[include = "htmx/*.js"]
#[include = "echarts/*.js"]
#[include = "fonts/*.css"]
#[include = "fonts/files/*.woff2"]
struct Vendor;

pub async fn serve(Path(path): Path<String>) -> Response {
    let file = match path.strip_prefix("vendor/") {
        Some(p) => Vendor::get(p),
        None => Static::get(&path),
    };
    let Some(file) = file else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mime = match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    };
    let mut res = file.data.into_owned().into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // Vendored files change only with their version; ours may change with a release.
    let cache = if path.starts_with("vendor/") {
        "public, max-age=604800"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}
