//! The domain's refusals (`Invalid { field, reason }`, in English for developers and the API)
//! said on a Chinese console page: the field by the name the form gives it, the reason as an
//! operator would put it. A reason the catalogue does not know is logged and replaced by a
//! sentence that says to check the field, never shown in English on a Chinese page; a test
//! reads the domain's checks behind the forms that use it (activities, campaigns, card batches,
//! links) and fails on a literal `invalid("field", "reason")` missing here. Calls whose field or
//! reason is formatted are covered by the patterns' own tests, not by that scan.

use super::Lang;

/// The name a domain field has on the console's forms.
fn field_zh(field: &str) -> Option<&'static str> {
    Some(match field {
        "name" => "名称",
        "sku" => "商品编码",
        "title" => "商品标题",
        "price" => "价格",
        "original_price" => "原价",
        "stock" => "库存",
        "per_customer" => "每人限购",
        "starts_at" => "开始时间",
        "ends_at" => "结束时间",
        "pay_minutes" => "支付时限（分钟）",
        "team_size" => "成团人数",
        "team_minutes" => "成团时限（分钟）",
        "floor_price" => "底价",
        "assists" => "助力人数",
        "bargain_hours" => "砍价时长（小时）",
        "points" => "所需积分",
        "template_id" => "优惠券模板",
        "kind" => "类型",
        "snapshot_id" => "人群快照",
        "variants" => "短信文案",
        "content" => "内容",
        "weight" => "权重",
        "holdout_percent" => "对照组比例（%）",
        "target_url" => "落地页链接",
        "scheduled_at" => "定时发送",
        "forbidden_words" => "禁用词",
        "exclude_phones" => "排除号码",
        "cost_per_part" => "每条短信成本（元）",
        "cost_per_card" => "每张卡成本（元）",
        "window_days" => "归因窗口（天）",
        "size" => "数量",
        "coupon_template_id" => "优惠券",
        "contact_qr_url" => "顾问二维码链接",
        "channel" => "渠道",
        "designs" => "卡面设计",
        "target" => "落地页链接",
        _ => return None,
    })
}

/// A field path as the page names it: `variants[1].content` is 短信文案 第 2 条 · 内容.
fn path_zh(path: &str) -> Option<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((name, rest)) => {
                let i: usize = rest.strip_suffix(']')?.parse().ok()?;
                out.push(format!("{} 第 {} 条", field_zh(name)?, i + 1));
            }
            None => out.push(field_zh(part)?.to_owned()),
        }
    }
    Some(out.join(" · "))
}

/// A field's name on a Chinese page: its form name, or 此项 for one the catalogue lacks.
pub fn field_name(field: &str) -> String {
    path_zh(field).unwrap_or_else(|| "此项".to_owned())
}

