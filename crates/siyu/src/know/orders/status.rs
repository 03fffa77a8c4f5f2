//! Order statuses as the platforms and POS systems write them, read into the few Siyu keeps.

use serde::{Deserialize, Serialize};

/// A status as exports write it, made comparable: full-width punctuation as ASCII, no spaces
/// (ASCII or ideographic), English lower-cased, and JD's "(删除)" mark on deleted orders dropped
/// (the order keeps its status).
pub fn normalise_status(s: &str) -> String {
    let mapped: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '，' | '、' => ',',
            '（' => '(',
            '）' => ')',
            '：' => ':',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    mapped
        .strip_prefix("(删除)")
        .map(str::to_owned)
        .unwrap_or(mapped)
}

/// The statuses that count as a purchase, as an SQL list (see [`OrderStatus::is_purchase`]).
pub const PURCHASE_STATUSES: &str = "('paid','shipped','completed')";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Completed,
    Refunded,
    Closed,
    /// A status the export wrote that neither Siyu nor the tenant's status map knows: the order
    /// is kept with its text, counts as no purchase, and is re-read when the map names the text.
    Unknown,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Completed => "completed",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Closed => "closed",
            OrderStatus::Unknown => "unknown",
        }
    }

    /// Reads a status as Chinese seller exports and APIs write it: Tmall/Taobao, JD, Douyin
    /// (抖店), PDD and Youzan wordings, after [`normalise_status`] (so full-width punctuation,
    /// spaces and JD's "(删除)" mark do not matter).
    pub fn parse(s: &str) -> Option<OrderStatus> {
        let s = normalise_status(s);
        Some(match s.as_str() {
            "pending"
            | "等待买家付款"
            | "待付款"
            | "未付款"
            | "等待付款"
            | "待支付"
            | "待确认"
            | "没有创建支付宝交易"
            // A presale whose deposit is paid: a purchase only once the balance is.
            | "买家已付定金,等待付尾款"
            | "已付定金"
            | "待付尾款" => OrderStatus::Pending,
            "paid"
            | "买家已付款"
            | "已付款"
            | "已支付"
            | "待发货"
            | "等待卖家发货"
            | "买家已付款,等待卖家发货"
            | "等待出库"
            | "备货中"
            | "锁定"
            | "已锁定"
            | "等待发货"
            | "待配货"
            | "已支付,待发货" => OrderStatus::Paid,
            "shipped"
            | "卖家已发货"
            | "已发货"
            | "等待确认收货"
            | "待收货"
            | "待签收"
            | "等待买家确认收货"
            | "卖家已发货,等待买家确认"
            | "卖家已发货,等待买家确认收货"
            | "已发货,待签收"
            | "已发货,待收货"
            | "卖家部分发货"
            | "发往配送中心"
            | "配送中心已收货" => OrderStatus::Shipped,
            "completed"
            | "交易成功"
            | "已完成"
            | "完成"
            | "已签收"
            | "已收货"
            | "交易完成"
            | "买家已收货"
            | "买家已签收(货到付款专用)"
            | "待评价"
            | "已结算"
            | "收款确认" => OrderStatus::Completed,
            "refunded"
            | "已退款"
            | "退款成功"
            | "售后完成"
            | "全额退款"
            | "未发货,退款成功"
            | "已发货,退款成功" => OrderStatus::Refunded,
            "closed" | "交易关闭" | "已关闭" | "已取消" | "取消" | "订单关闭" | "交易被淘宝关闭"
            | "已作废" => OrderStatus::Closed,
            "unknown" => OrderStatus::Unknown,
            _ => return None,
        })
    }

    /// Whether the order counts as a purchase (spend, order count, repurchase). SQL uses
    /// [`PURCHASE_STATUSES`], which a test keeps equal to this.
    pub fn is_purchase(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_each_platform_writes_them() {
        for (text, want) in [
            ("卖家已发货，等待买家确认", OrderStatus::Shipped),
            ("已发货，待签收", OrderStatus::Shipped),
            ("等待出库", OrderStatus::Paid),
            ("锁定", OrderStatus::Paid),
            ("(删除)完成", OrderStatus::Completed),
            ("（删除）完成", OrderStatus::Completed),
            ("等待付款", OrderStatus::Pending),
            ("已支付", OrderStatus::Paid),
            ("备货中", OrderStatus::Paid),
            (" 交易 成功 ", OrderStatus::Completed),
            ("未发货，退款成功", OrderStatus::Refunded),
            ("PAID", OrderStatus::Paid),
        ] {
            assert_eq!(OrderStatus::parse(text), Some(want), "{text:?}");
        }
        assert_eq!(OrderStatus::parse("等待天使降临"), None);
    }

    proptest::proptest! {
        /// A known status written with spaces, full-width commas or ideographic spaces
        /// anywhere maps as the plain text does.
        #[test]
        fn any_spelling_of_a_known_status_maps_the_same(
            i in 0usize..8,
            spaces in proptest::collection::vec((0usize..12, 0u8..3), 0..4),
        ) {
            let known = ["卖家已发货,等待买家确认", "交易成功", "等待出库", "已发货,待签收",
                         "交易关闭", "等待买家付款", "退款成功", "已支付"][i];
            let want = OrderStatus::parse(known);
            proptest::prop_assert!(want.is_some());
            let mut chars: Vec<char> = known.replace(',', "，").chars().collect();
            for (at, kind) in spaces {
                let at = at.min(chars.len());
                chars.insert(at, [' ', '\u{3000}', '\t'][usize::from(kind)]);
            }
            let spelled: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(OrderStatus::parse(&spelled), want, "{:?}", spelled);
        }
    }

    #[test]
    fn purchase_statuses_in_sql_match_the_rule() {
        let all = [
            OrderStatus::Pending,
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Completed,
            OrderStatus::Refunded,
            OrderStatus::Closed,
            OrderStatus::Unknown,
        ];
        let listed: Vec<&str> = all
            .iter()
            .filter(|s| s.is_purchase())
            .map(|s| s.as_str())
            .collect();
        let sql_list = format!(
            "({})",
            listed
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(sql_list, PURCHASE_STATUSES);
        for s in all {
            assert_eq!(
                OrderStatus::parse(s.as_str()),
                Some(s),
                "status names round-trip"
            );
        }
    }
}
