//! Text of the console: layering pages: tags, RFM and segments.

use super::Lang;

/// Layering pages: tags, RFM and segments.
pub struct LayerTr {
    pub tags_title: &'static str,
    pub group: &'static str,
    pub tag: &'static str,
    pub tag_type: &'static str,
    pub manual: &'static str,
    pub rule_tag: &'static str,
    pub members: &'static str,
    pub create_tag: &'static str,
    pub create: &'static str,
    pub upload_title: &'static str,
    pub upload_hint: &'static str,
    pub upload_submit: &'static str,
    pub tagged: &'static str,
    pub not_found_lines: &'static str,
    /// A list over `know::tags::MOST_LISTED` lines.
    pub list_too_long: &'static str,
    /// The chosen tag was deleted meanwhile.
    pub tag_gone: &'static str,
    /// A tagging that stopped part-way: those before it keep the tag; uploading again is safe.
    pub upload_stopped: &'static str,
    pub rfm_title: &'static str,
    pub rfm_classes: &'static str,
    pub stages: &'static str,
    pub rfm_note: &'static str,
    pub window_days: &'static str,
    pub cut_points: &'static str,
    pub segments_title: &'static str,
    pub new_segment: &'static str,
    pub segment_name: &'static str,
    pub match_all: &'static str,
    pub match_any: &'static str,
    pub add_condition: &'static str,
    pub live_count: &'static str,
    pub of_customers: &'static str,
    pub save: &'static str,
    pub save_as_rule_tag: &'static str,
    pub preview: &'static str,
    pub export_csv: &'static str,
    pub take_snapshot: &'static str,
    pub snapshots: &'static str,
    pub created_by: &'static str,
    pub updated: &'static str,
    pub count: &'static str,
    pub no_segments: &'static str,
    pub rule_json: &'static str,
    pub read_only: &'static str,
}

pub static ZH_L: LayerTr = LayerTr {
    tags_title: "标签",
    group: "标签组",
    tag: "标签",
    tag_type: "类型",
    manual: "手动标签",
    rule_tag: "规则标签",
    members: "人数",
    create_tag: "新建标签",
    create: "创建",
    upload_title: "上传名单打标签",
    upload_hint: "每行一个：手机号、#客户ID 或 类型:值",
    upload_submit: "打标签",
    tagged: "已打标签",
    not_found_lines: "未找到",
    list_too_long: "名单超过 100000 行，请拆分后分批上传",
    tag_gone: "所选标签已不存在，请刷新页面后重新选择",
    upload_stopped: "打标签中途停止，已打上的客户保留标签；可以直接再次上传同一名单（已打的不会重复）。已打：",
    rfm_title: "RFM 分层",
    rfm_classes: "RFM 八类客户",
    stages: "生命周期",
    rfm_note: "R=距最近购买天数，F=窗口内订单数，M=窗口内消费；各按分位数打 1–5 分，高于均值为“高”",
    window_days: "统计窗口（天）",
    cut_points: "分段阈值",
    segments_title: "人群",
    new_segment: "新建人群",
    segment_name: "人群名称",
    match_all: "满足全部条件",
    match_any: "满足任一条件",
    add_condition: "添加条件",
    live_count: "实时人数",
    of_customers: "总客户",
    save: "保存人群",
    save_as_rule_tag: "另存为规则标签",
    preview: "样本预览",
    export_csv: "导出 CSV",
    take_snapshot: "生成快照",
    snapshots: "快照",
    created_by: "创建人",
    updated: "更新时间",
    count: "人数",
    no_segments: "还没有人群，点“新建人群”开始圈选",
    rule_json: "规则 JSON",
    read_only: "你的角色只能查看，不能修改标签；请联系管理员开通运营或管理员角色",
};

pub static EN_L: LayerTr = LayerTr {
    tags_title: "Tags",
    group: "Group",
    tag: "Tag",
    tag_type: "Type",
    manual: "Manual",
    rule_tag: "Rule tag",
    members: "Customers",
    create_tag: "New tag",
    create: "Create",
    upload_title: "Tag an uploaded list",
    upload_hint: "One per line: a phone, #customer id or kind:value",
    upload_submit: "Tag them",
    tagged: "Tagged",
    not_found_lines: "Not found",
    list_too_long: "The list has more than 100000 lines: split it and upload the parts",
    tag_gone: "The chosen tag no longer exists: reload the page and choose again",
    upload_stopped: "Tagging stopped part-way; the customers tagged so far keep the tag, and uploading the same list again is safe (none is tagged twice). Tagged so far:",
    rfm_title: "RFM layering",
    rfm_classes: "The eight RFM classes",
    stages: "Lifecycle stages",
    rfm_note: "R = days since the last purchase, F = orders in the window, M = spend in the window; each scored 1–5 by quintiles, above the mean is high",
    window_days: "Window (days)",
    cut_points: "Cut points",
    segments_title: "Segments",
    new_segment: "New segment",
    segment_name: "Segment name",
    match_all: "Match all conditions",
    match_any: "Match any condition",
    add_condition: "Add condition",
    live_count: "Live count",
    of_customers: "customers in all",
    save: "Save segment",
    save_as_rule_tag: "Save as rule tag",
    preview: "Sample",
    export_csv: "Export CSV",
    take_snapshot: "Take snapshot",
    snapshots: "Snapshots",
    created_by: "Created by",
    updated: "Updated",
    count: "Customers",
    no_segments: "No segments yet: choose New segment to build one",
    rule_json: "Rule JSON",
    read_only: "Your role can view but not change tags; ask an admin for the operator or admin role",
};

impl Lang {
    pub fn lt(self) -> &'static LayerTr {
        match self {
            Lang::Zh => &ZH_L,
            Lang::En => &EN_L,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_list_limit_says_the_number_the_server_holds() {
        let most = siyu::know::tags::MOST_LISTED.to_string();
        assert!(super::ZH_L.list_too_long.contains(&most));
        assert!(super::EN_L.list_too_long.contains(&most));
    }
}
