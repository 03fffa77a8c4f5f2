//! Column headers of the platforms' seller exports, and mapping files for anything else.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

/// The fields an order row can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    OrderNo,
    Channel,
    Status,
    OrderedAt,
    PaidAt,
    Amount,
    RefundAmount,
    BuyerId,
    BuyerName,
    Phone,
    Province,
    Sku,
    Title,
    Category,
    Quantity,
    Price,
    StoreId,
    GuideId,
    MemberNo,
    Unionid,
    Email,
    /// What a POS document is (销售, 退货): a return receipt refunds the sale it names.
    ReceiptKind,
    /// The sale a return receipt returns (原单号).
    ReturnOf,
    /// The store of that sale, when the return was made in another (原门店).
    ReturnStore,
    /// The cashier's note, where a POS without an 原单号 column writes the sale (原单0001退货).
    Note,
}

pub const FIELDS: &[(Field, &str)] = &[
    (Field::OrderNo, "order_no"),
    (Field::Channel, "channel"),
    (Field::Status, "status"),
    (Field::OrderedAt, "ordered_at"),
    (Field::PaidAt, "paid_at"),
    (Field::Amount, "amount"),
    (Field::RefundAmount, "refund_amount"),
    (Field::BuyerId, "buyer_id"),
    (Field::BuyerName, "buyer_name"),
    (Field::Phone, "phone"),
    (Field::Province, "province"),
    (Field::Sku, "sku"),
    (Field::Title, "title"),
    (Field::Category, "category"),
    (Field::Quantity, "quantity"),
    (Field::Price, "price"),
    (Field::StoreId, "store_id"),
    (Field::GuideId, "guide_id"),
    (Field::MemberNo, "member_no"),
    (Field::Unionid, "unionid"),
    (Field::Email, "email"),
    (Field::ReceiptKind, "receipt_kind"),
    (Field::ReturnOf, "return_of"),
    (Field::ReturnStore, "return_store"),
    (Field::Note, "note"),
];

