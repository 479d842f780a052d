//! The operator dashboard: a small browser app served at `/`.
//!
//! The app is plain ES modules and CSS with no build step, embedded in the binary with
//! `include_bytes!`, so running the server needs neither Node nor files beside the binary.
//! It calls the JSON API under `/v1` with the bearer token the user pastes on its sign-in
//! screen, so the API's tokens and roles apply unchanged. These routes serve static files
//! only: they take no token and reveal nothing; they are not API routes, so they are not in
//! [`crate::api::routes`] or the OpenAPI document.

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The URL path it is served at.
    pub path: &'static str,
    /// Its file name under `assets/`.
    pub file: &'static str,
    /// Its `Content-Type`.
    pub mime: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $mime:expr) => {
        Asset {
            path: $path,
            file: $file,
            mime: $mime,
            body: include_bytes!(concat!("assets/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the app. The page is `/`; everything it loads lives under `/ui/`.
pub const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/ui/app.css", "app.css", "text/css; charset=utf-8"),
    asset!("/ui/favicon.svg", "favicon.svg", "image/svg+xml"),
    asset!("/ui/app.js", "app.js", JS),
    asset!("/ui/api.js", "api.js", JS),
    asset!("/ui/dom.js", "dom.js", JS),
    asset!("/ui/poll.js", "poll.js", JS),
    asset!("/ui/signin.js", "signin.js", JS),
    asset!("/ui/board.js", "board.js", JS),
    asset!("/ui/inbox.js", "inbox.js", JS),
    asset!("/ui/instance.js", "instance.js", JS),
    asset!("/ui/graph.js", "graph.js", JS),
    asset!("/ui/workflows.js", "workflows.js", JS),
    asset!("/ui/jsonmap.js", "jsonmap.js", JS),
    asset!("/ui/plugins.js", "plugins.js", JS),
    asset!("/ui/schedules.js", "schedules.js", JS),
    asset!("/ui/search.js", "search.js", JS),
    asset!("/ui/work.js", "work.js", JS),
    asset!("/ui/figures.js", "figures.js", JS),
    asset!("/ui/steps.js", "steps.js", JS),
    asset!("/ui/live.js", "live.js", JS),
    asset!("/ui/actions.js", "actions.js", JS),
    asset!("/ui/startform.js", "startform.js", JS),
    asset!("/ui/deliveries.js", "deliveries.js", JS),
    asset!("/ui/progresslink.js", "progresslink.js", JS),
    // The customer's progress page (issue 16): public, no token, its own small script.
    asset!("/p/{token}", "progress.html", "text/html; charset=utf-8"),
    asset!("/ui/progress.js", "progress.js", JS),
    asset!("/ui/branches.js", "branches.js", JS),
    asset!("/ui/family.js", "family.js", JS),
];

/// The page may load and call only this origin; nothing inline runs, and no other site may
/// frame it. The token lives in `sessionStorage`, so keeping scripts to our own files is
/// what keeps it from leaking.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes, to merge into the application router.
///
/// With `WAYSTATION_DASHBOARD_DIR` set (to `engine/server/src/dashboard/assets`), the same
/// files are read from there on every request instead, so front-end work needs a browser
/// reload, not a rebuild. Only the files listed in [`ASSETS`] are ever served.
pub fn router() -> Router {
    let dir = std::env::var_os("WAYSTATION_DASHBOARD_DIR").map(std::path::PathBuf::from);
    ASSETS.iter().fold(Router::new(), |router, asset| {
        let asset = *asset;
        let etag = etag_of(asset.body);
        let dir = dir.clone();
        router.route(
            asset.path,
            get(move |req: Request| async move {
                match &dir {
                    None => serve(&asset, Bytes::from_static(asset.body), &etag, req.headers()),
                    // Development only, small files: a blocking read is fine here.
                    Some(dir) => match std::fs::read(dir.join(asset.file)) {
                        Ok(body) => {
                            let tag = etag_of(&body);
                            serve(&asset, Bytes::from(body), &tag, req.headers())
                        }
                        Err(_) => StatusCode::NOT_FOUND.into_response(),
                    },
                }
            }),
        )
    })
}

/// A strong validator: the file's SHA-256, so a new binary's files are fetched again and
/// unchanged ones answer 304.
fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", &crate::auth::sha256_hex(body)[..32])
}

fn serve(asset: &Asset, body: Bytes, etag: &str, request: &HeaderMap) -> Response {
    let mut headers = HeaderMap::new();
    let mut set = |name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(header::ETAG, etag);
    // Revalidate every time: a few bytes per file, and an upgraded server is seen at once.
    set(header::CACHE_CONTROL, "no-cache");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    if asset.mime.starts_with("text/html") {
        set(header::CONTENT_SECURITY_POLICY, CSP);
        set(header::X_FRAME_OPTIONS, "DENY");
    }
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(header::CONTENT_TYPE, asset.mime);
    (StatusCode::OK, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn text(asset: &Asset) -> &'static str {
        std::str::from_utf8(asset.body).expect("assets are UTF-8")
    }

    /// Every `import ... from './x.js'` of every module, and every file the page links,
    /// is an embedded asset: a missing file would break the app only in a browser.
    #[test]
    fn every_file_the_app_loads_is_embedded() {
        let served: BTreeSet<&str> = ASSETS.iter().map(|a| a.path).collect();
        let mut wanted = BTreeSet::new();
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for part in text(asset).split(" from '").skip(1) {
                let name = part.split('\'').next().unwrap_or_default();
                let name = name.strip_prefix("./").expect("imports are relative");
                wanted.insert(format!("/ui/{name}"));
            }
        }
        for page in ASSETS.iter().filter(|a| a.mime.starts_with("text/html")) {
            for part in text(page).split("=\"/ui/").skip(1) {
                wanted.insert(format!(
                    "/ui/{}",
                    part.split('"').next().unwrap_or_default()
                ));
            }
        }
        assert!(wanted.contains("/ui/app.js"), "the page loads the app");
        for path in &wanted {
            assert!(served.contains(path.as_str()), "{path} is not embedded");
        }
        let unused: Vec<_> = served
            .iter()
            .filter(|p| **p != "/" && !p.starts_with("/p/") && !wanted.contains(**p))
            .collect();
        assert!(unused.is_empty(), "embedded but never loaded: {unused:?}");
    }

    /// Nothing inline: the content security policy forbids inline scripts and styles.
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        for page in ASSETS.iter().filter(|a| a.mime.starts_with("text/html")) {
            let page = text(page);
            assert!(!page.contains("<style"), "no <style> in the page");
            assert!(!page.contains(" style="), "no style attributes in the page");
        }
        let page = text(&ASSETS[0]);
        assert!(!page.contains("<style"), "no <style> in the page");
        assert!(!page.contains(" style="), "no style attributes in the page");
        for part in page.split("<script").skip(1) {
            assert!(part.trim_start().starts_with("type=\"module\" src="));
        }
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            assert!(
                !text(asset).contains("innerHTML"),
                "{} builds the DOM from nodes, never from HTML strings",
                asset.path
            );
        }
    }

    /// A raw HTTP/1.1 GET, so the test needs no client crate.
    async fn get_raw(addr: std::net::SocketAddr, path: &str, extra: &str) -> String {
        use std::io::{Read, Write};
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{extra}\r\n");
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut out = Vec::new();
            stream.read_to_end(&mut out).unwrap();
            String::from_utf8_lossy(&out).into_owned()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn serves_the_page_with_its_policy_and_answers_304_when_unchanged() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router()).await });

        let page = get_raw(addr, "/", "").await.to_ascii_lowercase();
        assert!(page.starts_with("http/1.1 200"), "{page}");
        assert!(page.contains("content-type: text/html"));
        assert!(page.contains("content-security-policy: default-src 'none'"));
        assert!(page.contains("<script type=\"module\" src=\"/ui/app.js\">"));

        let js = get_raw(addr, "/ui/app.js", "").await;
        assert!(js.starts_with("HTTP/1.1 200"));
        assert!(js.contains("content-type: text/javascript"));
        let tag = js
            .lines()
            .find_map(|l| l.strip_prefix("etag: "))
            .expect("an etag")
            .to_owned();
        let again = get_raw(addr, "/ui/app.js", &format!("if-none-match: {tag}\r\n")).await;
        assert!(again.starts_with("HTTP/1.1 304"), "{again}");
    }
}