/// A domain reason in Chinese, or `None` when the catalogue does not know it.
fn reason_zh(reason: &str) -> Option<String> {
    let r = reason.trim();
    // Whole sentences first: those with units or names the general patterns would keep in
    // English.
    let fixed = match r {
        "must not be empty" | "is empty" => "不能为空",
        "must be after starts_at" => "须晚于开始时间",
        "must be ≥ price" => "不能低于价格",
        "must be between 0 and price" => "须在 0 与价格之间",
        "must be between 0 and 100,000,000 fen (¥1,000,000)" => "须在 ¥0 到 ¥1,000,000 之间",
        "must be between 1 and 10080 (7 days)" => "须在 1 到 10080 之间（最长 7 天）",
        "must hold at least one team (team_size units)" => "至少要够一个团（成团人数件）",
        "must be 0–1000 fen" => "须在 ¥0 到 ¥10 之间",
        "must be 0–10000 fen" => "须在 ¥0 到 ¥100 之间",
        "a batch has at most 5 variants" => "最多 5 种卡面",
        "a campaign has 1–5 variants" => "一个活动有 1–5 条文案",
        "must be 1–32 characters and not \"control\"" => "须为 1–32 个字，且不能是 control",
        "must begin (or end) with the 【signature】 registered with the provider" => {
            "须以在短信服务商报备的【签名】开头（或结尾）"
        }
        "must say how to opt out, e.g. 拒收请回复R or 回T退订" => {
            "须写明退订方式，如「拒收请回复R」或「回T退订」"
        }
        "uses {link} but the campaign has no target_url" => "用了 {link}，但没有填写落地页链接",
        "a coupon gift names its coupon template" => "券类礼品须选择优惠券模板",
        "only a coupon gift has a template" => "实物礼品不选优惠券模板",
        "must be an http or https URL" => "须是 http 或 https 开头的网址",
        "longer than 2000 characters" => "超过 2000 个字符",
        "a helper is known by a phone, unionid or openid" => "助力人须有手机号、unionid 或 openid",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_owned());
    }
    if let Some(rest) = r.strip_prefix("must be between ")
        && let Some((a, b)) = rest.split_once(" and ")
        && plain(a)
        && plain(b)
    {
        return Some(format!("须在 {a} 到 {b} 之间"));
    }
    if let Some(n) = r.strip_prefix("must be ≥ ")
        && plain(n)
    {
        return Some(format!("不能小于 {n}"));
    }
    if let Some(rest) = r.strip_prefix("must be ") {
        if let Some(span) = rest.strip_suffix(" characters")
            && plain(span)
        {
            return Some(format!("须为 {span} 个字"));
        }
        // "must be 1–90": a range; a bare number is not one, and is left to the fallback.
        if plain(rest) && rest.contains('–') {
            return Some(format!("须在 {rest} 之间"));
        }
    }
    // The phone parser's words.
    if let Some(n) = r
        .strip_prefix("phone has ")
        .and_then(|r| r.strip_suffix(" digits; a mainland mobile number has 11"))
    {
        return Some(format!("有 {n} 位数字，手机号应为 11 位"));
    }
    match r {
        "phone is empty" => return Some("手机号为空".to_owned()),
        "phone is not a mainland mobile number (must start with 13–19)" => {
            return Some("不是大陆手机号（应以 13–19 开头）".to_owned());
        }
        "phone has a country code other than +86" => {
            return Some("不是 +86 的号码".to_owned());
        }
        _ => {}
    }
    if r.starts_with("phone contains ") {
        return Some("含有数字和分隔符以外的字符".to_owned());
    }
    if r.starts_with("phone is masked") {
        return Some("是打了星号的号码，看不出完整号码".to_owned());
    }
    if let Some(span) = r
        .strip_prefix("must be ")
        .and_then(|r| r.strip_suffix(" cards"))
        .filter(|s| plain(s))
    {
        return Some(format!("须为 {span} 张"));
    }
    if r.starts_with("coupon template ") {
        if r.ends_with(" not found") {
            return Some("这张优惠券不存在，请重新选择".to_owned());
        }
        if r.contains("not package cards") {
            return Some(
                "这张优惠券不是包裹卡券：请在优惠券页建一个领取渠道为「包裹卡」的模板".to_owned(),
            );
        }
    }
    if r.ends_with(": names must be 1–32 characters and distinct, weights 1–100") {
        return Some("每种卡面的名称须为 1–32 个字，且不能重复".to_owned());
    }
    if let Some(w) = r.strip_prefix("contains the forbidden word ") {
        return Some(format!("含有禁用词「{}」", w.trim_matches('"')));
    }
    if let Some(w) = r.strip_suffix(" is used twice") {
        return Some(format!("「{}」用了两次", w.trim_matches('"')));
    }
    if let Some(p) = r.strip_suffix(" is not a known placeholder (only {link})") {
        return Some(format!("「{p}」不是可用的占位符（只能用 {{link}}）"));
    }
    if let Some(url) = r.strip_prefix("link ")
        && let Some((url, why)) = url.split_once(": ")
    {
        return Some(format!("链接 {url} 不可用：{}", reason_zh(why)?));
    }
    if r.starts_with("not a URL (") {
        return Some("不是网址".to_owned());
    }
    // "is 130 characters, 3 billable parts; at most 2"
    if let Some(rest) = r.strip_prefix("is ")
        && let Some((chars, rest)) = rest.split_once(" characters, ")
        && let Some((parts, most)) = rest.split_once(" billable parts; at most ")
    {
        return Some(format!("共 {chars} 字，按 {parts} 条计费，最多 {most} 条"));
    }
    if let Some(rest) = r.strip_prefix("price − floor_price must be at least assists (")
        && let Some(n) = rest.split(' ').next()
    {
        return Some(format!(
            "价格与底价之差须不少于助力人数（{n} 分），每位好友都能砍掉一点"
        ));
    }
    None
}

/// Numbers, ranges and signs only: a span the patterns may show as typed.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | '–' | '-' | ' '))
}

/// A domain reason on a page in `lang`: as the domain says it in English; in Chinese from the
/// catalogue, or what to do when the catalogue lacks it (the English goes to the log).
pub fn reason(lang: Lang, reason: &str) -> String {
    if lang == Lang::En {
        return reason.to_owned();
    }
    reason_zh(reason).unwrap_or_else(|| {
        tracing::info!(reason, "console refusal without Chinese words");
        "填写的内容不符合要求，请检查后重试".to_owned()
    })
}

/// A domain refusal of `field` for `reason` on a page in `lang`: in English as the domain says
/// it; in Chinese the field's form name and the reason, or, for a reason the catalogue lacks,
/// the field and what to do (the English goes to the log).
pub fn invalid(lang: Lang, field: &str, reason: &str) -> String {
    if lang == Lang::En {
        return format!("{field}: {reason}");
    }
    let name = path_zh(field);
    match (name, reason_zh(reason)) {
        (Some(n), Some(r)) => format!("{n}：{r}"),
        (n, _) => {
            tracing::info!(field, reason, "console refusal without Chinese words");
            match n {
                Some(n) => format!("{n}：填写的内容不符合要求，请检查后重试"),
                None => "没有完成：这次提交有一项不符合要求，请检查填写的内容后重试".to_owned(),
            }
        }
    }
}

