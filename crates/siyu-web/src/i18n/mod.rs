//! Console text: zh-CN first, English second. One struct per language, so a missing string
//! is a compile error rather than a blank on screen.

mod access;
mod acquire;
mod activities;
mod connect;
mod coupons;
mod data;
mod layering;
mod overview;
pub mod refusals;

pub use access::*;
pub use acquire::*;
pub use activities::*;
pub use connect::*;
pub use coupons::*;
pub use data::*;
pub use layering::*;
pub use overview::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn from_cookie(v: Option<&str>) -> Lang {
        match v {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    pub fn tr(self) -> &'static Tr {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }
}

pub struct Tr {
    /// The left navigation, grouped by the flywheel.
    pub nav: &'static [NavGroup],
    pub app: &'static str,
    pub switch_to: &'static str,
    pub switch_code: &'static str,
    pub login: &'static str,
    pub logout: &'static str,
    pub tenant: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub login_failed: &'static str,
    pub login_throttled: &'static str,
    pub overview: &'static str,
    pub customers: &'static str,
    pub customer: &'static str,
    pub search: &'static str,
    pub search_hint: &'static str,
    pub name: &'static str,
    pub phone: &'static str,
    pub orders: &'static str,
    pub spend: &'static str,
    pub last_order: &'static str,
    pub id: &'static str,
    pub internal_error: &'static str,
    pub no_results: &'static str,
    pub prev: &'static str,
    pub next: &'static str,
    pub page: &'static str,
    pub total: &'static str,
    pub identities: &'static str,
    pub kind: &'static str,
    pub value: &'static str,
    pub phone_hints: &'static str,
    pub first_order: &'static str,
    pub order_count: &'static str,
    pub total_spend: &'static str,
    pub aov: &'static str,
    pub channels: &'static str,
    pub channel: &'static str,
    pub order_no: &'static str,
    pub status: &'static str,
    pub time: &'static str,
    pub amount: &'static str,
    pub refund: &'static str,
    pub items: &'static str,
    pub store: &'static str,
    pub events: &'static str,
    pub event_type: &'static str,
    pub touchpoint: &'static str,
    pub merged_from: &'static str,
    pub show_phone: &'static str,
    pub buyer_records: &'static str,
    pub people: &'static str,
    pub merges: &'static str,
    pub multi_channel: &'static str,
    pub gmv: &'static str,
    pub buyers: &'static str,
    pub repeat_online: &'static str,
    pub repeat_store: &'static str,
    pub not_found: &'static str,
    pub nav_tags: &'static str,
    pub stage: &'static str,
    pub repurchase: &'static str,
    pub nav_rfm: &'static str,
    pub nav_segments: &'static str,
    pub nav_members: &'static str,
    pub nav_activities: &'static str,
    pub nav_acquire: &'static str,
    pub nav_connect: &'static str,
    pub nav_access: &'static str,
    pub nav_coupons: &'static str,
    pub nav_policy: &'static str,
    pub filter_tag: &'static str,
    pub filter_stage: &'static str,
    pub filter_class: &'static str,
    pub filter_channel: &'static str,
    pub filter_tier: &'static str,
    pub member_search: &'static str,
    pub member_search_hint: &'static str,
    pub notes: &'static str,
    pub note_hint: &'static str,
    pub add_note: &'static str,
    pub give_coupon: &'static str,
    pub add_tag: &'static str,
    pub membership: &'static str,
    pub member_no: &'static str,
    pub tier: &'static str,
    pub joined: &'static str,
    pub points: &'static str,
    pub not_member: &'static str,
    pub coupons_held: &'static str,
    pub none_yet: &'static str,
    pub code: &'static str,
    pub valid_until: &'static str,
    pub messages_received: &'static str,
    pub campaign: &'static str,
    pub wecom_staff: &'static str,
    pub no_wecom: &'static str,
    pub guide: &'static str,
    pub added: &'static str,
    pub via_code: &'static str,
    pub in_groups: &'static str,
    pub sort_by: &'static str,
    pub page_size: &'static str,
    pub jump_to: &'static str,
    pub jump: &'static str,
    pub filter_any: &'static str,
    pub filter: &'static str,
    pub save_filtered: &'static str,
    pub batch_add: &'static str,
    pub batch_remove: &'static str,
    pub batch_apply: &'static str,
    pub batch_confirm: &'static str,
    pub members_title: &'static str,
    pub coupons_title: &'static str,
    pub coupon: &'static str,
    pub issued: &'static str,
    pub redeemed: &'static str,
    pub order_gmv: &'static str,
    pub no_members: &'static str,
}

/// A page in the left navigation: the `active` key its page sets, its address, its name.
pub struct NavItem {
    pub key: &'static str,
    pub href: &'static str,
    pub label: &'static str,
}

/// A stage of the flywheel and its pages.
pub struct NavGroup {
    pub label: &'static str,
    pub items: &'static [NavItem],
}

const fn item(key: &'static str, href: &'static str, label: &'static str) -> NavItem {
    NavItem { key, href, label }
}

/// 拉新 → 承接 → 分层 → 转化 → 分析, then 设置. Content (内容) joins when it has pages.
static NAV_ZH: [NavGroup; 6] = [
    NavGroup {
        label: "拉新",
        items: &[item("acquire", "/console/acquire", "拉新召回")],
    },
    NavGroup {
        label: "承接",
        items: &[item("connect", "/console/connect", "企微承接")],
    },
    NavGroup {
        label: "分层",
        items: &[
            item("customers", "/console/customers", "客户"),
            item("tags", "/console/tags", "标签"),
            item("rfm", "/console/rfm", "RFM 分层"),
            item("segments", "/console/segments", "人群"),
        ],
    },
    NavGroup {
        label: "转化",
        items: &[
            item("members", "/console/members", "会员"),
            item("coupons", "/console/coupons", "优惠券"),
            item("activities", "/console/activities", "活动"),
        ],
    },
    NavGroup {
        label: "分析",
        items: &[item("overview", "/console/overview", "概览")],
    },
    NavGroup {
        label: "设置",
        items: &[
            item("policy", "/console/policy", "触达策略"),
            item("brand", "/console/brand", "品牌外观"),
            item("access", "/console/access", "账号"),
        ],
    },
];

static NAV_EN: [NavGroup; 6] = [
    NavGroup {
        label: "Acquire",
        items: &[item("acquire", "/console/acquire", "Acquire")],
    },
    NavGroup {
        label: "Connect",
        items: &[item("connect", "/console/connect", "WeCom")],
    },
    NavGroup {
        label: "Know",
        items: &[
            item("customers", "/console/customers", "Customers"),
            item("tags", "/console/tags", "Tags"),
            item("rfm", "/console/rfm", "RFM"),
            item("segments", "/console/segments", "Segments"),
        ],
    },
    NavGroup {
        label: "Convert",
        items: &[
            item("members", "/console/members", "Members"),
            item("coupons", "/console/coupons", "Coupons"),
            item("activities", "/console/activities", "Activities"),
        ],
    },
    NavGroup {
        label: "Measure",
        items: &[item("overview", "/console/overview", "Overview")],
    },
    NavGroup {
        label: "Settings",
        items: &[
            item("policy", "/console/policy", "Contact policy"),
            item("brand", "/console/brand", "Brand look"),
            item("access", "/console/access", "Access"),
        ],
    },
];

impl Tr {
    /// Where a page sits, for its breadcrumb: its stage, and its section's address and name.
    pub fn crumb(&self, active: &str) -> Option<(&'static str, &'static str, &'static str)> {
        self.nav.iter().find_map(|g| {
            g.items
                .iter()
                .find(|i| i.key == active)
                .map(|i| (g.label, i.href, i.label))
        })
    }
}

pub static ZH: Tr = Tr {
    nav: &NAV_ZH,
    app: "私域 Siyu",
    switch_to: "English",
    switch_code: "en",
    login: "登录",
    logout: "退出",
    tenant: "品牌",
    username: "用户名",
    password: "密码",
    login_failed: "品牌、用户名或密码不正确",
    login_throttled: "尝试次数过多，请 15 分钟后再试",
    overview: "概览",
    customers: "客户",
    customer: "客户详情",
    search: "搜索",
    search_hint: "手机号、订单号、平台买家ID、#客户ID 或姓名",
    name: "姓名",
    phone: "手机号",
    orders: "订单",
    spend: "消费金额",
    last_order: "最近下单",
    id: "客户ID",
    internal_error: "服务器内部错误，请查看服务日志",
    no_results: "没有找到客户",
    prev: "上一页",
    next: "下一页",
    page: "页",
    total: "共",
    identities: "身份标识",
    kind: "类型",
    value: "值",
    phone_hints: "脱敏手机号（仅提示，不用于合并）",
    first_order: "首次下单",
    order_count: "订单数",
    total_spend: "累计消费",
    aov: "客单价",
    channels: "购买渠道",
    channel: "渠道",
    order_no: "订单号",
    status: "状态",
    time: "时间",
    amount: "金额",
    refund: "退款",
    items: "件数",
    store: "门店",
    events: "行为事件",
    event_type: "事件",
    touchpoint: "触点",
    merged_from: "已合并的客户ID",
    show_phone: "显示完整手机号",
    buyer_records: "各渠道买家记录",
    people: "归一后的客户",
    merges: "合并次数",
    multi_channel: "跨渠道购买",
    gmv: "GMV",
    buyers: "买家数",
    repeat_online: "线上复购率",
    repeat_store: "门店复购率",
    not_found: "未找到该客户",
    nav_tags: "标签",
    stage: "生命周期",
    repurchase: "复购日期",
    nav_rfm: "RFM 分层",
    nav_segments: "人群",
    nav_members: "会员",
    nav_activities: "活动",
    nav_acquire: "拉新召回",
    nav_connect: "企微承接",
    nav_access: "账号",
    nav_coupons: "优惠券",
    nav_policy: "触达策略（频次与免打扰）",
    filter_tag: "标签",
    filter_stage: "生命周期",
    filter_class: "RFM 分类",
    filter_channel: "购买渠道",
    filter_tier: "会员等级",
    member_search: "会员号或门店",
    member_search_hint: "如 M0001 或 SH-01",
    notes: "备注",
    note_hint: "顾客的喜好、约好的回访时间……",
    add_note: "保存备注",
    give_coupon: "发券",
    add_tag: "打标签",
    membership: "会员与积分",
    not_member: "还不是会员",
    coupons_held: "优惠券",
    none_yet: "暂无",
    code: "券码",
    valid_until: "有效期至",
    messages_received: "收到的消息",
    campaign: "所属召回",
    wecom_staff: "企业微信",
    no_wecom: "还没有加导购企业微信",
    guide: "导购",
    added: "添加时间",
    via_code: "渠道活码",
    in_groups: "所在客户群",
    sort_by: "排序",
    page_size: "每页",
    jump_to: "第几页",
    jump: "跳转",
    filter_any: "不限",
    filter: "筛选",
    save_filtered: "把这些客户存为人群",
    batch_add: "打上",
    batch_remove: "去掉",
    batch_apply: "给这些客户批量改标签",
    batch_confirm: "确定要修改这些客户的标签吗？人数：",
    members_title: "会员",
    member_no: "会员号",
    tier: "等级",
    points: "积分",
    joined: "入会",
    coupons_title: "优惠券",
    coupon: "券",
    issued: "已发放",
    redeemed: "已核销",
    order_gmv: "用券订单金额",
    no_members: "还没有会员",
};

pub static EN: Tr = Tr {
    nav: &NAV_EN,
    app: "Siyu 私域",
    switch_to: "中文",
    switch_code: "zh",
    login: "Sign in",
    logout: "Sign out",
    tenant: "Brand",
    username: "Username",
    password: "Password",
    login_failed: "Brand, username or password is wrong",
    login_throttled: "Too many attempts: try again in 15 minutes",
    overview: "Overview",
    customers: "Customers",
    customer: "Customer",
    search: "Search",
    search_hint: "phone, order no., buyer id, kind:value (e.g. unionid:o6_x), #customer id or name",
    name: "Name",
    phone: "Phone",
    orders: "Orders",
    spend: "Spend",
    last_order: "Last order",
    id: "ID",
    internal_error: "Internal error; see the server log",
    no_results: "No customers found",
    prev: "Previous",
    next: "Next",
    page: "page",
    total: "Total",

    identities: "Identities",
    kind: "Kind",
    value: "Value",
    phone_hints: "Masked phones (hints only, never merged on)",
    first_order: "First order",
    order_count: "Orders",
    total_spend: "Total spend",
    aov: "Average order value",
    channels: "Channels bought in",
    channel: "Channel",
    order_no: "Order no.",
    status: "Status",
    time: "Time",
    amount: "Amount",
    refund: "Refund",
    items: "Items",
    store: "Store",
    events: "Events",
    event_type: "Event",
    touchpoint: "Touchpoint",
    merged_from: "Merged customer id",
    show_phone: "Show full phone",
    buyer_records: "Buyer records across channels",
    people: "People after OneID",
    merges: "Merges",
    multi_channel: "Bought in 2+ channels",
    gmv: "GMV",
    buyers: "Buyers",
    repeat_online: "Online repeat rate",
    repeat_store: "Store repeat rate",
    not_found: "Customer not found",
    nav_tags: "Tags",
    stage: "Stage",
    repurchase: "Repurchased",
    nav_rfm: "RFM",
    nav_segments: "Segments",
    nav_members: "Members",
    nav_activities: "Activities",
    nav_acquire: "Acquire",
    nav_connect: "WeCom",
    nav_access: "Access",
    nav_coupons: "Coupons",
    nav_policy: "Contact policy (caps and quiet hours)",
    filter_tag: "Tag",
    filter_stage: "Stage",
    filter_class: "RFM class",
    filter_channel: "Bought in",
    filter_tier: "Member tier",
    member_search: "Member no. or store",
    member_search_hint: "e.g. M0001 or SH-01",
    notes: "Notes",
    note_hint: "What the customer likes, when to call back…",
    add_note: "Save note",
    give_coupon: "Give a coupon",
    add_tag: "Tag",
    membership: "Membership and points",
    not_member: "Not a member yet",
    coupons_held: "Coupons",
    none_yet: "None yet",
    code: "Code",
    valid_until: "Valid until",
    messages_received: "Messages received",
    campaign: "Campaign",
    wecom_staff: "WeCom",
    no_wecom: "Not a WeCom contact yet",
    guide: "Guide",
    added: "Added",
    via_code: "Live code",
    in_groups: "In groups",
    sort_by: "Sort",
    page_size: "Per page",
    jump_to: "Page",
    jump: "Go",
    filter_any: "Any",
    filter: "Filter",
    save_filtered: "Save these customers as a segment",
    batch_add: "add",
    batch_remove: "remove",
    batch_apply: "Change the tag of these customers",
    batch_confirm: "Change the tag of these customers? People: ",
    members_title: "Members",
    member_no: "Member no.",
    tier: "Tier",
    points: "Points",
    joined: "Joined",
    coupons_title: "Coupons",
    coupon: "Coupon",
    issued: "Issued",
    redeemed: "Redeemed",
    order_gmv: "GMV of orders using it",
    no_members: "No members yet",
};

/// Channel names as operators say them.
/// The sales channels an operator picks from (orders, coupons), by code.
pub const CHANNELS: [&str; 8] = [
    "tmall",
    "jd",
    "douyin",
    "pdd",
    "youzan",
    "xiaohongshu",
    "store",
    "mall",
];

pub fn channel_name(lang: Lang, c: &str) -> String {
    let zh = match c {
        "tmall" => "天猫",
        "jd" => "京东",
        "douyin" => "抖音",
        "pdd" => "拼多多",
        "youzan" => "有赞",
        "store" => "门店",
        "mall" => "小程序商城",
        "xiaohongshu" => "小红书",
        // Events WeCom told us of (an add, a group joined): not a sales channel.
        "wecom" => "企业微信",
        other => other,
    };
    let en = match c {
        "tmall" => "Tmall",
        "jd" => "JD",
        "douyin" => "Douyin",
        "pdd" => "PDD",
        "youzan" => "Youzan",
        "store" => "Store",
        "mall" => "Mini-program mall",
        "xiaohongshu" => "Xiaohongshu",
        "wecom" => "WeCom",
        other => other,
    };
    match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// Identity kinds as operators say them.
pub fn kind_name(lang: Lang, k: &str) -> String {
    let zh = match k {
        "phone" => "手机号",
        "unionid" => "微信 unionid",
        "openid" => "微信 openid",
        "external_userid" => "企微外部联系人",
        "member_no" => "会员号",
        "email" => "邮箱",
        other => {
            return channel_name(lang, other)
                + if lang == Lang::Zh {
                    "买家ID"
                } else {
                    " buyer id"
                };
        }
    };
    match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => k.to_owned(),
    }
}

/// The events Siyu records itself, as operators say them; a brand's own event names (sent
/// through the API) are the brand's words and are shown as sent.
pub fn event_name(lang: Lang, kind: &str) -> String {
    let (zh, en) = match kind {
        "page_view" => ("浏览页面", "Page view"),
        "contact_added" => ("添加企微好友", "Added on WeCom"),
        "contact_edited" => ("企微好友资料变更", "WeCom contact edited"),
        "contact_deleted" => ("删除企微好友", "WeCom contact deleted"),
        "transfer_failed" => ("客户继承失败", "Contact transfer failed"),
        "chat_created" => ("建群", "Group created"),
        "chat_updated" => ("群信息变更", "Group changed"),
        "chat_dismissed" => ("解散群", "Group dismissed"),
        "tag_changed" => ("企微标签变更", "WeCom tag changed"),
        other => return other.to_owned(),
    };
    match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// Where a touch came from: a live code by its number, WeCom itself, or the brand's own name.
pub fn touchpoint_name(lang: Lang, touchpoint: &str) -> String {
    if let Some(id) = touchpoint.strip_prefix("live_code:") {
        return match lang {
            Lang::Zh => format!("渠道活码 #{id}"),
            Lang::En => format!("Live code #{id}"),
        };
    }
    match (touchpoint, lang) {
        ("wecom", Lang::Zh) => "企业微信".to_owned(),
        ("wecom", Lang::En) => "WeCom".to_owned(),
        (other, _) => other.to_owned(),
    }
}

/// Who did something, as history records it (`console:店长`, `api:api key 同步`, `system`),
/// in the reader's words: a console user by name, a program by its key's name.
pub fn actor_name(lang: Lang, actor: &str) -> String {
    if let Some(user) = actor.strip_prefix("console:") {
        return user.to_owned();
    }
    if let Some(key) = actor.strip_prefix("api:") {
        let key = key.strip_prefix("api key ").unwrap_or(key);
        return match lang {
            Lang::Zh => format!("开放接口（密钥「{key}」）"),
            Lang::En => format!("API (key {key:?})"),
        };
    }
    match (actor, lang) {
        ("system", Lang::Zh) => "系统".to_owned(),
        (other, _) => other.to_owned(),
    }
}

/// Order statuses as operators say them.
pub fn status_name(lang: Lang, s: &str) -> String {
    let zh = match s {
        "pending" => "待付款",
        "paid" => "已付款",
        "shipped" => "已发货",
        "completed" => "交易成功",
        "refunded" => "已退款",
        "closed" => "已关闭",
        "unknown" => "未知状态",
        other => other,
    };
    let en = match s {
        "pending" => "Pending payment",
        "paid" => "Paid",
        "shipped" => "Shipped",
        "completed" => "Completed",
        "refunded" => "Refunded",
        "closed" => "Closed",
        "unknown" => "Unknown status",
        other => other,
    };
    match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both languages' navigations hold the same pages at the same addresses, and every page a
    /// console module marks active is in them (so it has a breadcrumb).
    #[test]
    fn the_navigation_holds_every_page_in_both_languages() {
        let pages = |t: &Tr| -> Vec<(&str, &str)> {
            t.nav
                .iter()
                .flat_map(|g| g.items.iter().map(|i| (i.key, i.href)))
                .collect()
        };
        assert_eq!(pages(&ZH), pages(&EN));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console");
        let mut keys = std::collections::BTreeSet::new();
        for f in std::fs::read_dir(dir).expect("console modules") {
            let text = std::fs::read_to_string(f.expect("entry").path()).expect("module");
            for (i, _) in text.match_indices("active: \"") {
                let rest = &text[i + 9..];
                keys.insert(rest[..rest.find('"').expect("closing quote")].to_owned());
            }
        }
        keys.remove("");
        assert!(keys.len() >= 10, "{keys:?}");
        for k in &keys {
            assert!(ZH.crumb(k).is_some(), "page {k} is not in the navigation");
        }
        assert_eq!(
            ZH.crumb("customers"),
            Some(("分层", "/console/customers", "客户"))
        );
    }
}
