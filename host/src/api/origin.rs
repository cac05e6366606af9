//! Who may call: the API serves its owner's tools (curl, scripts, `ctl`, the dashboard it
//! serves itself), never a web page of another site that happens to be open in the owner's
//! browser.
//!
//! A browser lets any page send a "simple" request (`POST` with `Content-Type: text/plain`,
//! no preflight) to `http://127.0.0.1:5001`, and with DNS rebinding (a name the attacker
//! controls, pointed at 127.0.0.1 after the page loaded) it can even read the answers. What
//! gives such a request away is what the browser adds and the page cannot remove:
//!
//! - `Origin`: sent on every cross-origin request and every `POST`/`DELETE`; it must be this
//!   API's own origin (`null`, sent by sandboxed frames and `file://` pages, is refused);
//! - `Sec-Fetch-Site`: only `same-origin` and `none` (the user typed the address) pass; ports
//!   do not separate sites, so `same-site` is another local service's page and is refused;
//! - `Host`: while the API listens on loopback only, it must be a loopback name or address;
//!   any other name is a rebinding.
//!
//! Clients that send none of these (curl, scripts, the original's users) are not affected.
//! The check runs before routing (see [`super::front`]), so every route, present and
//! future, is covered without opting in. It reads the headers in place: a request with a
//! `Host` such as `127.0.0.1:5001` or `localhost:5001` and no `Origin` (every request of a
//! tool) is passed without allocating.

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};
use warp::http::StatusCode;
use warp::http::header::{HOST, HeaderMap, ORIGIN};

use super::error::Failure;

/// What the API knows about itself to tell its own requests from other sites': the address
/// it listens on.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    bound: SocketAddr,
}

impl Site {
    /// The site of an API listening on `bound`.
    pub fn new(bound: SocketAddr) -> Site {
        Site { bound }
    }

    /// The address the API is bound to (`0.0.0.0:5001` for every IPv4 address).
    pub fn bound(&self) -> SocketAddr {
        self.bound
    }

    /// True when only this machine can connect: then a `Host` naming anything but loopback
    /// can only come from a rebinding browser.
    pub fn loopback_only(&self) -> bool {
        is_loopback_ip(self.bound.ip())
    }
}

impl Default for Site {
    /// Loopback, the default binding (port unknown): the strictest checks.
    fn default() -> Self {
        Site::new(SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

/// Passes a request from the owner's tools or from this API's own pages; 403 (with the
/// reason) for one a browser sends on behalf of another site.
pub fn check(site: &Site, headers: &HeaderMap) -> Result<(), Failure> {
    let host = single(headers, HOST.as_str())?;
    if let Some(value) = host {
        // What tools send is decided without parsing a URL; anything else is parsed.
        let loopback = match plain_host_is_loopback(value) {
            Some(loopback) => loopback,
            None => is_loopback_host(&host_origin(value)?),
        };
        if site.loopback_only() && !loopback {
            return Err(refused(format!(
                "Host '{}' is not a loopback name: this API listens on loopback only; \
                 use 127.0.0.1, [::1] or localhost.",
                authority(&host_origin(value)?)
            )));
        }
    }
    if let Some(fetch) = single(headers, "sec-fetch-site")? {
        let fetch = fetch.to_str().unwrap_or("");
        if !(fetch.eq_ignore_ascii_case("same-origin") || fetch.eq_ignore_ascii_case("none")) {
            return Err(refused(format!(
                "Sec-Fetch-Site '{}': a page of another site may not call this API.",
                printable(fetch.as_bytes())
            )));
        }
    }
    if let Some(origin) = single(headers, ORIGIN.as_str())? {
        let own = match host {
            Some(value) => host_origin(value)?,
            None => Origin::of(site.bound),
        };
        let given = origin.to_str().ok().and_then(parse_origin);
        if given.as_ref() != Some(&own) {
            return Err(refused(format!(
                "Origin '{}' is not this API's origin ({}): a page of another site may not \
                 call this API.",
                printable(origin.as_bytes()),
                own.url()
            )));
        }
    }
    Ok(())
}

/// The origin `Host: <value>` names, or the 403 for a value that is not a host name.
fn host_origin(value: &warp::http::HeaderValue) -> Result<Origin, Failure> {
    parse_host(value).ok_or_else(|| {
        refused(format!(
            "Host '{}' is not a host name.",
            printable(value.as_bytes())
        ))
    })
}

/// Whether a `Host` value of the plain forms tools send (`127.0.0.1`, `[::1]` or
/// `localhost`, each with an optional port) is loopback; `None` for any other form, which
/// [`parse_host`] then reads as a URL parser would. Allocates nothing.
fn plain_host_is_loopback(value: &warp::http::HeaderValue) -> Option<bool> {
    let text = value.to_str().ok()?.trim();
    // The host, and what follows it: nothing or `:<port>`.
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?,
        None => {
            let end = text.find(':').unwrap_or(text.len());
            text.split_at(end)
        }
    };
    if !port.is_empty() {
        let digits = port.strip_prefix(':')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u16>().ok()?;
    }
    if text.starts_with('[') {
        return Some(is_loopback_ip(IpAddr::V6(host.parse().ok()?)));
    }
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
        return Some(true);
    }
    // Only the dotted quad: the shorthand forms a URL parser also reads (`127.1`,
    // `0x7f.0.0.1`) go the long way.
    let ip: std::net::Ipv4Addr = host.parse().ok()?;
    Some(ip.is_loopback())
}

/// The value of a header that must appear at most once; two are refused rather than
/// guessed between (a client and a proxy may read different ones).
fn single<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a warp::http::HeaderValue>, Failure> {
    let mut all = headers.get_all(name).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(refused(format!("More than one {name} header.")));
    }
    Ok(first)
}

