//! The app room's rows of the text catalogue: (key, English, Simplified Chinese).

use yizhan_kit::i18n::Text;

pub static TEXTS: &[Text] = &[
    ("error.metrics.forbidden", "Metrics are served to the operator only", "监控指标仅对运维人员开放"),
    ("error.not_found.page", "There is no such page", "页面不存在"),
    ("error.not_found.route", "There is no such address in the API", "接口中没有这个地址"),
    ("home.greeting", "Hello", "你好"),
    ("home.no_city", "Choose your city to see its services.", "选择你的城市以查看本地服务。"),
    ("home.services", "Services", "服务"),
    ("home.title", "Home", "首页"),
    ("home.work", "My work: cashier, receiving, bills", "我的工作：收银、收款、开单"),
    ("service.city", "City services", "城市服务"),
    ("service.credit", "Credit", "信用"),
    ("service.health", "Health", "医疗"),
    ("service.live", "Live", "直播"),
    ("service.mobility", "Mobility", "出行"),
    ("service.shopping", "Shopping", "购物"),
];