/// A refusal's text `field: reason` (as the domain's `Display` writes `Invalid`) said on a
/// page in `lang`.
pub fn said(lang: Lang, text: &str) -> String {
    match text.split_once(": ") {
        Some((field, reason)) if !field.contains(' ') => invalid(lang, field, reason),
        _ => invalid(lang, "", text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_field_and_reason_in_chinese() {
        assert_eq!(
            invalid(
                Lang::Zh,
                "variants[0].content",
                "must say how to opt out, e.g. 拒收请回复R or 回T退订"
            ),
            "短信文案 第 1 条 · 内容：须写明退订方式，如「拒收请回复R」或「回T退订」"
        );
        assert_eq!(
            invalid(Lang::Zh, "stock", "must be between 1 and 10,000,000"),
            "库存：须在 1 到 10,000,000 之间"
        );
        assert_eq!(
            invalid(Lang::Zh, "window_days", "must be 1–90"),
            "归因窗口（天）：须在 1–90 之间"
        );
        assert_eq!(
            invalid(Lang::Zh, "name", "must be 1–100 characters"),
            "名称：须为 1–100 个字"
        );
        assert_eq!(
            invalid(
                Lang::Zh,
                "variants[1].content",
                "is 140 characters, 3 billable parts; at most 2"
            ),
            "短信文案 第 2 条 · 内容：共 140 字，按 3 条计费，最多 2 条"
        );
        assert_eq!(
            invalid(
                Lang::Zh,
                "variants[0].content",
                "contains the forbidden word \"最\""
            ),
            "短信文案 第 1 条 · 内容：含有禁用词「最」"
        );
        assert_eq!(
            invalid(Lang::En, "stock", "must be ≥ 1"),
            "stock: must be ≥ 1"
        );
        // Unknown: the field in Chinese, no English.
        let z = invalid(Lang::Zh, "price", "a reason nobody wrote down");
        assert!(z.starts_with("价格：") && !z.contains("reason"), "{z}");
        let z = said(Lang::Zh, "widget: is odd");
        assert!(!z.contains("widget") && !z.contains("odd"), "{z}");
        assert_eq!(
            said(Lang::Zh, "ends_at: must be after starts_at"),
            "结束时间：须晚于开始时间"
        );
    }

    /// Every literal reason the domain's checks give for a field the console's forms hold is in
    /// the catalogue: a new check without Chinese words fails here, not on an operator's page.
    #[test]
    fn every_literal_reason_of_the_domain_has_chinese_words() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../siyu/src");
        let files = [
            "convert/payments.rs",
            "convert/group_buy.rs",
            "convert/bargain.rs",
            "convert/gifts.rs",
            "convert/flash/input.rs",
            "acquire/campaigns/records.rs",
            "acquire/campaigns/content.rs",
            "acquire/links.rs",
            "acquire/cards.rs",
        ];
        let mut seen = 0;
        let mut missing = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(root.join(f)).expect(f);
            // The string literals that follow `invalid(` / `Err((` / `Target(`: a field then a
            // reason, or a reason alone.
            for (i, _) in text.match_indices(['(']) {
                let before = &text[..i];
                if !(before.ends_with("invalid")
                    || before.ends_with("Err(")
                    || before.ends_with("Target"))
                {
                    continue;
                }
                let lits = literals(&text[i + 1..]);
                let reason = match lits.as_slice() {
                    [field, reason, ..] if field_zh(field).is_some() => reason.clone(),
                    // A field followed by a formatted reason.
                    [field] if field_zh(field).is_some() => continue,
                    [reason] => reason.clone(),
                    _ => continue,
                };
                if reason.contains('{') {
                    continue; // a format string: its pattern is tested above
                }
                seen += 1;
                if reason_zh(&reason).is_none() {
                    missing.push(format!("{f}: {reason}"));
                }
            }
        }
        assert!(seen >= 25, "the scan found only {seen} reasons");
        assert!(
            missing.is_empty(),
            "reasons without Chinese words: {missing:#?}"
        );
    }

    /// The leading string literals of a call's arguments, up to its first non-literal.
    fn literals(args: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = args.trim_start();
        while let Some(r) = rest.strip_prefix('"') {
            // The closing quote is the first one not escaped.
            let Some(end) = r
                .char_indices()
                .scan(false, |escaped, (i, c)| {
                    let close = c == '"' && !*escaped;
                    *escaped = c == '\\' && !*escaped;
                    Some((i, close))
                })
                .find_map(|(i, close)| close.then_some(i))
            else {
                break;
            };
            out.push(r[..end].replace("\\\"", "\""));
            rest = r[end + 1..].trim_start();
            rest = rest.strip_prefix(".into()").unwrap_or(rest).trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None => break,
            }
        }
        out
    }
}
