//! The notify room's rows of the text catalogue: (key, English, Simplified Chinese).

use yizhan_kit::i18n::Text;

pub static TEXTS: &[Text] = &[
    ("error.not_found.notification", "Message not found", "未找到该消息"),
    ("nav.inbox", "Inbox", "消息"),
    ("notify.empty", "No messages.", "没有消息。"),
    ("notify.mail.address_invalid", "Mail cannot be delivered to this address", "邮件无法投递到该地址"),
    ("notify.mail.sender_invalid", "The sender address of the mail is not valid", "邮件的发件地址无效"),
    ("notify.mail.timeout", "The mail server did not answer in time", "邮件服务器未及时响应"),
    ("notify.mark_all", "Mark all as read", "全部标为已读"),
    ("notify.stored_text", "{en}", "{zh}"),
    ("notify.title", "Inbox", "消息"),
    ("service.inbox", "Inbox", "消息"),
];
