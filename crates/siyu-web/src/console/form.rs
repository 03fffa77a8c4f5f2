//! Values typed into the console's forms, read as the domain stores them: yuan as fen, China
//! time as UTC milliseconds, whole numbers, lists typed in one box. Each error names its field,
//! for the page to show beside the form.

use siyu::know::import::values::{parse_money, parse_time};
use siyu::platform::Fen;

use crate::i18n::{Lang, refusals};

/// A typed value refused: the field by its form name and what was typed, in the page's language.
fn refused(lang: Lang, field: &str, typed: &str, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => format!("{}：「{}」{zh}", refusals::field_name(field), typed.trim()),
        Lang::En => format!("{field}: {:?} {en}", typed.trim()),
    }
}

/// An amount in yuan as fen.
pub(crate) fn fen(lang: Lang, field: &str, v: &str) -> Result<Fen, String> {
    parse_money(v).map(Fen::new).map_err(|_| {
        refused(
            lang,
            field,
            v,
            "不是金额（元），如 99 或 99.50",
            "is not an amount in yuan (99 or 99.50)",
        )
    })
}

/// An optional amount: empty is none.
pub(crate) fn opt_fen(lang: Lang, field: &str, v: &str) -> Result<Option<Fen>, String> {
    match v.trim() {
        "" => Ok(None),
        v => fen(lang, field, v).map(Some),
    }
}

/// A `datetime-local` (China time) as UTC milliseconds.
pub(crate) fn time(lang: Lang, field: &str, v: &str) -> Result<i64, String> {
    parse_time(&v.replace('T', " ")).map_err(|_| {
        refused(
            lang,
            field,
            v,
            "不是时间，如 2026-12-12 20:00",
            "is not a time (2026-12-12 20:00)",
        )
    })
}

/// An optional time: empty is none.
pub(crate) fn opt_time(lang: Lang, field: &str, v: &str) -> Result<Option<i64>, String> {
    match v.trim() {
        "" => Ok(None),
        v => time(lang, field, v).map(Some),
    }
}

/// A whole number, or `None` when left empty.
pub(crate) fn number(lang: Lang, field: &str, v: &str) -> Result<Option<i64>, String> {
    match v.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| refused(lang, field, v, "不是整数", "is not a whole number")),
    }
}

/// A whole number the form requires: empty is refused by name.
pub(crate) fn required_number(lang: Lang, field: &str, v: &str) -> Result<i64, String> {
    number(lang, field, v)?.ok_or_else(|| refusals::invalid(lang, field, "must not be empty"))
}

/// A refusal the page has no words of its own for: in English its text; in Chinese a sentence
/// that says what to do, the domain's English reason going to the log rather than the page.
pub(crate) fn unworded(lang: Lang, e: &dyn std::fmt::Display) -> String {
    match lang {
        Lang::En => e.to_string(),
        Lang::Zh => {
            tracing::info!(refusal = %e, "console refusal without Chinese words");
            "没有完成：这次提交有一项不符合要求，请检查填写的内容后重试（详情已记入服务器日志）"
                .to_owned()
        }
    }
}

/// A list typed in one box: split by commas, 、, semicolons or lines, not by spaces (a number
/// may be typed `138 0013 8000`).
pub(crate) fn list(v: &str) -> Vec<String> {
    v.split([',', '，', '、', ';', '；', '\n', '\r'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_read_or_refused_by_name() {
        let zh = Lang::Zh;
        assert_eq!(fen(zh, "price", "99.5"), Ok(Fen::new(9_950)));
        assert_eq!(
            fen(zh, "price", "九十九"),
            Err("价格：「九十九」不是金额（元），如 99 或 99.50".to_string())
        );
        assert_eq!(
            fen(Lang::En, "price", "x"),
            Err("price: \"x\" is not an amount in yuan (99 or 99.50)".to_string())
        );
        assert_eq!(opt_fen(zh, "cost_per_part", " "), Ok(None));
        assert_eq!(number(zh, "size", " 12 "), Ok(Some(12)));
        assert_eq!(number(zh, "size", ""), Ok(None));
        assert_eq!(
            number(zh, "size", "一千"),
            Err("数量：「一千」不是整数".to_string())
        );
        assert_eq!(opt_time(zh, "starts_at", ""), Ok(None));
        // 2026-12-12 20:00 in China is 12:00 UTC.
        assert_eq!(
            opt_time(zh, "starts_at", "2026-12-12T20:00"),
            Ok(Some(1_797_076_800_000))
        );
        assert!(
            time(zh, "ends_at", "明天")
                .expect_err("no time")
                .starts_with("结束时间：「明天」")
        );
        assert_eq!(
            list("最便宜，第一、 国家级;顶级\n139 0100 0000\r\n"),
            ["最便宜", "第一", "国家级", "顶级", "139 0100 0000"]
        );
    }

    #[test]
    fn a_refusal_without_words_shows_no_english_on_a_chinese_page() {
        let e = "gift: a gift coupon names its gift";
        let zh = unworded(Lang::Zh, &e);
        assert!(!zh.contains("gift") && zh.contains("请检查"), "{zh}");
        assert_eq!(unworded(Lang::En, &e), e);
    }
}
