//! The wallet room's rows of the text catalogue: (key, English, Simplified Chinese).

use yizhan_kit::i18n::Text;

pub static TEXTS: &[Text] = &[
    ("bills.due", "Due", "截止"),
    ("bills.empty", "No bills or fines. Nice.", "没有账单或罚款。"),
    ("bills.late", "Late", "已逾期"),
    ("bills.paid", "Paid", "已缴纳"),
    ("bills.paid_done", "Paid", "缴费成功"),
    ("bills.paid_msg", "Paid ¥{amount} → {payee}", "已向{payee}缴费 ¥{amount}"),
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
    ("error.already_claimed", "You have already claimed this", "你已经领取过了"),
    ("error.already_paid", "Already paid", "已经支付过了"),
    ("error.code_expired", "The code has expired", "付款码已过期"),
    ("error.code_used", "The code has already been used", "付款码已被使用"),
    ("error.hold_expired", "The hold has expired", "预授权已过期"),
    ("error.insufficient_funds", "Insufficient funds", "余额不足"),
    ("error.not_found.bill", "This bill was not found", "没有找到这张账单"),
    ("error.not_found.gateway", "This payment gateway was not found", "没有找到该支付通道"),
    ("error.not_found.hold", "The money on hold was not found", "没有找到这笔冻结资金"),
    ("error.not_found.ledger_account", "The account was not found", "没有找到该账户"),
    ("error.not_found.pay_code", "This pay code was not found", "没有找到这个付款码"),
    ("error.not_found.red_packet", "This red packet was not found", "没有找到这个红包"),
    ("error.not_found.transfer", "The transaction was not found", "没有找到这笔交易"),
    ("error.packet_empty", "All shares have been claimed", "红包已被领完"),
    ("error.payment_declined", "The payment was declined", "支付被拒绝"),
    ("error.qr_invalid", "The QR code is not valid", "二维码无效"),
    ("error.self_payment", "You cannot pay yourself", "不能向自己付款"),
    ("error.transfer_already_resolved", "This transfer has already been resolved", "该笔交易已处理"),
    ("history.card", "Bank card", "银行卡"),
    ("history.card_sandbox", "Bank card (test)", "银行卡（测试）"),
    ("history.empty", "No transactions yet.", "还没有交易记录。"),
    ("history.newest", "Newest", "最新"),
    ("history.older", "Older", "更早"),
    ("history.on_hold", "on hold", "冻结中"),
    ("history.platform", "yizhan", "驿站"),
    ("history.red_packet", "Red packet", "红包"),
    ("ledger.account_exists_differently", "This account already exists with other settings", "该账户已存在，但设置不同"),
    ("ledger.amount.not_positive", "The amount must be more than zero", "金额必须大于零"),
    ("ledger.amount.too_large", "The amount is over the limit of {max} yuan", "金额超过了 {max} 元的上限"),
    ("ledger.bench_opts", "The benchmark needs at least 2 accounts, 1 task and a hot share from 0 to 100", "压力测试至少需要 2 个账户、1 个任务，热点比例须在 0 到 100 之间"),
    ("ledger.credit_limit.in_use", "The account already uses more credit than the new limit", "该账户已用的透支额度超过了新的额度"),
    ("ledger.credit_limit.negative", "The credit limit must be zero or more", "透支额度不能小于零"),
    ("ledger.currency_mismatch", "The currency differs from the accounts' currency", "币种与账户的币种不一致"),
    ("ledger.currency_only_cny", "Only CNY is supported", "仅支持人民币（CNY）"),
    ("ledger.hold_expired", "The hold has expired and the money was released", "冻结已过期，资金已解冻"),
    ("ledger.hold_resolved", "The money on hold was already {state}", "这笔冻结资金已{state}"),
    ("ledger.hold_state.expired", "released after expiring", "过期解冻"),
    ("ledger.hold_state.pending", "on hold", "冻结"),
    ("ledger.hold_state.posted", "paid out", "入账"),
    ("ledger.hold_state.voided", "released", "解冻"),
    ("ledger.id.control", "Must not contain control characters", "不能包含控制字符"),
    ("ledger.id.empty", "Must not be empty", "不能为空"),
    ("ledger.id.too_long", "Must be at most {max} bytes", "不能超过 {max} 字节"),
    ("ledger.insufficient_funds", "Only {available} yuan is available; {needed} yuan is needed", "可用余额只有 {available} 元，需要 {needed} 元"),
    ("ledger.key_reused", "This payment key was already used for a different payment", "这个幂等键已用于另一笔付款"),
    ("ledger.linked_failed", "Payment {index} of {count} failed, so none was made: {reason}", "{count} 笔付款中的第 {index} 笔失败，所有付款均未执行：{reason}"),
    ("ledger.memo_too_long", "The note must be at most {max} bytes", "备注不能超过 {max} 字节"),
    ("ledger.page_limit", "The page size must be 1 to {max}", "每页条数须在 1 到 {max} 之间"),
    ("ledger.post_exceeds_hold", "Cannot take more than the amount on hold", "扣款不能超过冻结的金额"),
    ("ledger.same_account", "Money cannot move from an account to itself", "不能在同一个账户内转账"),
    ("ledger.timeout_not_positive", "The hold time must be positive", "冻结时长必须大于零"),
    ("ledger.transfer_exists", "This transaction already exists", "这笔交易已存在"),
    ("ledger.transfers_empty", "There are no payments to make", "没有要执行的付款"),
    ("packet.claims", "Opened by", "领取记录"),
    ("packet.count", "Number of shares", "红包个数"),
    ("packet.expires", "Open until", "有效期至"),
    ("packet.fixed", "Equal shares", "普通红包"),
    ("packet.got", "You got", "你抢到了"),
    ("packet.got_msg", "You got ¥{amount}", "你抢到了 ¥{amount}"),
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
    ("pay.bill.already_paid", "This bill is already paid", "这张账单已经缴纳"),
    ("pay.bill.description_control", "The description must not contain control characters", "说明不能包含控制字符"),
    ("pay.bill.description_len", "The description must be 1 to {max} characters", "说明须为 1 到 {max} 个字符"),
    ("pay.bill.due_past", "The due date must be in the future", "截止日期必须晚于现在"),
    ("pay.bill.issuer_only", "Only a city department or a court may issue fines", "只有城市部门或法院可以开具罚款"),
    ("pay.bill.kind_unknown", "Choose a kind: fine, water, electricity, gas, heating, medical or fee", "请选择类型：罚款、水费、电费、燃气费、供暖费、医疗费用或其他费用"),
    ("pay.bill.no_person", "No verified person has this identity number", "没有实名认证用户使用这个身份证号"),
    ("pay.bill.no_vehicle", "No vehicle is registered with this plate", "没有车辆登记这个车牌号"),
    ("pay.bill.plate_format", "Enter a plate like 浙A12345 (or 浙AD12345 for a new-energy vehicle)", "请输入形如 浙A12345 的车牌号（新能源车为 浙AD12345）"),
    ("pay.bill.plate_taken", "This plate is registered to someone else", "这个车牌号已登记在他人名下"),
    ("pay.bill_kind.electricity", "electricity bill", "电费"),
    ("pay.bill_kind.fee", "fee", "费用"),
    ("pay.bill_kind.fine", "fine", "罚款"),
    ("pay.bill_kind.gas", "gas bill", "燃气费"),
    ("pay.bill_kind.heating", "heating bill", "供暖费"),
    ("pay.bill_kind.medical", "medical bill", "医疗费用"),
    ("pay.bill_kind.water", "water bill", "水费"),
    ("pay.cancel", "Cancel", "取消"),
    ("pay.close.has_money", "Your wallet still holds {balance} yuan ({pending} yuan on hold): withdraw it before deleting the account", "你的钱包还有 {balance} 元（其中冻结 {pending} 元），请先提现再注销账户"),
    ("pay.close.open_packets", "Red packets you sent are still open; what is unclaimed returns to your wallet after 24 hours", "你发出的红包还未结束，未领取的金额会在 24 小时后退回你的钱包"),
    ("pay.confirm", "Pay", "确认付款"),
    ("pay.done", "Paid", "付款成功"),
    ("pay.done_msg", "Paid ¥{amount} → {payee}", "已向{payee}付款 ¥{amount}"),
    ("pay.fixed_amount", "Amount asked", "收款金额"),
    ("pay.fixed_amount_needed", "This code asks for exactly {amount} yuan", "这个收款码要求支付 {amount} 元"),
    ("pay.gateway.bad_notification", "The gateway's notification could not be read", "无法读取支付通道的通知"),
    ("pay.gateway.card_invalid", "This is not a valid card number", "银行卡号无效"),
    ("pay.gateway.declined", "The card was declined", "银行卡被拒绝"),
    ("pay.gateway.notification_id", "The notification id must be 1 to 100 characters", "通知编号须为 1 到 100 个字符"),
    ("pay.gateway.reference_len", "The reference must be 1 to 200 characters", "业务编号须为 1 到 200 个字符"),
    ("pay.gateway.reference_reused", "The gateway already used this reference for another payment", "支付通道已将这个业务编号用于另一笔付款"),
    ("pay.gateway.signature_mismatch", "The notification's signature does not match", "通知的签名不匹配"),
    ("pay.gateway.signature_not_hex", "The notification's signature is not readable", "无法识别通知的签名"),
    ("pay.gateway.timeout", "The bank did not answer in time; nothing was charged", "银行未及时响应，没有扣款"),
    ("pay.gateway.unsigned", "The notification is not signed", "通知没有签名"),
    ("pay.intro", "Scan a payment code with the camera, or paste what another app read from it.", "用相机扫描收款码，或粘贴其他应用识别出的内容。"),
    ("pay.key_invalid", "The payment key must be 1 to {max} printable characters without spaces", "幂等键须为 1 到 {max} 个可打印字符，且不含空格"),
    ("pay.key_required", "Every payment needs an idempotency key", "每笔付款都需要幂等键"),
    ("pay.memo_control", "The note must not contain control characters", "备注不能包含控制字符"),
    ("pay.memo_too_long", "The note must be at most {max} characters", "备注不能超过 {max} 个字符"),
    ("pay.month_range", "The month must be 1 to 12", "月份须在 1 到 12 之间"),
    ("pay.no_such_login", "Nobody has this phone number or e-mail address", "没有用户使用这个手机号或邮箱"),
    ("pay.notice.bill.body", "{description}\nDue {due} (China time).", "{description}\n请于 {due} 前缴纳。"),
    ("pay.notice.bill.title", "New {kind} from {org}: {amount} yuan", "{org}向你开具{kind}：{amount} 元"),
    ("pay.notice.packet.body", "Open it within 24 hours.", "请在 24 小时内领取。"),
    ("pay.notice.packet.greeting", "{greeting}", "{greeting}"),
    ("pay.notice.packet.title", "{sender} sent you a red packet", "{sender} 给你发了一个红包"),
    ("pay.notice.paycode.body", "{org} charged your pay code {amount} yuan.", "{org} 通过付款码收取了 {amount} 元。"),
    ("pay.notice.paycode.title", "You paid {amount} yuan to {org}", "你向 {org} 支付了 {amount} 元"),
    ("pay.notice.received.body", "{payer} sent you {amount} yuan.", "{payer} 向你转账 {amount} 元。"),
    ("pay.notice.received.body_memo", "{payer} sent you {amount} yuan. “{memo}”", "{payer} 向你转账 {amount} 元，附言：{memo}。"),
    ("pay.notice.received.title", "You received {amount} yuan", "收到 {amount} 元"),
    ("pay.notice.refund.body", "Nobody opened the rest within 24 hours, so it went back to your wallet.", "红包 24 小时内未被领完，剩余金额已退回你的钱包。"),
    ("pay.notice.refund.title", "{amount} yuan of your red packet came back", "红包未领取的 {amount} 元已退回"),
    ("pay.packet.all_taken", "All shares of this red packet were taken", "这个红包已被领完"),
    ("pay.packet.already_opened", "You already opened this red packet", "你已经领过这个红包了"),
    ("pay.packet.busy", "Too many people are opening this red packet; try again", "领取的人太多了，请重试"),
    ("pay.packet.count", "The number of shares must be 1 to {max}", "红包个数须在 1 到 {max} 之间"),
    ("pay.packet.expired", "This red packet has expired", "这个红包已过期"),
    ("pay.packet.greeting_too_long", "The greeting must be at most {max} characters", "祝福语不能超过 {max} 个字符"),
    ("pay.packet.key_reused", "This payment key was already used for another red packet", "这个幂等键已用于另一个红包"),
    ("pay.packet.mode", "Choose equal shares or a lucky draw", "请选择普通红包或拼手气红包"),
    ("pay.packet.not_yours", "This red packet is for someone else", "这个红包是发给别人的"),
    ("pay.packet.one_share", "A red packet for one person has one share", "发给个人的红包只能有 1 个"),
    ("pay.packet.refunded", "This red packet has expired; the rest went back to the sender", "这个红包已过期，剩余金额已退回发送人"),
    ("pay.packet.self", "You cannot send a red packet to yourself", "不能给自己发红包"),
    ("pay.packet.too_small", "{count} shares need at least {min} yuan (0.01 yuan each)", "{count} 个红包至少需要 {min} 元（每个 0.01 元）"),
    ("pay.packet.total_too_large", "The total is over the limit of {max} yuan", "总金额超过了 {max} 元的上限"),
    ("pay.packet.uneven", "{total} yuan does not split into {count} equal shares; give the amount per share, or a total such as {lower} or {higher} yuan", "{total} 元无法平均分成 {count} 份，请填写单个金额，或把总金额改为 {lower} 元或 {higher} 元"),
    ("pay.packet.unfunded", "This red packet could not be paid for; try again with a new form", "这个红包付款失败，请重新填写后再试"),
    ("pay.paycode.digits", "The pay code must be {digits} digits", "付款码须为 {digits} 位数字"),
    ("pay.paycode.expired", "This pay code has expired; ask for a new one", "付款码已过期，请让顾客刷新"),
    ("pay.paycode.key_reused", "This payment key was already used for another amount", "这个幂等键已用于另一笔金额"),
    ("pay.paycode.used", "This pay code was already used; ask for a new one", "付款码已被使用，请让顾客刷新"),
    ("pay.payee", "You are paying", "付款给"),
    ("pay.payee_gone", "The payee no longer exists", "收款方已不存在"),
    ("pay.payload", "Payment code content", "收款码内容"),
    ("pay.preview", "Continue", "下一步"),
    ("pay.reason_required", "State why you need this (1 to {max} characters)", "请说明查看的原因（1 到 {max} 个字符）"),
    ("pay.scan", "Scan with camera", "相机扫码"),
    ("pay.self_payment", "You cannot pay yourself", "不能向自己付款"),
    ("pay.self_transfer", "You cannot send money to yourself", "不能给自己转账"),
    ("pay.staff_only", "Only platform support staff may read a person's transactions", "只有平台客服人员可以查看他人的交易记录"),
    ("pay.title", "Pay", "付款"),
    ("pay.withdrawal_cancelled", "This withdrawal was cancelled before", "这笔提现之前已被取消"),
    ("pay.withdrawal_failed_before", "This withdrawal failed before and its money was released; try again with a new form", "这笔提现之前已失败，资金已解冻，请重新提交"),
    ("pay.year_range", "The year must be between {min} and {max}", "年份须在 {min} 到 {max} 之间"),
    ("paycode.expires", "Valid until", "有效期至"),
    ("paycode.intro", "Show this to the cashier. It works once and only for 60 seconds.", "向收银员出示。仅可使用一次，60 秒内有效。"),
    ("paycode.refresh", "New code", "刷新付款码"),
    ("paycode.seconds_left", "({s} s)", "（{s} 秒）"),
    ("paycode.title", "Pay code", "付款码"),
    ("qr.bad_signature", "The code was not issued by this platform or was altered", "这个二维码不是本平台生成的，或已被篡改"),
    ("qr.barcode.digits_even", "The barcode needs an even, non-zero number of digits", "条形码的位数必须是不为零的偶数"),
    ("qr.barcode.too_many", "The barcode holds at most {max} digits", "条形码最多 {max} 位数字"),
    ("qr.draw_failed", "This content cannot be drawn as a QR code", "无法把这些内容生成二维码"),
    ("qr.encode.account_id", "The merchant account id must be 1 to 32 characters", "商户账户标识须为 1 到 32 个字符"),
    ("qr.encode.account_tag", "The merchant account tag must be between 26 and 51", "商户账户标签须在 26 到 51 之间"),
    ("qr.encode.account_too_long", "The merchant account information is longer than 99 characters", "商户账户信息超过了 99 个字符"),
    ("qr.encode.city", "The city must be 1 to {max} characters", "城市名须为 1 到 {max} 个字符"),
    ("qr.encode.extra_tag", "Tag {tag} cannot be carried as extra data", "标签 {tag} 不能作为附加数据"),
    ("qr.encode.mcc", "The merchant category code must be 4 digits", "商户类别码须为 4 位数字"),
    ("qr.encode.name", "The merchant name must be 1 to {max} characters", "商户名称须为 1 到 {max} 个字符"),
    ("qr.encode.sub_tag", "Sub-tags must be 01 to 99", "子标签须在 01 到 99 之间"),
    ("qr.encode.sub_value", "Each value must be 1 to 99 characters", "每个值须为 1 到 99 个字符"),
    ("qr.field.country", "country code", "国家代码"),
    ("qr.field.currency", "currency", "币种"),
    ("qr.field.mcc", "merchant category code", "商户类别码"),
    ("qr.field.merchant_city", "merchant city", "商户所在城市"),
    ("qr.field.merchant_name", "merchant name", "商户名称"),
    ("qr.invalid.amount_format", "The amount “{value}” (tag 54) is not yuan with at most 2 decimals", "金额“{value}”（标签 54）不是最多两位小数的元金额"),
    ("qr.invalid.amount_missing", "A code for one payment (point of initiation 12) must carry an amount (tag 54)", "一次性收款码（发起方式 12）必须包含金额（标签 54）"),
    ("qr.invalid.amount_not_positive", "The amount (tag 54) must be more than zero", "金额（标签 54）必须大于零"),
    ("qr.invalid.amount_too_large", "The amount (tag 54) is over the limit of {max} yuan", "金额（标签 54）超过了 {max} 元的上限"),
    ("qr.invalid.amount_too_long", "The amount (tag 54) is longer than 13 characters", "金额（标签 54）超过了 13 个字符"),
    ("qr.invalid.country", "The country (tag 58) must be CN, not “{value}”", "国家代码（标签 58）必须是 CN，而不是“{value}”"),
    ("qr.invalid.crc", "The check digits do not match: the code says {given}, its content gives {actual}", "校验码不符：二维码中为 {given}，按内容计算为 {actual}"),
    ("qr.invalid.crc_not_hex", "The check digits “{crc}” are not four hexadecimal digits", "校验码“{crc}”不是四位十六进制数字"),
    ("qr.invalid.crc_not_last", "The CRC (tag 63) must be the last data object", "CRC（标签 63）必须是最后一个数据对象"),
    ("qr.invalid.currency", "Unknown currency “{value}” (tag 53): only 156 (CNY) is accepted", "未知币种“{value}”（标签 53）：仅接受 156（CNY）"),
    ("qr.invalid.empty", "The code is empty", "二维码内容为空"),
    ("qr.invalid.format_first", "The code does not start with the payload format indicator (tag 00)", "二维码没有以载荷格式标识（标签 00）开头"),
    ("qr.invalid.format_version", "The payload format indicator (tag 00) must be 01", "载荷格式标识（标签 00）必须是 01"),
    ("qr.invalid.initiation", "The point of initiation (tag 01) must be 11 or 12, not “{value}”", "发起方式（标签 01）必须是 11 或 12，而不是“{value}”"),
    ("qr.invalid.length_not_digits", "{part}: the length of tag {tag} is not two digits", "{part}：标签 {tag} 的长度不是两位数字"),
    ("qr.invalid.length_overrun", "{part}: tag {tag} claims {len} characters but only {left} remain", "{part}：标签 {tag} 声明长度为 {len} 个字符，但只剩 {left} 个"),
    ("qr.invalid.length_zero", "{part}: tag {tag} has length 00", "{part}：标签 {tag} 的长度为 00"),
    ("qr.invalid.mcc", "The merchant category code (tag 52) must be 4 digits", "商户类别码（标签 52）必须是 4 位数字"),
    ("qr.invalid.missing", "The {name} (tag {tag}) is missing", "缺少{name}（标签 {tag}）"),
    ("qr.invalid.no_account", "The merchant account information (a tag from 26 to 51) is missing", "缺少商户账户信息（标签 26 到 51）"),
    ("qr.invalid.no_crc", "The code does not end with a CRC (tag 63, length 04)", "二维码没有以 CRC（标签 63，长度 04）结尾"),
    ("qr.invalid.tag_not_digits", "{part}: the tag at position {pos} is not two digits", "{part}：第 {pos} 位的标签不是两位数字"),
    ("qr.invalid.tag_twice", "{part}: tag {tag} appears twice", "{part}：标签 {tag} 出现了两次"),
    ("qr.invalid.template_no_id", "The merchant account information (tag {tag}) has no id (sub-tag 00)", "商户账户信息（标签 {tag}）缺少标识（子标签 00）"),
    ("qr.invalid.too_long", "The code is longer than {max} characters", "二维码内容超过了 {max} 个字符"),
    ("qr.invalid.truncated", "{part}: a data object is cut short at position {pos}", "{part}：第 {pos} 位的数据对象不完整"),
    ("qr.no_payee", "The code names no payee", "二维码中没有收款方"),
    ("qr.not_ours", "This is not a yizhan payment code", "这不是驿站的收款码"),
    ("qr.part.payload", "The code", "二维码"),
    ("qr.part.template", "The merchant account information", "商户账户信息"),
    ("qr.unknown_payee_kind", "The code names an unknown kind of payee", "二维码中的收款方类型未知"),
    ("qr.unsigned", "The code is not signed", "二维码没有签名"),
    ("receipt.amount", "Amount", "金额"),
    ("receipt.ref", "Reference", "交易号"),
    ("receipt.to", "To", "收款方"),
    ("send.button", "Send", "转账"),
    ("send.done", "Sent", "转账成功"),
    ("send.done_msg", "Sent ¥{amount} → {payee}", "已向{payee}转账 ¥{amount}"),
    ("send.memo", "Note (optional)", "备注（可选）"),
    ("send.title", "Send money", "转账"),
    ("send.to", "To (phone number, e-mail or payment code)", "收款人（手机号、邮箱或收款码）"),
    ("service.wallet", "Wallet", "钱包"),
    ("statement.category", "Category", "类别"),
    ("statement.empty", "Nothing this month.", "本月没有收支。"),
    ("statement.in", "In", "收入"),
    ("statement.out", "Out", "支出"),
    ("wallet.amount.fraction", "The amount must be a whole number of fen, not a fraction", "金额必须是整数（单位：分），不能有小数"),
    ("wallet.amount.not_integer", "The amount must be a whole number of fen", "金额必须是整数（单位：分）"),
    ("wallet.amount_yuan", "Amount (yuan)", "金额（元）"),
    ("wallet.amount_yuan_hint", "Enter an amount in yuan, such as 12.50", "请输入以元为单位的金额，例如 12.50"),
    ("wallet.available", "Available", "可用"),
    ("wallet.back", "Back to the wallet", "返回钱包"),
    ("wallet.balance", "Balance", "余额"),
    ("wallet.bill_to_one", "Give either an identity number or a plate, not both", "请填写身份证号或车牌号其中之一"),
    ("wallet.card", "Card number", "银行卡号"),
    ("wallet.card_hint", "Sandbox: leave empty for the test card that always succeeds.", "沙箱环境：留空即使用总能成功的测试卡。"),
    ("wallet.history", "History", "账单明细"),
    ("wallet.my_qr", "My payment code", "我的收款码"),
    ("wallet.pay", "Scan to pay", "扫码付款"),
    ("wallet.paycode", "Pay code", "付款码"),
    ("wallet.pending", "On hold", "冻结"),
    ("wallet.personal_no_amount", "A personal code has no fixed amount", "个人收款码没有固定金额"),
    ("wallet.qr_format", "The format must be json, svg or png", "格式必须是 json、svg 或 png"),
    ("wallet.qr_hint", "Others scan this to pay you.", "别人扫这个码就能向你付款。"),
    ("wallet.send", "Send", "转账"),
    ("wallet.statement", "Monthly statement", "月度账单"),
    ("wallet.title", "Wallet", "钱包"),
    ("wallet.topup", "Top up", "充值"),
    ("wallet.topup_button", "Top up", "充值"),
    ("wallet.topup_done", "Topped up", "充值成功"),
    ("wallet.topup_done_msg", "Topped up ¥{amount}", "充值成功 ¥{amount}"),
    ("wallet.whole_number", "Enter a whole number", "请输入整数"),
    ("wallet.withdraw", "Withdraw", "提现"),
    ("wallet.withdraw_button", "Withdraw", "提现"),
    ("wallet.withdraw_done", "Withdrawn", "提现成功"),
    ("wallet.withdraw_done_msg", "Withdrawn ¥{amount}", "提现成功 ¥{amount}"),
];

