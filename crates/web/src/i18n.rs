//! The text catalogue: every word a person sees, in English and Simplified
//! Chinese. Pages and problem titles look keys up here; a test checks that
//! every key used by a template exists and that no entry is missing a language.

use axum::http::HeaderMap;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("zh") {
            Some(Lang::Zh)
        } else if s.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The `lang` cookie wins (the switch on the page), then Accept-Language by quality.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        if let Some(l) = crate::extract::cookie(headers, "lang").and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let Some(al) = headers.get("accept-language").and_then(|v| v.to_str().ok()) else {
            return Lang::En;
        };
        let mut best: Option<(Lang, f32)> = None;
        for part in al.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("");
            let q =
                it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
            if let Some(l) = Lang::parse(tag) {
                if best.is_none_or(|(_, bq)| q > bq) {
                    best = Some((l, q));
                }
            }
        }
        best.map(|(l, _)| l).unwrap_or(Lang::En)
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }

    pub fn t(self, key: &str) -> &'static str {
        lookup(self, key)
    }

    /// Pick between two texts given in both languages (e.g. a stored notification).
    pub fn pick<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }
}

pub fn lookup(lang: Lang, key: &str) -> &'static str {
    match CATALOG.binary_search_by(|(k, _, _)| (*k).cmp(key)) {
        Ok(i) => match lang {
            Lang::En => CATALOG[i].1,
            Lang::Zh => CATALOG[i].2,
        },
        Err(_) => {
            tracing::warn!(key, "missing catalogue key");
            "??"
        }
    }
}

