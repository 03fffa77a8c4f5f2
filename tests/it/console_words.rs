//! Every console page speaks Chinese to a Chinese user: a crawl from the overview through every
//! console link, signed in as an admin of a brand with data on each page, fails on any visible
//! ASCII word that is not a number, an id, an address or one of a short list of names the trade
//! writes in Latin letters (GMV, RFM, SKU …). A code word (`tmall`, `vip`, `contact_added`,
//! `siyu:lc:1`) shown to a person fails it.

use std::collections::{BTreeSet, VecDeque};

use crate::common::{self, Backend, TestServer, no_redirects};

/// Names written in Latin letters in Chinese operations teams' own words, and the names of the
/// fields WeCom's and the platforms' admin pages print (an operator copies them across).
const ALLOWED: &[&str] = &[
    // The product's name.
    "Siyu",
    "GMV",
    "RFM",
    "R",
    "F",
    "M",
    "SKU",
    "SOP",
    "POS",
    "CSV",
    "GBK",
    "PDF",
    "PNG",
    "SVG",
    "QR",
    "API",
    "H5",
    "ID",
    "OneID",
    "UTC",
    "VIP",
    "CorpID",
    "Secret",
    "Token",
    "EncodingAESKey",
    "AppKey",
    "AppSecret",
    "kdt_id",
    // The language switch names the other language in that language.
    "English",
    // The seeded brand's ids: its WeCom staff (the names WeCom knows them by) and its admin's
    // sign-in name.
    "ba_li",
    "ba_zhao",
    "admin",
];

/// The visible text of a page: text between tags and the attributes a person reads, without
/// scripts, styles and comments.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        out.push(' ');
        rest = &rest[lt..];
        let lower = rest.get(..9).unwrap_or(rest).to_ascii_lowercase();
        let skip_to = if rest.starts_with("<!--") {
            Some("-->")
        } else if lower.starts_with("<script") {
            Some("</script>")
        } else if lower.starts_with("<style") {
            Some("</style>")
        } else {
            None
        };
        if let Some(end) = skip_to {
            let at = rest.find(end).map_or(rest.len(), |i| i + end.len());
            rest = &rest[at..];
            continue;
        }
        let gt = rest.find('>').map_or(rest.len(), |i| i + 1);
        let tag = &rest[..gt];
        for attr in ["placeholder=\"", "title=\"", "alt=\"", "aria-label=\""] {
            if let Some(i) = tag.find(attr) {
                let v = &tag[i + attr.len()..];
                out.push_str(v.split('"').next().unwrap_or(""));
                out.push(' ');
            }
        }
        rest = &rest[gt..];
    }
    out.push_str(rest);
    unescape(&out)
}

/// HTML's character references, as a browser reads them (`&amp;`, `&#38;`, `&#x27;` …).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The ASCII words of a text a Chinese reader would not understand.
fn code_words(text: &str) -> Vec<String> {
    let word_char = |c: char| c.is_ascii_alphanumeric() || "_:.-/@+=?&%#".contains(c);
    text.split(|c: char| !word_char(c))
        .filter(|w| !(w.contains("://") || w.starts_with('/')))
        .map(|w| w.trim_matches(|c: char| ".:-/=".contains(c)))
        .filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()))
        .filter(|w| {
            let id_like = w.chars().any(|c| c.is_ascii_digit()) && !w.contains(':');
            // A time zone as the policy writes it: UTC+08:00.
            let offset = w
                .strip_prefix("UTC")
                .is_some_and(|o| o.chars().all(|c| c.is_ascii_digit() || "+-:".contains(c)));
            !(id_like || offset || ALLOWED.contains(w))
        })
        .map(str::to_owned)
        .collect()
}

/// The console pages a page links to.
fn console_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(unescape)
        .filter(|h| h.starts_with("/console/"))
        .filter(|h| {
            let path = h.split(['?', '#']).next().unwrap_or("");
            !(path.starts_with("/console/lang/")
                || path == "/console/logout"
                || path.starts_with("/console/assets/")
                || [".csv", ".pdf", ".png", ".svg", ".json"]
                    .iter()
                    .any(|x| path.ends_with(x)))
        })
        .map(|h| h.split('#').next().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_speaks_chinese() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (tenant, user, password) = crate::console_e2e::seed(&s).await;
    let c = no_redirects();
    let cookie = common::console_session(&c, &s, &tenant, &user, &password).await;

    let mut queue = VecDeque::from(["/console/overview".to_owned()]);
    let mut seen = BTreeSet::new();
    // Each path once with each query shape, so that paging does not walk every page.
    let mut shapes = BTreeSet::new();
    let mut found = Vec::new();
    while let Some(url) = queue.pop_front() {
        let path = url.split('?').next().unwrap_or("").to_owned();
        let keys: Vec<&str> = url
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .map(|kv| kv.split('=').next().unwrap_or(""))
                    .collect()
            })
            .unwrap_or_default();
        if !seen.insert(url.clone()) || !shapes.insert(format!("{path}?{keys:?}")) {
            continue;
        }
        let r = c
            .get(s.url(&url))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("page");
        let status = r.status();
        let html = r.text().await.expect("text");
        assert!(
            status.is_success() || status.is_redirection(),
            "{url}: {status}"
        );
        for w in code_words(&visible_text(&html)) {
            found.push(format!("{url}: {w}"));
        }
        queue.extend(console_links(&html));
        assert!(seen.len() < 400, "the crawl does not end: {seen:?}");
    }
    assert!(seen.len() >= 12, "the crawl reached only {seen:?}");
    found.sort();
    found.dedup();
    assert!(
        found.is_empty(),
        "{} code words on {} pages:\n{}",
        found.len(),
        seen.len(),
        found.join("\n")
    );
}

#[test]
fn code_words_are_told_from_numbers_ids_and_names() {
    let t = visible_text(
        "<p title=\"tmall\">GMV ¥1,299.00 订单 T-1 <b>vip</b></p><script>var general=1</script>\
         <a href=\"/x\">http://127.0.0.1:8080/callbacks/wecom/1</a> siyu:lc:3 contact_added",
    );
    assert_eq!(
        code_words(&t),
        vec!["tmall", "vip", "siyu:lc:3", "contact_added"]
    );
}
