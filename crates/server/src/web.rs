//! The web client, embedded in the binary so the release binary alone
//! serves it: the page (`web/`), the client package it is built on
//! (`sdk/js/`, under `/sdk/`, importable by any page on this origin) and the
//! minimal example page (`/examples/minimal.html`).

use axum::{http::header, routing::get, Router};

const ADMIN: &str = include_str!("../../../web/admin.html");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One embedded file: its route, content type and body.
macro_rules! asset {
    ($route:literal, $ctype:expr, $file:literal) => {
        ($route, $ctype, include_str!(concat!("../../../", $file)))
    };
}

/// Every file served, by route. A new module in `web/` or `sdk/js/src/`
/// needs a line here (the page fails to load without it, which the e2e
/// suite notices).
const ASSETS: &[(&str, &str, &str)] = &[
    asset!("/", HTML, "web/index.html"),
    asset!("/index.html", HTML, "web/index.html"),
    asset!("/style.css", CSS, "web/style.css"),
    asset!("/app.js", JS, "web/app.js"),
    asset!("/ui/view.js", JS, "web/ui/view.js"),
    asset!("/ui/knobs.js", JS, "web/ui/knobs.js"),
    asset!("/ui/figures.js", JS, "web/ui/figures.js"),
    asset!("/ui/draw.js", JS, "web/ui/draw.js"),
    asset!("/sdk/index.js", JS, "sdk/js/index.js"),
    asset!("/sdk/src/backoff.js", JS, "sdk/js/src/backoff.js"),
    asset!("/sdk/src/client.js", JS, "sdk/js/src/client.js"),
    asset!("/sdk/src/codes.js", JS, "sdk/js/src/codes.js"),
    asset!("/sdk/src/emitter.js", JS, "sdk/js/src/emitter.js"),
    asset!("/sdk/src/f16.js", JS, "sdk/js/src/f16.js"),
    asset!("/sdk/src/jitter.js", JS, "sdk/js/src/jitter.js"),
    asset!("/sdk/src/knobs.js", JS, "sdk/js/src/knobs.js"),
    asset!("/sdk/src/machine.js", JS, "sdk/js/src/machine.js"),
    asset!("/sdk/src/player.js", JS, "sdk/js/src/player.js"),
    asset!("/sdk/src/slice.js", JS, "sdk/js/src/slice.js"),
    asset!("/sdk/src/worklet.js", JS, "sdk/js/src/worklet.js"),
    asset!("/examples/minimal.html", HTML, "examples/minimal.html"),
];

/// `GET /` and the client's assets.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(route, ctype, body)| {
            router.route(
                route,
                get(move || async move {
                    (
                        [
                            (header::CONTENT_TYPE, ctype),
                            (header::CACHE_CONTROL, "no-cache"),
                        ],
                        body,
                    )
                }),
            )
        })
}

/// `GET /admin` on the admin listener: the operator's page.
pub(crate) async fn admin_page() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HTML),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        ADMIN,
    )
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Module specifiers a served file loads: `from '…'`, `import '…'` and
    /// `new URL('…', import.meta.url)` (the worklet).
    fn specifiers(body: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for marker in ["from '", "import '", "new URL('"] {
            let mut rest = body;
            while let Some(i) = rest.find(marker) {
                rest = &rest[i + marker.len()..];
                if let Some(end) = rest.find('\'') {
                    out.push(&rest[..end]);
                }
            }
        }
        out
    }

    /// Resolves a relative specifier against the route that holds it.
    fn resolve(base: &str, spec: &str) -> String {
        if spec.starts_with('/') {
            return spec.to_owned();
        }
        let mut parts: Vec<&str> = base.split('/').collect();
        parts.pop(); // the file itself
        for seg in spec.split('/') {
            match seg {
                "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        parts.join("/")
    }

    #[test]
    fn every_module_a_served_file_imports_is_served() {
        let routes: Vec<&str> = ASSETS.iter().map(|a| a.0).collect();
        let mut checked = 0;
        for &(route, _, body) in ASSETS {
            for spec in specifiers(body) {
                if !(spec.starts_with('.') || spec.starts_with('/')) || !spec.ends_with(".js") {
                    continue;
                }
                let target = resolve(route, spec);
                assert!(
                    routes.contains(&target.as_str()),
                    "{route} loads {spec} ({target}), which is not served: add it to ASSETS"
                );
                checked += 1;
            }
        }
        assert!(
            checked > 20,
            "only {checked} imports found: the scan is broken"
        );
    }

    #[test]
    fn routes_are_unique() {
        let mut routes: Vec<&str> = ASSETS.iter().map(|a| a.0).collect();
        routes.sort_unstable();
        let n = routes.len();
        routes.dedup();
        assert_eq!(routes.len(), n);
    }
}