/// (key, English, Simplified Chinese), sorted by key (a test checks).
pub static CATALOG: &[(&str, &str, &str)] = &[
    ("access.chain_bad", "Warning: the chain is broken — an entry was removed or altered.", "警告：记录链断裂——有记录被删除或篡改。"),
    ("access.chain_ok", "Chain verified: no entry removed or altered.", "记录链已校验：没有记录被删除或篡改。"),
    ("access.empty", "Nobody has read your data yet.", "还没有人查看过你的数据。"),
    ("access.intro", "Every time staff read your personal data, it is written here. Nobody can delete an entry, and the chain of entries is checked so a removed or altered one shows.", "每当工作人员查看你的个人数据，都会记录在这里。任何人都不能删除记录，记录链会被校验，删改都会暴露。"),
    ("access.org", "Organisation", "机构"),
    ("access.title", "Who accessed my data", "谁查看了我的数据"),
    ("access.what", "What", "内容"),
    ("access.when", "When", "时间"),
    ("access.who", "Who", "查看人"),
    ("access.why", "Why", "原因"),
    ("app.name", "yizhan", "一站"),
    ("app.tagline", "One account, one wallet, every service of your city — and you see who reads your data.", "一个账号，一个钱包，城市服务一站办——谁看了你的数据，你都知道。"),
    ("delete.button", "Delete my account", "注销我的账号"),
    ("delete.confirm", "Type DELETE to confirm", "输入 DELETE 确认"),
    ("delete.done", "Your account has been deleted.", "你的账号已注销。"),
    ("delete.intro", "Deleting your account erases your name, login, password, identity number and messages. What the law or money requires is kept: your access log and your payment records.", "注销账号会清除你的姓名、登录名、密码、身份证号和消息。法律或资金要求保留的内容会被保留：访问记录和支付记录。"),
    ("delete.title", "Delete account", "注销账号"),
    ("error.already_claimed", "You have already claimed this", "你已经领取过了"),
    ("error.already_exists", "Already exists", "已存在"),
    ("error.already_paid", "Already paid", "已经支付过了"),
    ("error.code_expired", "The code has expired", "付款码已过期"),
    ("error.code_used", "The code has already been used", "付款码已被使用"),
    ("error.conflict", "Conflict", "冲突"),
    ("error.csrf_failed", "The form expired; please try again", "表单已过期，请重试"),
    ("error.forbidden", "You are not allowed to do this", "你无权执行此操作"),
    ("error.gateway_timeout", "The payment provider did not answer in time", "支付机构未及时响应"),
    ("error.hold_expired", "The hold has expired", "预授权已过期"),
    ("error.idempotency_in_progress", "The same request is already being processed", "相同的请求正在处理中"),
    ("error.idempotency_key_required", "An Idempotency-Key header is required", "需要 Idempotency-Key 请求头"),
    ("error.idempotency_key_reused", "This Idempotency-Key was used for a different request", "该 Idempotency-Key 已用于另一个请求"),
    ("error.insufficient_funds", "Insufficient funds", "余额不足"),
    ("error.internal", "Something went wrong on our side", "服务器出错了"),
    ("error.invalid_credentials", "Wrong login or password", "登录名或密码错误"),
    ("error.malformed_json", "The request body is not valid JSON", "请求体不是有效的 JSON"),
    ("error.not_found", "Not found", "未找到"),
    ("error.packet_empty", "All shares have been claimed", "红包已被领完"),
    ("error.payload_too_large", "The request is too large", "请求过大"),
    ("error.payment_declined", "The payment was declined", "支付被拒绝"),
    ("error.qr_invalid", "The QR code is not valid", "二维码无效"),
    ("error.self_payment", "You cannot pay yourself", "不能向自己付款"),
    ("error.too_many_attempts", "Too many failed attempts; try again later", "失败次数过多，请稍后再试"),
    ("error.transfer_already_resolved", "This transfer has already been resolved", "该笔交易已处理"),
    ("error.unauthorized", "Please log in", "请先登录"),
    ("error.unsupported_media_type", "Send the request as application/json", "请以 application/json 发送请求"),
    ("error.validation_failed", "Some fields are not valid", "部分字段无效"),
    ("export.button", "Download my data (JSON)", "下载我的数据（JSON）"),
    ("export.intro", "Everything the platform holds about you, as one JSON file. Each section says whether it is kept after you delete your account.", "平台保存的关于你的全部数据，一个 JSON 文件。每一部分都注明注销后是否保留。"),
    ("export.title", "My data", "我的数据"),
    ("form.login", "Phone number or e-mail", "手机号或邮箱"),
    ("form.name", "Name", "姓名"),
    ("form.password", "Password", "密码"),
    ("form.reason", "Reason", "原因"),
    ("form.submit", "Submit", "提交"),
    ("home.greeting", "Hello", "你好"),
    ("home.no_city", "Choose your city to see its services.", "选择你的城市以查看本地服务。"),
    ("home.services", "Services", "服务"),
    ("home.title", "Home", "首页"),
    ("lang.switch", "中文", "English"),
    ("login.button", "Log in", "登录"),
    ("login.no_account", "No account yet?", "还没有账号？"),
    ("login.title", "Log in", "登录"),
    ("logout.button", "Log out", "退出登录"),
    ("nav.access", "Access log", "访问记录"),
    ("nav.home", "Home", "首页"),
    ("nav.inbox", "Inbox", "消息"),
    ("nav.profile", "Me", "我的"),
    ("notify.empty", "No messages.", "没有消息。"),
    ("notify.mark_all", "Mark all as read", "全部标为已读"),
    ("notify.title", "Inbox", "消息"),
    ("notify.welcome_body", "Your yizhan account is ready. Verify your real name to use city services and payments.", "你的一站账号已就绪。完成实名认证即可使用城市服务和支付。"),
    ("notify.welcome_title", "Welcome to yizhan", "欢迎使用一站"),
    ("profile.city", "My city", "我的城市"),
    ("profile.city_button", "Set city", "设置城市"),
    ("profile.id_number", "Identity number", "身份证号"),
    ("profile.level", "Verification", "认证状态"),
    ("profile.level0", "Not verified", "未实名"),
    ("profile.level1", "Real name verified", "已实名"),
    ("profile.login", "Login", "登录名"),
    ("profile.memberships", "Staff of", "任职机构"),
    ("profile.title", "Me", "我的"),
    ("realname.button", "Verify", "认证"),
    ("realname.done", "Your real name is verified.", "实名认证成功。"),
    ("realname.id_number", "Resident identity number (18 characters)", "居民身份证号（18位）"),
    ("realname.intro", "Your identity number is encrypted; staff who read it are listed in your access log.", "你的身份证号会被加密保存；查看过它的工作人员会记录在你的访问记录里。"),
    ("realname.title", "Real-name verification", "实名认证"),
    ("register.button", "Create account", "注册"),
    ("register.have_account", "Already registered?", "已有账号？"),
    ("register.title", "Create your account", "注册账号"),
    ("service.access", "My data", "我的数据"),
    ("service.city", "City services", "城市服务"),
    ("service.credit", "Credit", "信用"),
    ("service.health", "Health", "医疗"),
    ("service.inbox", "Inbox", "消息"),
    ("service.live", "Live", "直播"),
    ("service.mobility", "Mobility", "出行"),
    ("service.shopping", "Shopping", "购物"),
    ("service.wallet", "Wallet", "钱包"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_unique_and_complete() {
        for w in CATALOG.windows(2) {
            assert!(w[0].0 < w[1].0, "catalogue not sorted or duplicated at {} / {}", w[0].0, w[1].0);
        }
        for (k, en, zh) in CATALOG {
            assert!(!en.is_empty() && !zh.is_empty(), "{k} is missing a language");
        }
    }

    #[test]
    fn every_error_code_has_a_title() {
        for code in yizhan_core::Code::ALL {
            let key = format!("error.{}", code.as_str());
            assert!(CATALOG.iter().any(|(k, _, _)| *k == key), "missing {key}");
        }
    }

    #[test]
    fn every_key_used_in_templates_exists() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for part in text.split("t(\"").skip(1) {
                let key = &part[..part.find('"').unwrap()];
                seen += 1;
                assert!(CATALOG.iter().any(|(k, _, _)| *k == key), "template uses unknown key {key}");
            }
        }
        assert!(seen > 10, "templates were not scanned");
    }

    #[test]
    fn accept_language_and_cookie_pick_the_language() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert("accept-language", "zh-CN,zh;q=0.9,en;q=0.8".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::Zh);
        h.insert("accept-language", "en-US,zh;q=0.5".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert("cookie", "a=b; lang=zh".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::Zh);
    }
}