#[cfg(test)]
mod tests {
    use super::TEXTS;
    use std::collections::HashSet;
    use std::path::Path;

    /// The quoted strings of the wallet's sources that look like catalogue keys.
    fn keys_in(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                keys_in(&path, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("texts.rs") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            for (i, piece) in src.split('"').enumerate() {
                let looks_like_key = i % 2 == 1
                    && ["ledger.", "pay.", "qr.", "wallet.", "error.not_found."].iter().any(|p| piece.starts_with(p))
                    && piece.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                    && !piece.ends_with('.')
                    && !piece.ends_with(".html");
                if looks_like_key {
                    out.push((piece.to_string(), path.display().to_string()));
                }
            }
            // EMVCo's reasons are named without their prefix.
            for piece in src.split("invalid(\"").skip(1) {
                let name = piece.split('"').next().unwrap();
                out.push((format!("qr.invalid.{name}"), path.display().to_string()));
            }
        }
    }

    #[test]
    fn a_reason_given_as_a_key_has_its_own_arguments_filled() {
        use yizhan_core::Msg;
        use yizhan_kit::{i18n, Lang};
        i18n::install(&[("wallet", TEXTS)]).unwrap();
        let m = Msg::new("ledger.linked_failed")
            .int("index", 3)
            .int("count", 3)
            .key_arg("reason", "ledger.insufficient_funds")
            .fen("available", 394)
            .fen("needed", 500);
        assert_eq!(
            i18n::render(Lang::En, &m),
            "Payment 3 of 3 failed, so none was made: Only 3.94 yuan is available; 5.00 yuan is needed"
        );
        assert_eq!(
            i18n::render(Lang::Zh, &m),
            "3 笔付款中的第 3 笔失败，所有付款均未执行：可用余额只有 3.94 元，需要 5.00 元"
        );
    }

