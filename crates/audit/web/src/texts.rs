//! The audit room's rows of the text catalogue: (key, English, Simplified Chinese).

use yizhan_kit::i18n::Text;

pub static TEXTS: &[Text] = &[
    ("access.chain_bad", "Warning: the chain is broken — an entry was removed or altered.", "警告：记录链断裂——有记录被删除或篡改。"),
    ("access.chain_ok", "Chain verified: no entry removed or altered.", "记录链已校验：没有记录被删除或篡改。"),
    ("access.empty", "Nobody has read your data yet.", "还没有人查看过你的数据。"),
    ("access.field.bills", "Bills", "账单"),
    ("access.field.identity_number", "Identity number", "身份证号"),
    ("access.field.profile", "Profile", "个人资料"),
    ("access.field.transactions", "Payment records", "交易记录"),
    ("access.intro", "Every time staff read your personal data, it is written here. Nobody can delete an entry, and the chain of entries is checked so a removed or altered one shows.", "每当工作人员查看你的个人数据，都会记录在这里。任何人都不能删除记录，记录链会被校验，删改都会暴露。"),
    ("access.org", "Organisation", "机构"),
    ("access.org.platform_support", "yizhan platform support", "一站平台客服"),
    ("access.reason.appointment", "An appointment", "预约"),
    ("access.reason.bill", "A bill or fine", "账单或罚款"),
    ("access.reason.case", "A case", "案件"),
    ("access.reason.identity_check", "An identity check", "身份核验"),
    ("access.reason.permit", "A permit application", "证件申办"),
    ("access.reason.registration", "Registration", "登记"),
    ("access.title", "Who accessed my data", "谁查看了我的数据"),
    ("access.what", "What", "内容"),
    ("access.when", "When", "时间"),
    ("access.who", "Who", "查看人"),
    ("access.why", "Why", "原因"),
    ("audit.rekey.broken_chains", "{count} access logs do not verify under the current key: the rotation was refused and nothing changed", "有 {count} 份访问记录在当前密钥下校验失败：已拒绝轮换密钥，未做任何更改"),
    ("nav.access", "Access log", "访问记录"),
    ("service.access", "My data", "我的数据"),
];
