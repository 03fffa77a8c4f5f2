//! Checking an SMS text before it is sent: 【signature】, opt-out line, advertising-law forbidden
//! words, placeholders and links, and its length in billable parts.

use serde::Serialize;

use super::*;
use crate::acquire::links;

/// Words China's advertising law forbids in ads (absolute claims, medical claims); a tenant adds
/// its own per campaign.
pub const FORBIDDEN_WORDS: &[&str] = &[
    "国家级",
    "世界级",
    "最高级",
    "最佳",
    "第一品牌",
    "顶级",
    "极品",
    "万能",
    "绝对",
    "100%有效",
    "根治",
    "特效",
    "包治",
    "零风险",
    "史无前例",
    "永久",
];

/// Opt-out wordings carriers accept.
pub(super) const OPT_OUT_MARKS: &[&str] = &[
    "拒收请回复R",
    "回T退订",
    "退订回T",
    "回TD退订",
    "退订回TD",
    "回R退订",
    "退订回R",
];

/// Parts past which a text is refused: it is a letter, not an SMS.
pub(super) const MAX_PARTS: i64 = 6;

/// What a text is made of: plain text and links (replaced per recipient by tracking links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    Text(String),
    Link(String),
}

/// Splits a text into pieces: `{link}` is the campaign's target, bare http(s) URLs are links
/// to themselves. Any other `{…}` is refused, so a typo never reaches a customer.
pub(super) fn pieces(content: &str, target: Option<&str>) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = content;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{link}") {
            let t = target.ok_or("uses {link} but the campaign has no target_url")?;
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Link(t.to_string()));
            rest = after;
        } else if rest.starts_with('{') {
            let end = rest.find('}').map_or(rest.len(), |e| e + 1);
            return Err(format!(
                "{} is not a known placeholder (only {{link}})",
                &rest[..end]
            ));
        } else if rest.starts_with("http://") || rest.starts_with("https://") {
            // A URL ends at whitespace or the first character no URL has (Chinese text,
            // full-width punctuation).
            let end = rest
                .find(|c: char| c.is_whitespace() || !c.is_ascii() || c == '<' || c == '>')
                .unwrap_or(rest.len());
            let url = &rest[..end];
            links::check_target(url).map_err(|e| format!("link {url}: {e}"))?;
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Link(url.to_string()));
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push(Piece::Text(text));
    out.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    Ok(out)
}

/// What the checks found in one variant's text.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContentReport {
    pub variant: String,
    /// Characters as sent, with each link at its tracking-link length.
    pub chars: usize,
    pub parts: i64,
    pub links: usize,
}

/// Checks a variant's text the way carriers and the advertising law will: the 【signature】,
/// the opt-out line, forbidden words, placeholders, links, and its length in billable parts
/// once links are tracking links of `link_len` characters.
pub fn check_content(
    field: &str,
    variant: &str,
    content: &str,
    target: Option<&str>,
    extra_forbidden: &[String],
    link_len: usize,
) -> Result<ContentReport, CampaignError> {
    let c = content.trim();
    if c.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    // 【 is 3 bytes: a closing 】 after byte 3 means the signature is not empty.
    let signed = (c.starts_with('【') && c.find('】').is_some_and(|e| e > 3))
        || (c.ends_with('】') && c.rfind('【').is_some());
    if !signed {
        return Err(invalid(
            field,
            "must begin (or end) with the 【signature】 registered with the provider",
        ));
    }
    if !OPT_OUT_MARKS.iter().any(|m| c.contains(m)) {
        return Err(invalid(
            field,
            "must say how to opt out, e.g. 拒收请回复R or 回T退订",
        ));
    }
    for w in FORBIDDEN_WORDS
        .iter()
        .copied()
        .chain(extra_forbidden.iter().map(String::as_str))
    {
        if !w.is_empty() && c.contains(w) {
            return Err(invalid(field, format!("contains the forbidden word {w:?}")));
        }
    }
    let ps = pieces(c, target).map_err(|r| invalid(field, r))?;
    let links = ps.iter().filter(|p| matches!(p, Piece::Link(_))).count();
    let chars: usize = ps
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.chars().count(),
            Piece::Link(_) => link_len,
        })
        .sum();
    let parts = crate::channels::sms::billable_parts(&"x".repeat(chars));
    if parts > MAX_PARTS {
        return Err(invalid(
            field,
            format!("is {chars} characters, {parts} billable parts; at most {MAX_PARTS}"),
        ));
    }
    Ok(ContentReport {
        variant: variant.to_string(),
        chars,
        parts,
        links,
    })
}