impl Field {
    pub fn name(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
    pub fn parse(s: &str) -> Option<Field> {
        FIELDS.iter().find(|(_, n)| *n == s).map(|(f, _)| *f)
    }
}

/// A named export layout: the channel its orders belong to and the headers of each field
/// (first match wins).
#[derive(Debug, Clone)]
pub struct Preset {
    pub name: String,
    pub channel: Option<String>,
    pub headers: Vec<(Field, Vec<String>)>,
    /// Each row of an order carries its own paid and refunded amounts (a sub-order, as Douyin
    /// writes its 商品维度 export): the order's amounts are the sum of its rows.
    pub amounts_per_row: bool,
}

pub const PRESET_NAMES: &[&str] = &[
    "tmall",
    "jd",
    "douyin",
    "pdd",
    "youzan",
    "xiaohongshu",
    "pos",
    "generic",
];

fn h(field: Field, names: &[&str]) -> (Field, Vec<String>) {
    (field, names.iter().map(|s| s.to_string()).collect())
}

/// The built-in presets. Headers follow the platforms' seller-center order exports.
pub fn preset(name: &str) -> Option<Preset> {
    use Field::*;
    let (channel, headers) = match name {
        "tmall" => (
            Some("tmall"),
            vec![
                h(OrderNo, &["订单编号", "主订单编号"]),
                h(Status, &["订单状态"]),
                h(OrderedAt, &["订单创建时间", "下单时间"]),
                h(PaidAt, &["订单付款时间", "付款时间"]),
                h(Amount, &["买家实际支付金额", "买家实付金额", "实付金额"]),
                h(RefundAmount, &["退款金额"]),
                h(BuyerId, &["买家会员名", "买家昵称"]),
                h(BuyerName, &["收货人姓名"]),
                h(Phone, &["联系手机", "收货人手机号"]),
                h(Province, &["收货地址省份", "省"]),
                h(Sku, &["商家编码", "商品编码"]),
                h(Title, &["宝贝标题", "商品标题", "标题"]),
                h(Category, &["宝贝类目", "类目"]),
                h(Quantity, &["宝贝总数量", "购买数量"]),
                h(Price, &["宝贝单价", "价格", "商品价格"]),
            ],
        ),
        "jd" => (
            Some("jd"),
            vec![
                h(OrderNo, &["订单号"]),
                h(Status, &["订单状态"]),
                h(OrderedAt, &["下单时间"]),
                h(PaidAt, &["付款确认时间", "付款时间"]),
                h(Amount, &["应付金额", "订单金额"]),
                h(RefundAmount, &["退款金额"]),
                h(BuyerId, &["下单帐号", "下单账号", "用户账号"]),
                h(BuyerName, &["客户姓名", "收货人"]),
                h(Phone, &["联系电话", "客户手机"]),
                h(Province, &["省份", "省"]),
                h(Sku, &["商品ID", "商品编号"]),
                h(Title, &["商品名称"]),
                h(Category, &["商品类目", "类目"]),
                h(Quantity, &["订购数量", "数量"]),
                h(Price, &["京东价", "商品单价"]),
            ],
        ),
        "douyin" => (
            Some("douyin"),
            vec![
                h(OrderNo, &["主订单编号", "订单编号"]),
                h(Status, &["订单状态"]),
                h(OrderedAt, &["订单提交时间", "下单时间"]),
                h(PaidAt, &["支付完成时间", "支付时间"]),
                h(Amount, &["订单应付金额", "实付金额"]),
                h(RefundAmount, &["退款金额"]),
                h(BuyerId, &["用户ID", "买家ID"]),
                h(BuyerName, &["收件人"]),
                h(Phone, &["收件人手机号", "手机号"]),
                h(Province, &["省"]),
                h(Sku, &["商家编码", "商品ID"]),
                h(Title, &["选购商品", "商品名称"]),
                h(Category, &["商品类目", "类目"]),
                h(Quantity, &["商品数量"]),
                h(Price, &["商品单价"]),
            ],
        ),
        "pdd" => (
            Some("pdd"),
            vec![
                h(OrderNo, &["订单号"]),
                h(Status, &["订单状态"]),
                h(OrderedAt, &["订单成交时间", "成交时间"]),
                h(PaidAt, &["支付时间"]),
                h(Amount, &["用户实付金额(元)", "用户实付金额", "实付金额"]),
                h(RefundAmount, &["退款金额(元)", "退款金额"]),
                h(BuyerId, &["买家ID", "用户ID"]),
                h(BuyerName, &["收货人"]),
                h(Phone, &["手机", "收货人手机"]),
                h(Province, &["省"]),
                h(Sku, &["商家编码-SKU维度", "商家编码-规格维度", "商品id"]),
                h(Title, &["商品", "商品名称"]),
                h(Category, &["商品类目", "类目"]),
                h(Quantity, &["商品数量(件)", "商品数量"]),
                h(Price, &["商品单价(元)", "商品单价"]),
            ],
        ),
        "youzan" => (
            Some("youzan"),
            vec![
                h(OrderNo, &["订单号"]),
                h(Status, &["订单状态"]),
                h(OrderedAt, &["下单时间", "订单创建时间"]),
                h(PaidAt, &["付款时间", "买家付款时间", "支付时间"]),
                h(Amount, &["订单实付金额", "实付金额"]),
                h(RefundAmount, &["退款金额", "订单已退款金额"]),
                h(BuyerId, &["买家ID", "粉丝ID"]),
                h(BuyerName, &["收货人/提货人", "收货人"]),
                h(
                    Phone,
                    &["买家手机号", "收货人手机号/提货人手机号", "收货人手机号"],
                ),
                h(Province, &["收货人省份", "省"]),
                h(Sku, &["商品编码", "规格编码"]),
                h(Title, &["商品名称", "全部商品名称"]),
                h(Category, &["商品分组", "类目"]),
                h(Quantity, &["商品数量"]),
                h(Price, &["商品单价"]),
                h(Unionid, &["unionid", "微信unionid"]),
            ],
        ),
        "xiaohongshu" => (
            Some("xiaohongshu"),
            vec![
                h(OrderNo, &["订单号"]),
                h(Status, &["订单状态"]),
                h(OrderedAt, &["订单创建时间", "下单时间"]),
                h(PaidAt, &["支付时间"]),
                h(
                    Amount,
                    &["商家应收金额(元)(支付金额)", "商家应收金额(元)", "实付金额"],
                ),
                h(RefundAmount, &["退款金额"]),
                h(BuyerName, &["收件人姓名", "收件人"]),
                h(Phone, &["收件人手机号", "手机号"]),
                h(Province, &["收件人省份", "省"]),
                h(Sku, &["商家编码", "规格ID"]),
                h(Title, &["商品名称"]),
                h(Quantity, &["SKU件数", "商品数量"]),
            ],
        ),
        "pos" => (
            Some("store"),
            vec![
                h(OrderNo, &["单号", "销售单号", "小票号"]),
                h(Status, &["状态"]),
                h(OrderedAt, &["销售时间", "交易时间"]),
                h(Amount, &["实收金额", "实收"]),
                h(RefundAmount, &["退款金额"]),
                h(MemberNo, &["会员卡号", "会员号"]),
                h(BuyerName, &["会员姓名", "顾客姓名"]),
                h(Phone, &["手机号", "会员手机"]),
                h(StoreId, &["门店", "门店编码"]),
                h(GuideId, &["导购", "导购工号"]),
                h(Sku, &["商品编码", "货号"]),
                h(Title, &["商品名称", "品名"]),
                h(Category, &["品类", "类目"]),
                h(Quantity, &["数量"]),
                h(Price, &["单价", "零售价"]),
                h(ReceiptKind, &["单据类型", "销售类型", "交易类型"]),
                h(
                    ReturnOf,
                    &["原单号", "原小票号", "原销售单号", "退货原单号", "原单据号"],
                ),
                h(ReturnStore, &["原门店", "原门店编码", "原销售门店"]),
                h(Note, &["备注"]),
            ],
        ),
        "generic" => (None, FIELDS.iter().map(|(f, n)| h(*f, &[n])).collect()),
        _ => return None,
    };
    Some(Preset {
        name: name.to_owned(),
        channel: channel.map(str::to_owned),
        headers,
        amounts_per_row: name == "douyin",
    })
}

/// A mapping file: `channel = "xiaohongshu"` and a `[columns]` table of field = "header".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    channel: Option<String>,
    columns: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("mapping file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("mapping file {0}: {1}")]
    Parse(String, String),
    #[error("mapping file {0}: unknown field {1:?}; known fields: {2}")]
    UnknownField(String, String, String),
}

/// Reads a mapping file on top of a preset (its entries replace the preset's for those fields).
pub fn load_mapping(path: &Path, base: Preset) -> Result<Preset, MappingError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| MappingError::Read(name.clone(), e))?;
    let m: MappingFile = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| MappingError::Parse(name.clone(), e.to_string()))?;
    let mut p = base;
    if m.channel.is_some() {
        p.channel = m.channel;
    }
    for (k, header) in m.columns {
        let field = Field::parse(&k).ok_or_else(|| {
            MappingError::UnknownField(
                name.clone(),
                k.clone(),
                FIELDS
                    .iter()
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
        p.headers.retain(|(f, _)| *f != field);
        p.headers.push((field, vec![header]));
    }
    p.name = format!("{}+{}", p.name, name);
    Ok(p)
}

/// Which column holds each field, found from the header row.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub index: HashMap<Field, usize>,
    pub header: Vec<String>,
}

impl Columns {
    pub fn resolve(preset: &Preset, header: &[String]) -> Columns {
        // Exports write the same header with full- or half-width brackets, and with stray spaces.
        let norm = |s: &str| {
            s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                .replace('（', "(")
                .replace('）', ")")
                .to_lowercase()
        };
        let heads: Vec<String> = header.iter().map(|s| norm(s)).collect();
        let mut index = HashMap::new();
        for (field, names) in &preset.headers {
            if let Some(i) = names
                .iter()
                .find_map(|n| heads.iter().position(|h| *h == norm(n)))
            {
                index.insert(*field, i);
            }
        }
        Columns {
            index,
            header: header.to_vec(),
        }
    }

    pub fn get(&self, f: Field) -> Option<usize> {
        self.index.get(&f).copied()
    }

    /// The header name shown in error messages for a field.
    pub fn header_of(&self, f: Field) -> String {
        self.get(f)
            .and_then(|i| self.header.get(i))
            .map(|h| {
                h.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                    .to_owned()
            })
            .unwrap_or_else(|| f.name().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_finds_order_no_time_and_amount_in_its_own_headers() {
        for name in PRESET_NAMES {
            let p = preset(name).expect("preset exists");
            let header: Vec<String> = p.headers.iter().map(|(_, n)| n[0].clone()).collect();
            let c = Columns::resolve(&p, &header);
            for f in [Field::OrderNo, Field::OrderedAt, Field::Amount] {
                assert!(c.get(f).is_some(), "{name} lacks {f:?}");
            }
        }
    }

    #[test]
    fn mapping_files_override_and_name_unknown_fields() {
        let dir = tempfile::tempdir().expect("tmp");
        let ok = dir.path().join("m.toml");
        std::fs::write(
            &ok,
            "channel = \"xiaohongshu\"\n[columns]\norder_no = \"单据号\"\n",
        )
        .expect("write");
        let p = load_mapping(&ok, preset("generic").expect("generic")).expect("loads");
        assert_eq!(p.channel.as_deref(), Some("xiaohongshu"));
        let c = Columns::resolve(&p, &["单据号".to_string()]);
        assert_eq!(c.get(Field::OrderNo), Some(0));
        let bad = dir.path().join("b.toml");
        std::fs::write(&bad, "[columns]\norder_number = \"x\"\n").expect("write");
        let e = load_mapping(&bad, preset("generic").expect("generic")).expect_err("unknown field");
        assert!(e.to_string().contains("order_number"), "{e}");
    }
}
