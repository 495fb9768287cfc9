//! The notify room's rows of the text catalogue: (key, English, Simplified Chinese).

use yizhan_kit::i18n::Text;

pub static TEXTS: &[Text] = &[
    ("error.not_found.notification", "Message not found", "未找到该消息"),
    ("nav.inbox", "Inbox", "消息"),
    ("notify.empty", "No messages.", "没有消息。"),
    ("notify.mail.address_invalid", "Mail cannot be delivered to this address", "邮件无法投递到该地址"),
    ("notify.mail.not_configured", "No mail sender is configured", "未配置邮件发送服务"),
    ("notify.mail.sender_invalid", "The sender address of the mail is not valid", "邮件的发件地址无效"),
    ("notify.mail.timeout", "The mail server did not answer in time", "邮件服务器未及时响应"),
    ("notify.mark_all", "Mark all as read", "全部标为已读"),
    ("notify.outbox.empty", "The outbox is empty.", "发件箱是空的。"),
    ("notify.outbox.kind", "Kind", "类型"),
    ("notify.outbox.kind.mail", "E-mail", "邮件"),
    ("notify.outbox.kind.sms", "Text message", "短信"),
    (
        "notify.outbox.sandbox",
        "Sandbox: nothing was delivered. These messages were only written to the outbox in the data directory.",
        "沙盒：以下消息均未实际发送，只写入了数据目录中的发件箱。",
    ),
    ("notify.outbox.text", "Text", "内容"),
    ("notify.outbox.time", "Time", "时间"),
    ("notify.outbox.title", "Outbox (sandbox)", "发件箱（沙盒）"),
    ("notify.outbox.to", "To", "收件方"),
    ("notify.sms.not_configured", "No text-message sender is configured", "未配置短信发送服务"),
    ("notify.sms.phone_invalid", "This phone number is not valid", "手机号码无效"),
    ("notify.sms.text_invalid", "The text message is empty or too long", "短信内容为空或过长"),
    ("notify.stored_text", "{en}", "{zh}"),
    ("notify.title", "Inbox", "消息"),
    ("service.inbox", "Inbox", "消息"),
];
