//! The dashboard: one page, served from the binary, that shows every process live and acts
//! on them through the API itself (the event stream, followed logs, the commands).
//!
//! The page, its script and its style are small hand-written files compiled in (`ui/`): no
//! build step, nothing fetched from elsewhere, so the page works offline and always matches
//! the binary that serves it. They hold no state and no secret, so they are served without
//! the token, like the OpenAPI description: everything the page shows comes from API calls
//! that need the token as any client's do. A strict Content-Security-Policy (script, style and
//! connections from this origin only, no inline script, no framing) keeps whatever the
//! processes print from ever running as code in the page, which renders it as text only.

use warp::Filter;
use warp::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, HeaderValue, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use warp::path::Tail;
use warp::reject::Rejection;
use warp::reply::Response;

/// One file of the page.
pub struct Asset {
    /// Where it is served.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes, compiled in.
    pub body: &'static str,
}

/// Every file of the dashboard; each is also listed in [`super::routes::ROUTES`].
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/ui/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("ui/index.html"),
    },
    Asset {
        path: "/ui/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("ui/app.js"),
    },
    Asset {
        path: "/ui/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("ui/style.css"),
    },
];

/// What the page may load and who may frame it: only this origin's script, style and
/// connections; images only inline (the icon); no inline script, no plugins, no framing.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// `GET /ui/` and the files it loads; `/ui` (no slash) is the page too, as warp matches
/// paths. Any other path under `/ui/` is an unknown route, any other method a 405.
pub fn routes() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("ui")
        .and(warp::path::tail())
        .and_then(
            |tail: Tail| async move { find(tail.as_str()).ok_or_else(warp::reject::not_found) },
        )
        .and(warp::get())
        .map(response)
}

/// The asset served at `/ui/<tail>`.
fn find(tail: &str) -> Option<&'static Asset> {
    let path = format!("/ui/{tail}");
    ASSETS.iter().find(|a| a.path == path)
}

fn response(asset: &'static Asset) -> Response {
    let mut res = Response::new(asset.body.into());
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // Small files: always revalidated, so a new binary's page is never mixed with an old
    // script from the cache.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Another site cannot even load the script or style as a subresource.
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(path: &str) -> &'static Asset {
        ASSETS.iter().find(|a| a.path == path).unwrap()
    }

    #[test]
    fn every_asset_is_a_listed_route() {
        for a in ASSETS {
            assert!(
                super::super::routes::ROUTES.contains(&("get", a.path)),
                "{} is not in ROUTES",
                a.path
            );
        }
        assert_eq!(find("").map(|a| a.path), Some("/ui/"));
        assert_eq!(find("app.js").map(|a| a.path), Some("/ui/app.js"));
        assert!(find("nope.js").is_none());
        assert!(find("app.js/").is_none());
    }

    #[test]
    fn the_policy_allows_nothing_inline_and_no_framing() {
        assert!(!POLICY.contains("unsafe"), "{POLICY}");
        assert!(POLICY.contains("script-src 'self'"));
        assert!(POLICY.contains("frame-ancestors 'none'"));
        assert!(POLICY.contains("default-src 'none'"));
    }

    /// The policy would block inline script and style anyway; this says which line to fix
    /// instead of leaving a page that silently does nothing.
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = asset("/ui/").body;
        let script = regex::Regex::new(r"(?is)<script\b([^>]*)>").unwrap();
        for tag in script.captures_iter(html) {
            assert!(tag[1].contains("src="), "inline script: {}", &tag[0]);
        }
        assert!(!html.contains("<style"), "inline <style>");
        let handler = regex::Regex::new(r#"(?i)\s(on[a-z]+|style)\s*="#).unwrap();
        assert!(
            handler.find(html).is_none(),
            "inline handler or style attribute: {:?}",
            handler.find(html).map(|m| m.as_str())
        );
        // Every file the page refers to is served.
        let refs = regex::Regex::new(r#"(?:src|href)="(/[^"]*)""#).unwrap();
        for r in refs.captures_iter(html) {
            assert!(
                find(r[1].trim_start_matches("/ui/")).is_some(),
                "{} is not served",
                &r[1]
            );
        }
    }

    /// What the processes print reaches the page as text only: the script never parses
    /// strings as markup or code.
    #[test]
    fn the_script_never_turns_text_into_markup_or_code() {
        let js = asset("/ui/app.js").body;
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute('on",
            "setAttribute('style",
        ] {
            assert!(!js.contains(sink), "app.js uses {sink}");
        }
    }
}
