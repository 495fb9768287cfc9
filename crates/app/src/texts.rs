//! The app room's rows of the text catalogue: (key, English, Simplified Chinese).

use yizhan_kit::i18n::Text;

pub static TEXTS: &[Text] = &[
    ("delete.button", "Delete my account", "注销我的账号"),
    ("delete.confirm", "Type {word} to confirm", "输入“{word}”确认"),
    ("delete.confirm_word", "DELETE", "注销"),
    ("delete.confirm_wrong", "Type {word} exactly to confirm", "请准确输入“{word}”以确认"),
    ("delete.done", "Your account has been deleted.", "你的账号已注销。"),
    ("delete.intro", "Deleting your account erases your name, login, password, identity number, messages and car plates. What the law or money requires is kept: your access log and your payment records. Withdraw the money in your wallet first.", "注销账号会清除你的姓名、登录名、密码、身份证号、消息和车牌。法律或资金要求保留的内容会被保留：访问记录和支付记录。请先提现钱包里的余额。"),
    ("delete.title", "Delete account", "注销账号"),
    ("error.not_found.page", "There is no such page", "页面不存在"),
    ("error.not_found.route", "There is no such address in the API", "接口中没有这个地址"),
    ("export.button", "Download my data (JSON)", "下载我的数据（JSON）"),
    ("export.intro", "Everything the platform holds about you, as one JSON file. Each section says whether it is kept after you delete your account.", "平台保存的关于你的全部数据，一个 JSON 文件。每一部分都注明注销后是否保留。"),
    ("export.title", "My data", "我的数据"),
    ("home.greeting", "Hello", "你好"),
    ("home.no_city", "Choose your city to see its services.", "选择你的城市以查看本地服务。"),
    ("home.services", "Services", "服务"),
    ("home.title", "Home", "首页"),
    ("service.city", "City services", "城市服务"),
    ("service.credit", "Credit", "信用"),
    ("service.health", "Health", "医疗"),
    ("service.live", "Live", "直播"),
    ("service.mobility", "Mobility", "出行"),
    ("service.shopping", "Shopping", "购物"),
];
