//! Text of the console: the overview's date range, its figures against the period before, and
//! the trend charts.

use super::Lang;

pub struct OverviewTr {
    pub range: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub show: &'static str,
    /// Presets, as (days, label).
    pub presets: [(i64, &'static str); 4],
    /// "compared with {from} – {to}".
    pub compared_with: &'static str,
    pub vs_previous: &'static str,
    pub nothing_before: &'static str,
    pub buyers: &'static str,
    pub new_customers: &'static str,
    pub wecom_adds: &'static str,
    pub wecom_net_adds: &'static str,
    pub trend: &'static str,
    pub sales_chart: &'static str,
    pub growth_chart: &'static str,
    pub previous_suffix: &'static str,
    pub yuan: &'static str,
    pub loading: &'static str,
    pub load_failed: &'static str,
    pub identity: &'static str,
    pub merges_ever: &'static str,
    pub channels_in_range: &'static str,
    /// "{field}: “{value}” is not a date".
    pub not_a_date: &'static str,
    pub reversed: &'static str,
    pub too_long: &'static str,
}

pub static ZH_O: OverviewTr = OverviewTr {
    range: "日期范围",
    from: "开始日期",
    to: "结束日期",
    show: "查看",
    presets: [
        (7, "近 7 天"),
        (30, "近 30 天"),
        (90, "近 90 天"),
        (365, "近一年"),
    ],
    compared_with: "对比上一周期 {from} 至 {to}",
    vs_previous: "环比",
    nothing_before: "上一周期无数据",
    buyers: "购买人数",
    new_customers: "新客（首次购买）",
    wecom_adds: "企微新增好友",
    wecom_net_adds: "企微净增好友",
    trend: "每日趋势",
    sales_chart: "GMV 与订单",
    growth_chart: "新客与企微好友",
    previous_suffix: "（上一周期）",
    yuan: "元",
    loading: "正在读取趋势数据…",
    load_failed: "趋势数据读取失败，请刷新重试",
    identity: "客户归一",
    merges_ever: "累计合并次数",
    channels_in_range: "各渠道（所选日期内）",
    not_a_date: "{field}：“{value}”不是日期，请按 年-月-日 填写",
    reversed: "开始日期：晚于结束日期",
    too_long: "结束日期：日期范围不能超过 1098 天",
};

pub static EN_O: OverviewTr = OverviewTr {
    range: "Date range",
    from: "From",
    to: "To",
    show: "Show",
    presets: [
        (7, "Last 7 days"),
        (30, "Last 30 days"),
        (90, "Last 90 days"),
        (365, "Last year"),
    ],
    compared_with: "Compared with {from} to {to}",
    vs_previous: "vs previous",
    nothing_before: "nothing in the previous period",
    buyers: "Buyers",
    new_customers: "New customers (first purchase)",
    wecom_adds: "WeCom adds",
    wecom_net_adds: "WeCom net adds",
    trend: "Daily trend",
    sales_chart: "GMV and orders",
    growth_chart: "New customers and WeCom",
    previous_suffix: " (previous period)",
    yuan: "CNY",
    loading: "Loading the trend…",
    load_failed: "The trend could not be loaded; reload to try again",
    identity: "OneID",
    merges_ever: "Merges, ever",
    channels_in_range: "Channels (in the range)",
    not_a_date: "{field}: “{value}” is not a date; use YYYY-MM-DD",
    reversed: "From: after To",
    too_long: "To: a range may not be longer than 1,098 days",
};

impl Lang {
    pub fn overview(self) -> &'static OverviewTr {
        match self {
            Lang::Zh => &ZH_O,
            Lang::En => &EN_O,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_range_is_the_one_the_engine_takes() {
        assert_eq!(siyu::measure::trends::MOST_DAYS, 1098);
        assert!(ZH_O.too_long.contains("1098"));
        assert!(EN_O.too_long.contains("1,098"));
    }
}
