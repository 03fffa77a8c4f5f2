//! Text of the console: the connect page.

use super::Lang;

/// The connect page: channel live codes, groups with retention, the SOP calendar, mass messages.
pub struct ConnTr {
    pub title: &'static str,
    pub codes: &'static str,
    pub name: &'static str,
    pub source: &'static str,
    pub serving: &'static str,
    pub adds: &'static str,
    pub deletions: &'static str,
    pub net: &'static str,
    pub welcomes: &'static str,
    pub welcome_text: &'static str,
    pub groups: &'static str,
    pub kind: &'static str,
    pub owner: &'static str,
    pub members: &'static str,
    pub joined: &'static str,
    pub retention: &'static str,
    pub cohort: &'static str,
    pub week: &'static str,
    pub sop: &'static str,
    pub due: &'static str,
    pub target: &'static str,
    pub tasks_done: &'static str,
    pub mass: &'static str,
    pub status: &'static str,
    pub by_guide: &'static str,
    pub recipients: &'static str,
    pub sent: &'static str,
    pub none: &'static str,
    pub api_hint: &'static str,
    /// Names for the codes the API uses (sources, group kinds, statuses).
    pub labels: &'static [(&'static str, &'static str)],
}

impl ConnTr {
    /// The page's word for an API code, or the code itself when there is none.
    pub fn label<'a>(&self, code: &'a str) -> &'a str
    where
        'static: 'a,
    {
        self.labels
            .iter()
            .find(|(k, _)| *k == code)
            .map_or(code, |(_, v)| v)
    }
}

pub static ZH_C: ConnTr = ConnTr {
    title: "企微承接",
    codes: "渠道活码",
    name: "名称",
    source: "来源",
    serving: "当前接待导购",
    adds: "添加",
    deletions: "删除",
    net: "净增",
    welcomes: "欢迎语 已发/失败",
    welcome_text: "欢迎语",
    groups: "客户群",
    kind: "类型",
    owner: "群主",
    members: "当前客户数",
    joined: "累计入群",
    retention: "入群周留存",
    cohort: "入群周",
    week: "第{n}周",
    sop: "群SOP日历",
    due: "发送时间",
    target: "目标",
    tasks_done: "群主任务 已发/全部",
    mass: "群发",
    status: "状态",
    by_guide: "导购完成情况",
    recipients: "客户",
    sent: "已发",
    none: "暂无",
    api_hint: "通过 API 配置：PUT /api/v1/wecom、POST /api/v1/live-codes、/api/v1/sop-posts、/api/v1/mass-messages（见 docs/CONNECT.md）",
    labels: &[
        ("channel", "渠道"),
        ("store", "门店"),
        ("campaign", "活动"),
        ("card_batch", "包裹卡"),
        ("general", "普通群"),
        ("category", "品类群"),
        ("flash", "快闪群"),
        ("vip", "VIP 群"),
        ("scheduled", "待下发"),
        ("released", "已下发"),
        ("pending", "待交给导购"),
        ("sending", "交付中"),
        ("assigned", "待导购发送"),
        ("done", "已完成"),
        ("sent", "已发送"),
        ("failed", "失败"),
        ("capped", "超出频次"),
        ("daily_limit", "今日已收过群发"),
        ("unsubscribed", "已退订"),
        ("refused", "企微拒收"),
        ("not_contact", "已非好友"),
        ("limit", "企微上限"),
    ],
};

pub static EN_C: ConnTr = ConnTr {
    title: "WeCom",
    codes: "Channel live codes",
    name: "Name",
    source: "Source",
    serving: "Guides on duty",
    adds: "Adds",
    deletions: "Deletions",
    net: "Net",
    welcomes: "Welcomes sent/failed",
    welcome_text: "Welcome",
    groups: "Customer groups",
    kind: "Kind",
    owner: "Owner",
    members: "Customers now",
    joined: "Ever joined",
    retention: "Weekly retention by join week",
    cohort: "Join week",
    week: "Week {n}",
    sop: "Group SOP calendar",
    due: "Due",
    target: "Target",
    tasks_done: "Owner tasks sent/all",
    mass: "Mass messages",
    status: "Status",
    by_guide: "Completion by guide",
    recipients: "Customers",
    sent: "Sent",
    none: "None yet",
    api_hint: "Set up through the API: PUT /api/v1/wecom, POST /api/v1/live-codes, /api/v1/sop-posts, /api/v1/mass-messages (see docs/CONNECT.md)",
    labels: &[
        ("card_batch", "package cards"),
        ("vip", "VIP"),
        ("assigned", "with the guide"),
        ("daily_limit", "had one today"),
        ("not_contact", "no longer a contact"),
        ("limit", "WeCom's limit"),
    ],
};

impl Lang {
    pub fn cn(self) -> &'static ConnTr {
        match self {
            Lang::Zh => &ZH_C,
            Lang::En => &EN_C,
        }
    }
}
