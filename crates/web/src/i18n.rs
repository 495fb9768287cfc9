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

    /// A key built from a prefix and a value, e.g. ("kind", "hospital") → "kind.hospital".
    pub fn tk(self, prefix: &str, key: &str) -> &'static str {
        lookup(self, &format!("{prefix}.{key}"))
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
    ("admin.add", "Add", "添加"),
    ("admin.add_staff", "Add staff to an organisation", "为机构添加工作人员"),
    ("admin.cities", "Cities and organisations", "城市与机构"),
    ("admin.city", "City", "城市"),
    ("admin.city_name", "City name", "城市名称"),
    ("admin.create", "Create", "创建"),
    ("admin.done", "Done.", "已完成。"),
    ("admin.new_city", "New city", "新建城市"),
    ("admin.new_org", "New organisation", "新建机构"),
    ("admin.no_cities", "No city yet: create the first one.", "还没有城市：创建第一个吧。"),
    ("admin.org_kind", "Kind", "类型"),
    ("admin.org_name", "Organisation name", "机构名称"),
    ("admin.person_login", "Their login (phone or e-mail)", "对方的登录名（手机号或邮箱）"),
    ("admin.role", "Role", "角色"),
    ("admin.services", "Services the city offers", "城市提供的服务"),
    ("admin.title", "Administration", "平台管理"),
    ("app.name", "yizhan", "一站"),
    ("app.tagline", "One account, one wallet, every service of your city — and you see who reads your data.", "一个账号，一个钱包，城市服务一站办——谁看了你的数据，你都知道。"),
    ("bills.due", "Due", "截止"),
    ("bills.empty", "No bills or fines. Nice.", "没有账单或罚款。"),
    ("bills.late", "Late", "已逾期"),
    ("bills.paid", "Paid", "已缴纳"),
    ("bills.paid_done", "Paid", "缴费成功"),
    ("bills.pay", "Pay now", "立即缴纳"),
    ("bills.receipt", "Receipt", "缴费凭证"),
    ("bills.title", "Bills and fines", "账单与罚款"),
    ("category.bill", "Bills", "缴费"),
    ("category.electricity", "Electricity", "电费"),
    ("category.fee", "Fee", "费用"),
    ("category.fine", "Fine", "罚款"),
    ("category.gas", "Gas", "燃气费"),
    ("category.heating", "Heating", "供暖费"),
    ("category.medical", "Medical", "医疗费用"),
    ("category.p2p", "Transfers", "转账"),
    ("category.paycode", "Pay code", "付款码"),
    ("category.qr", "QR payments", "扫码支付"),
    ("category.red_packet", "Red packets", "红包"),
    ("category.red_packet_refund", "Red packet refunds", "红包退回"),
    ("category.topup", "Top-ups", "充值"),
    ("category.water", "Water", "水费"),
    ("category.withdrawal", "Withdrawals", "提现"),
    ("delete.button", "Delete my account", "注销我的账号"),
    ("delete.confirm", "Type DELETE to confirm", "输入 DELETE 确认"),
    ("delete.done", "Your account has been deleted.", "你的账号已注销。"),
    ("delete.intro", "Deleting your account erases your name, login, password, identity number, messages and car plates. What the law or money requires is kept: your access log and your payment records. Withdraw the money in your wallet first.", "注销账号会清除你的姓名、登录名、密码、身份证号、消息和车牌。法律或资金要求保留的内容会被保留：访问记录和支付记录。请先提现钱包里的余额。"),
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
    ("history.empty", "No transactions yet.", "还没有交易记录。"),
    ("history.newest", "Newest", "最新"),
    ("history.older", "Older", "更早"),
    ("history.on_hold", "on hold", "冻结中"),
    ("home.greeting", "Hello", "你好"),
    ("home.no_city", "Choose your city to see its services.", "选择你的城市以查看本地服务。"),
    ("home.services", "Services", "服务"),
    ("home.title", "Home", "首页"),
    ("kind.city_department", "City department", "政府部门"),
    ("kind.court", "Court", "法院"),
    ("kind.hospital", "Hospital", "医院"),
    ("kind.merchant", "Merchant", "商户"),
    ("kind.mobility_operator", "Mobility operator", "出行运营商"),
    ("lang.switch", "中文", "English"),
    ("login.button", "Log in", "登录"),
    ("login.no_account", "No account yet?", "还没有账号？"),
    ("login.title", "Log in", "登录"),
    ("logout.button", "Log out", "退出登录"),
    ("nav.access", "Access log", "访问记录"),
    ("nav.admin", "Administration", "平台管理"),
    ("nav.home", "Home", "首页"),
    ("nav.inbox", "Inbox", "消息"),
    ("nav.profile", "Me", "我的"),
    ("notify.empty", "No messages.", "没有消息。"),
    ("notify.mark_all", "Mark all as read", "全部标为已读"),
    ("notify.title", "Inbox", "消息"),
    ("notify.welcome_body", "Your yizhan account is ready. Verify your real name to use city services and payments.", "你的一站账号已就绪。完成实名认证即可使用城市服务和支付。"),
    ("notify.welcome_title", "Welcome to yizhan", "欢迎使用一站"),
    ("packet.claims", "Opened by", "领取记录"),
    ("packet.count", "Number of shares", "红包个数"),
    ("packet.expires", "Open until", "有效期至"),
    ("packet.fixed", "Equal shares", "普通红包"),
    ("packet.got", "You got", "你抢到了"),
    ("packet.greeting", "Greeting", "祝福语"),
    ("packet.greeting_default", "Best wishes!", "恭喜发财，大吉大利！"),
    ("packet.lucky", "Lucky draw", "拼手气红包"),
    ("packet.mode", "Kind", "类型"),
    ("packet.open", "Open a red packet", "领取红包"),
    ("packet.open_button", "Open", "开"),
    ("packet.open_hint", "Red packet link or id", "红包链接或编号"),
    ("packet.refunded", "Expired; the rest went back to the sender.", "已过期，剩余金额已退回发送人。"),
    ("packet.send", "Send a red packet", "发红包"),
    ("packet.send_button", "Put money in", "塞钱进红包"),
    ("packet.share_hint", "Share this link with your group:", "把这个链接发到群里："),
    ("packet.title", "Red packets", "红包"),
    ("packet.to", "For one person (phone or e-mail)", "发给某人（手机号或邮箱）"),
    ("packet.to_hint", "Leave empty for a group packet anyone with the link may open.", "留空即为群红包，持链接的人都可以领取。"),
    ("packet.total", "Total (yuan)", "总金额（元）"),
    ("pay.cancel", "Cancel", "取消"),
    ("pay.confirm", "Pay", "确认付款"),
    ("pay.done", "Paid", "付款成功"),
    ("pay.fixed_amount", "Amount asked", "收款金额"),
    ("pay.intro", "Scan a payment code with the camera, or paste what another app read from it.", "用相机扫描收款码，或粘贴其他应用识别出的内容。"),
    ("pay.payee", "You are paying", "付款给"),
    ("pay.payload", "Payment code content", "收款码内容"),
    ("pay.preview", "Continue", "下一步"),
    ("pay.scan", "Scan with camera", "相机扫码"),
    ("pay.title", "Pay", "付款"),
    ("paycode.expires", "Valid until", "有效期至"),
    ("paycode.intro", "Show this to the cashier. It works once and only for 60 seconds.", "向收银员出示。仅可使用一次，60 秒内有效。"),
    ("paycode.refresh", "New code", "刷新付款码"),
    ("paycode.title", "Pay code", "付款码"),
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
    ("receipt.amount", "Amount", "金额"),
    ("receipt.ref", "Reference", "交易号"),
    ("receipt.to", "To", "收款方"),
    ("register.button", "Create account", "注册"),
    ("register.have_account", "Already registered?", "已有账号？"),
    ("register.title", "Create your account", "注册账号"),
    ("role.admin", "Admin", "管理员"),
    ("role.operator", "Operator", "操作员"),
    ("send.button", "Send", "转账"),
    ("send.done", "Sent", "转账成功"),
    ("send.memo", "Note (optional)", "备注（可选）"),
    ("send.title", "Send money", "转账"),
    ("send.to", "To (phone number, e-mail or payment code)", "收款人（手机号、邮箱或收款码）"),
    ("service.access", "My data", "我的数据"),
    ("service.city", "City services", "城市服务"),
    ("service.credit", "Credit", "信用"),
    ("service.health", "Health", "医疗"),
    ("service.inbox", "Inbox", "消息"),
    ("service.live", "Live", "直播"),
    ("service.mobility", "Mobility", "出行"),
    ("service.shopping", "Shopping", "购物"),
    ("service.wallet", "Wallet", "钱包"),
    ("statement.category", "Category", "类别"),
    ("statement.empty", "Nothing this month.", "本月没有收支。"),
    ("statement.in", "In", "收入"),
    ("statement.out", "Out", "支出"),
    ("wallet.amount_yuan", "Amount (yuan)", "金额（元）"),
    ("wallet.available", "Available", "可用"),
    ("wallet.back", "Back to the wallet", "返回钱包"),
    ("wallet.balance", "Balance", "余额"),
    ("wallet.card", "Card number", "银行卡号"),
    ("wallet.card_hint", "Sandbox: leave empty for the test card that always succeeds.", "沙箱环境：留空即使用总能成功的测试卡。"),
    ("wallet.history", "History", "账单明细"),
    ("wallet.my_qr", "My payment code", "我的收款码"),
    ("wallet.pay", "Scan to pay", "扫码付款"),
    ("wallet.paycode", "Pay code", "付款码"),
    ("wallet.pending", "On hold", "冻结"),
    ("wallet.qr_hint", "Others scan this to pay you.", "别人扫这个码就能向你付款。"),
    ("wallet.send", "Send", "转账"),
    ("wallet.statement", "Monthly statement", "月度账单"),
    ("wallet.title", "Wallet", "钱包"),
    ("wallet.topup", "Top up", "充值"),
    ("wallet.topup_button", "Top up", "充值"),
    ("wallet.topup_done", "Topped up", "充值成功"),
    ("wallet.withdraw", "Withdraw", "提现"),
    ("wallet.withdraw_button", "Withdraw", "提现"),
    ("wallet.withdraw_done", "Withdrawn", "提现成功"),
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
    fn keys_built_from_values_exist() {
        for k in yizhan_identity::OrgKind::ALL {
            assert_ne!(Lang::Zh.tk("kind", k.as_str()), "??", "kind.{k}");
        }
        for k in crate::pages::admin::CITY_SERVICES {
            assert_ne!(Lang::Zh.tk("service", k), "??", "service.{k}");
        }
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