fn refused(message: String) -> Failure {
    Failure::new(StatusCode::FORBIDDEN, format!("Request refused: {message}"))
}

/// A web origin: scheme, host and port (the port always explicit).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: Host<String>,
    port: u16,
}

impl Origin {
    fn of(addr: SocketAddr) -> Origin {
        Origin {
            scheme: "http".into(),
            host: match addr.ip() {
                IpAddr::V4(ip) => Host::Ipv4(ip),
                IpAddr::V6(ip) => Host::Ipv6(ip),
            },
            port: addr.port(),
        }
    }

    fn url(&self) -> String {
        format!("{}://{}", self.scheme, authority(self))
    }
}

/// `host:port` as a URL writes it (`[::1]:5001`).
fn authority(o: &Origin) -> String {
    format!("{}:{}", o.host, o.port)
}

/// The origin a browser means by `Host: <value>`: `http://<value>`. Only what a host and
/// port may contain is accepted, so a value like `evil@127.0.0.1` cannot turn into
/// another host when parsed as a URL.
fn parse_host(value: &warp::http::HeaderValue) -> Option<Origin> {
    let text = value.to_str().ok()?.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:[]".contains(c);
    if text.is_empty() || !text.chars().all(allowed) {
        return None;
    }
    parse_origin(&format!("http://{text}"))
}

/// An `Origin` header's value (`scheme://host[:port]`, nothing more); `None` for anything
/// else, `null` included.
fn parse_origin(text: &str) -> Option<Origin> {
    let url = Url::parse(text.trim()).ok()?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        // `Url` adds the `/`; an origin never has one.
        && !text.trim().ends_with('/');
    if !bare || !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = match url.host()? {
        Host::Domain(d) => Host::Domain(d.trim_end_matches('.').to_ascii_lowercase()),
        Host::Ipv4(ip) => Host::Ipv4(ip),
        Host::Ipv6(ip) => Host::Ipv6(ip),
    };
    Some(Origin {
        scheme: url.scheme().to_string(),
        host,
        port: url.port_or_known_default()?,
    })
}

fn is_loopback_host(o: &Origin) -> bool {
    match &o.host {
        // Only the name itself: `*.localhost` is loopback in browsers but not in every
        // resolver, and nothing needs it.
        Host::Domain(d) => d == "localhost",
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => is_loopback_ip(IpAddr::V6(*ip)),
    }
}

fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// A header value as it may be shown in a message: printable ASCII, the rest escaped, cut
/// at 100 characters.
fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(100) {
        if (0x20..0x7f).contains(&b) && b != b'\'' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > 100 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                warp::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn loopback() -> Site {
        Site::new("127.0.0.1:5001".parse().unwrap())
    }

    fn any() -> Site {
        Site::new("0.0.0.0:5001".parse().unwrap())
    }

    fn passes(site: &Site, pairs: &[(&str, &str)]) -> bool {
        check(site, &headers(pairs)).is_ok()
    }

    #[test]
    fn tools_without_browser_headers_pass() {
        assert!(passes(&loopback(), &[]));
        assert!(passes(&loopback(), &[("host", "127.0.0.1:5001")]));
        assert!(passes(&loopback(), &[("host", "localhost:5001")]));
        assert!(passes(&loopback(), &[("host", "[::1]:5001")]));
        assert!(passes(&loopback(), &[("host", "127.0.0.2")]));
        assert!(passes(&loopback(), &[("host", "LOCALHOST.:5001")]));
        assert!(passes(&any(), &[("host", "build-42.internal:5001")]));
    }

    #[test]
    fn own_pages_pass() {
        for (host, origin) in [
            ("127.0.0.1:5001", "http://127.0.0.1:5001"),
            ("localhost:5001", "http://localhost:5001"),
            ("[::1]:5001", "http://[::1]:5001"),
            // Through a forwarded port the browser's origin is the forwarded one.
            ("localhost:8080", "http://LocalHost:8080"),
            ("127.0.0.1", "http://127.0.0.1:80"),
        ] {
            let h = [
                ("host", host),
                ("origin", origin),
                ("sec-fetch-site", "same-origin"),
            ];
            assert!(passes(&loopback(), &h), "{host} {origin}");
        }
        assert!(passes(
            &any(),
            &[("host", "ci-box:5001"), ("origin", "http://ci-box:5001")]
        ));
        assert!(passes(&loopback(), &[("sec-fetch-site", "none")]));
        // No Host (HTTP/1.0): the origin is compared with the address bound.
        assert!(passes(&loopback(), &[("origin", "http://127.0.0.1:5001")]));
    }

    #[test]
    fn other_sites_are_refused() {
        let site = loopback();
        for pairs in [
            vec![
                ("host", "127.0.0.1:5001"),
                ("origin", "http://evil.example"),
            ],
            vec![("host", "127.0.0.1:5001"), ("origin", "null")],
            vec![
                ("host", "127.0.0.1:5001"),
                ("origin", "http://127.0.0.1:5002"),
            ],
            vec![
                ("host", "127.0.0.1:5001"),
                ("origin", "https://127.0.0.1:5001"),
            ],
            vec![
                ("host", "127.0.0.1:5001"),
                ("origin", "http://localhost:5001"),
            ],
            vec![
                ("host", "127.0.0.1:5001"),
                ("origin", "http://127.0.0.1:5001/"),
            ],
            vec![("host", "127.0.0.1:5001"), ("origin", "")],
            vec![("host", "127.0.0.1:5001"), ("sec-fetch-site", "cross-site")],
            vec![("host", "127.0.0.1:5001"), ("sec-fetch-site", "same-site")],
            vec![("host", "evil.example:5001")],
            vec![
                ("host", "evil.example:5001"),
                ("origin", "http://evil.example:5001"),
            ],
            vec![("host", "localhost.evil.example")],
            vec![("host", "app.localhost:5001")],
            vec![("host", "evil.example@127.0.0.1:5001")],
            vec![("host", "127.0.0.1:5001/x")],
            vec![("host", "10.0.0.5:5001")],
            vec![("host", "127.0.0.1:5001"), ("host", "evil.example")],
            vec![
                ("origin", "http://127.0.0.1:5001"),
                ("origin", "http://evil.example"),
            ],
        ] {
            let got = check(&site, &headers(&pairs));
            let f = got.expect_err(&format!("{pairs:?} passed"));
            assert_eq!(f.status, StatusCode::FORBIDDEN);
            assert!(f.message.starts_with("Request refused: "), "{}", f.message);
        }
        // Bound to every interface, a foreign Host is normal, a foreign Origin is not.
        assert!(!passes(
            &any(),
            &[("host", "ci-box:5001"), ("origin", "http://evil.example")]
        ));
    }

    #[test]
    fn messages_name_what_was_refused() {
        let f = check(&loopback(), &headers(&[("host", "evil.example:5001")])).unwrap_err();
        assert_eq!(
            f.message,
            "Request refused: Host 'evil.example:5001' is not a loopback name: this API \
             listens on loopback only; use 127.0.0.1, [::1] or localhost."
        );
        let f = check(
            &loopback(),
            &headers(&[
                ("host", "127.0.0.1:5001"),
                ("origin", "http://evil.example"),
            ]),
        )
        .unwrap_err();
        assert_eq!(
            f.message,
            "Request refused: Origin 'http://evil.example' is not this API's origin \
             (http://127.0.0.1:5001): a page of another site may not call this API."
        );
    }

    #[test]
    fn the_plain_forms_are_read_as_the_url_parser_reads_them() {
        for value in [
            "127.0.0.1",
            "127.0.0.1:5001",
            "127.9.9.9:1",
            "10.0.0.5:5001",
            "[::1]:5001",
            "[::1]",
            "[::ffff:127.0.0.1]:80",
            "[2001:db8::1]:80",
            "localhost",
            "LocalHost:5001",
            "localhost.:5001",
        ] {
            let v = HeaderValue::from_str(value).unwrap();
            let quick = plain_host_is_loopback(&v);
            let parsed = parse_host(&v).map(|o| is_loopback_host(&o));
            assert!(quick.is_some(), "{value} takes the quick way");
            assert_eq!(quick, parsed, "{value}");
        }
        // The forms only a URL parser reads, and what is no host at all, go the long way.
        for value in [
            "127.1",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "127.0.0.1:5001:1",
            "evil.example:5001",
            "evil@127.0.0.1",
            "[::1",
            "[::1]x",
            "",
        ] {
            let v = HeaderValue::from_str(value).unwrap();
            assert_eq!(plain_host_is_loopback(&v), None, "{value}");
        }
    }

    #[test]
    fn unprintable_values_are_escaped() {
        assert_eq!(printable(b"a'\x01b"), "a\\x27\\x01b");
    }
}