    #[test]
    fn every_key_the_wallet_uses_has_words_and_the_rows_are_sorted() {
        let have: HashSet<&str> = TEXTS.iter().map(|t| t.0).collect();
        assert_eq!(have.len(), TEXTS.len(), "a key is defined twice");
        assert!(TEXTS.windows(2).all(|w| w[0].0 < w[1].0), "rows are sorted by key");
        // Notification kinds look like keys but are not texts.
        let kinds = ["pay.bill", "pay.paycode_charged", "pay.red_packet", "pay.red_packet_refund", "pay.received"];
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut used = Vec::new();
        for dir in ["src", "../domain/src", "../ledger/src"] {
            keys_in(&root.join(dir), &mut used);
        }
        assert!(used.len() > 100, "the scan found the keys");
        let missing: Vec<_> =
            used.iter().filter(|(k, _)| !have.contains(k.as_str()) && !kinds.contains(&k.as_str())).collect();
        assert!(missing.is_empty(), "keys without words: {missing:?}");
        for (k, _, zh) in TEXTS {
            // Placeholders are names for programs, not words.
            let words: String = zh.split('{').map(|p| p.split_once('}').map_or(p, |(_, rest)| rest)).collect();
            let english = words.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| w.len() > 1);
            for w in english {
                assert!(
                    ["QR", "PIN", "CNY", "CRC", "CN", "json", "svg", "png"].contains(&w)
                        || k.starts_with("pay.bill.plate"),
                    "{k}: English word {w:?} in the Chinese text"
                );
            }
        }
    }
}
