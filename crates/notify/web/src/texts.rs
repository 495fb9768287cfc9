//! The notify room's rows of the text catalogue: (key, English, Simplified Chinese).

use yizhan_kit::i18n::Text;

pub static TEXTS: &[Text] = &[
    ("nav.inbox", "Inbox", "消息"),
    ("notify.empty", "No messages.", "没有消息。"),
    ("notify.mark_all", "Mark all as read", "全部标为已读"),
    ("notify.stored_text", "{en}", "{zh}"),
    ("notify.title", "Inbox", "消息"),
    ("service.inbox", "Inbox", "消息"),
];
