//! Cells of the CSV files operators open in Excel or WPS. Text that came from outside (buyer
//! names, variant names) and would start a formula is given a leading `'`, so that opening an
//! export never runs what a buyer typed.

use std::borrow::Cow;

/// What a spreadsheet reads as the start of a formula, after any leading spaces: ASCII and the
/// full-width forms a Chinese input method types.
const FORMULA_STARTS: &[char] = &['=', '+', '-', '@', '\t', '\r', '\n', '＝', '＋', '－', '＠'];

/// The cell as text that does not run: unchanged unless it would start a formula.
pub fn inert(s: &str) -> Cow<'_, str> {
    let first = s.trim_start_matches([' ', '\u{3000}']).chars().next();
    match first {
        Some(c) if FORMULA_STARTS.contains(&c) => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_text_never_runs_as_a_formula() {
        assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(inert("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(inert("-1+2"), "'-1+2");
        assert_eq!(inert("  =1+1"), "'  =1+1");
        assert_eq!(inert("\u{3000}＝1+1"), "'\u{3000}＝1+1");
        assert_eq!(inert("＋86"), "'＋86");
        assert_eq!(inert("\tcmd"), "'\tcmd");
        assert_eq!(inert("张三"), "张三");
        assert_eq!(inert(""), "");
        assert_eq!(inert("a=b"), "a=b");
    }
}
