//! Text of the console: the coupon templates page.

use super::Lang;

/// The coupon templates page (优惠券): the templates, a form to make one, where each is claimed.
pub struct CouponTr {
    pub title: &'static str,
    pub help: &'static str,
    pub none: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    pub offer: &'static str,
    pub threshold: &'static str,
    pub validity: &'static str,
    pub issued: &'static str,
    pub claim_via: &'static str,
    pub change: &'static str,
    pub create: &'static str,
    pub value: &'static str,
    pub zhe: &'static str,
    pub gift: &'static str,
    pub valid_days: &'static str,
    pub starts: &'static str,
    pub ends: &'static str,
    pub per_customer: &'static str,
    pub total: &'static str,
    pub channels: &'static str,
    pub stores: &'static str,
    pub stackable: &'static str,
    pub no_threshold: &'static str,
    pub created: &'static str,
    pub read_only: &'static str,
    pub issue: &'static str,
    pub issue_confirm: &'static str,
    pub no_snapshot: &'static str,
    pub redeem_title: &'static str,
    pub redeem_help: &'static str,
    pub code: &'static str,
    pub order_ref: &'static str,
    pub amount: &'static str,
    pub store_id: &'static str,
    pub redeem: &'static str,
}

pub static ZH_CP: CouponTr = CouponTr {
    title: "优惠券模板",
    help: "模板定义一种券：面额或折扣、门槛、有效期、总量和领取渠道。设为“包裹卡”的模板可在拉新召回里做成包裹卡；设为“H5 领券页”的模板顾客可自己领取。",
    none: "还没有优惠券模板：用下面的表单创建第一张",
    name: "名称",
    kind: "类型",
    offer: "优惠",
    threshold: "门槛",
    validity: "有效期",
    issued: "已发 / 总量",
    claim_via: "领取渠道",
    change: "修改",
    create: "创建模板",
    value: "面额（元，代金券）",
    zhe: "折扣（几折，如 8 或 8.5，折扣券）",
    gift: "赠品（仅赠品券）",
    valid_days: "有效期：领取后几天",
    starts: "或固定起止：开始",
    ends: "结束",
    per_customer: "每人限领",
    total: "发放总量",
    channels: "限用渠道（逗号分隔，空为不限）",
    stores: "限用门店（逗号分隔，空为不限）",
    stackable: "可与其他券叠加",
    no_threshold: "无门槛",
    created: "已创建优惠券模板",
    read_only: "你的角色只能查看，不能创建或修改优惠券模板；请找管理员或运营",
    issue: "发放给人群",
    issue_confirm: "确定给所选人群的每个人发一张吗？发出的券不能收回",
    no_snapshot: "先在“人群”页保存一个快照",
    redeem_title: "门店核销",
    redeem_help: "顾客出示券码，输入券码、小票订单号和订单原价（元）：每张券只能核销一次，页面会显示抵扣金额。",
    code: "券码",
    order_ref: "订单号",
    amount: "订单金额（元，用券前）",
    store_id: "门店编号",
    redeem: "核销",
};

pub static EN_CP: CouponTr = CouponTr {
    title: "Coupon templates",
    help: "A template defines a coupon: its amount or percentage, threshold, validity, total and where it is claimed. A template claimed with package cards can be printed on cards under Acquire; one claimed on the H5 page can be claimed by customers themselves.",
    none: "No coupon template yet: create the first with the form below",
    name: "Name",
    kind: "Kind",
    offer: "Offer",
    threshold: "Threshold",
    validity: "Validity",
    issued: "Issued / total",
    claim_via: "Claimed via",
    change: "Change",
    create: "Create template",
    value: "Amount off (yuan, amount coupons)",
    zhe: "Discount in 折 (8 or 8.5: pay 80% or 85%; discount coupons)",
    gift: "Gift (gift coupons only)",
    valid_days: "Validity: days after granted",
    starts: "or fixed dates: starts",
    ends: "ends",
    per_customer: "Per customer",
    total: "Total",
    channels: "Channels (comma-separated; empty: any)",
    stores: "Stores (comma-separated; empty: any)",
    stackable: "Stacks with other coupons",
    no_threshold: "No threshold",
    created: "Coupon template created",
    read_only: "Your role can view but not create or change coupon templates; ask an admin or operator",
    issue: "Issue to a snapshot",
    issue_confirm: "Give one to everyone in the chosen snapshot? Issued coupons are not taken back",
    no_snapshot: "Save a segment snapshot first",
    redeem_title: "Redeem in store",
    redeem_help: "The customer shows the code: type it, the receipt's order number and the order's amount before the coupon (yuan). Each coupon is used once; the page says what it took off.",
    code: "Code",
    order_ref: "Order number",
    amount: "Order amount (yuan, before the coupon)",
    store_id: "Store id",
    redeem: "Redeem",
};

impl Lang {
    pub fn coupons(self) -> &'static CouponTr {
        match self {
            Lang::Zh => &ZH_CP,
            Lang::En => &EN_CP,
        }
    }
}

/// A coupon kind in the page's language.
pub fn coupon_kind_name(lang: Lang, kind: &str) -> &'static str {
    match (lang, kind) {
        (Lang::Zh, "amount_off") => "代金券（立减）",
        (Lang::Zh, "percent_off") => "折扣券",
        (Lang::Zh, "free_gift") => "赠品券",
        (Lang::En, "amount_off") => "Amount off",
        (Lang::En, "percent_off") => "Percentage off",
        (Lang::En, "free_gift") => "Free gift",
        _ => "—",
    }
}

/// Where a template is claimed, in the page's language.
pub fn claim_via_name(lang: Lang, via: &str) -> &'static str {
    match (lang, via) {
        (Lang::Zh, "h5") => "H5 领券页",
        (Lang::Zh, "card") => "包裹卡",
        (Lang::Zh, "points") => "积分兑换",
        (Lang::Zh, "api") => "品牌系统发放（API）",
        (Lang::En, "h5") => "H5 page",
        (Lang::En, "card") => "Package card",
        (Lang::En, "points") => "Points gift",
        (Lang::En, "api") => "Brand's systems (API)",
        _ => "—",
    }
}
