//! EMVCo merchant-presented QR payloads (the format shop counters print):
//! a flat list of TLVs — 2-digit tag, 2-digit length, value — closed by a
//! CRC-16/CCITT-FALSE over everything before it, "6304" included.
//!
//! Lengths count characters, not bytes, so a merchant name in Chinese has the
//! length a person would count; the CRC runs over the UTF-8 bytes.

use yizhan_core::money::{parse_yuan, yuan};
use yizhan_core::{Arg, Error, Fen, Msg, Result};

/// The only currency the platform moves (ISO 4217 numeric for CNY).
pub const CURRENCY_CNY: &str = "156";
pub const COUNTRY_CN: &str = "CN";
/// The globally unique identifier of our merchant account template.
pub const YIZHAN_GUID: &str = "cn.yizhan";
/// Longest merchant name and city the specification allows.
pub const MAX_NAME_CHARS: usize = 25;
pub const MAX_CITY_CHARS: usize = 15;

const TAG_FORMAT: &str = "00";
const TAG_INITIATION: &str = "01";
const TAG_MCC: &str = "52";
const TAG_CURRENCY: &str = "53";
const TAG_AMOUNT: &str = "54";
const TAG_COUNTRY: &str = "58";
const TAG_NAME: &str = "59";
const TAG_CITY: &str = "60";
const TAG_CRC: &str = "63";

/// One merchant account information template (tags 26..=51): sub-tag 00 is the
/// network's globally unique id, the other sub-tags are that network's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantAccount {
    /// 26..=51.
    pub tag: u8,
    pub guid: String,
    /// (sub-tag 01..=99, value), in the order they are written.
    pub fields: Vec<(u8, String)>,
}

impl MerchantAccount {
    pub fn field(&self, sub_tag: u8) -> Option<&str> {
        self.fields.iter().find(|(t, _)| *t == sub_tag).map(|(_, v)| v.as_str())
    }
}

/// A merchant-presented code. With `amount_fen` it is a fixed-amount code
/// (point of initiation "12"); without, the payer types the amount ("11").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantQr {
    /// The template carrying who is paid; the first one in 26..=51.
    pub account: MerchantAccount,
    /// Merchant category code, 4 digits ("0000" when none applies).
    pub mcc: String,
    pub amount_fen: Option<i64>,
    pub merchant_name: String,
    pub merchant_city: String,
    /// Tags this module does not interpret (other networks' templates,
    /// additional data…), kept so a parsed code encodes back unchanged.
    pub other: Vec<(u8, String)>,
}

/// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
pub fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

fn tlv(out: &mut String, tag: &str, value: &str) {
    // Values are capped at 99 characters by the callers (validate / truncate).
    let n = value.chars().count().min(99);
    out.push_str(tag);
    out.push_str(&format!("{n:02}"));
    out.extend(value.chars().take(99));
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The payload string. Values over the specification's limits are cut (name 25,
/// city 15 characters); call [`MerchantQr::validate`] first to refuse instead.
pub fn encode(qr: &MerchantQr) -> String {
    let mut out = String::new();
    tlv(&mut out, TAG_FORMAT, "01");
    tlv(&mut out, TAG_INITIATION, if qr.amount_fen.is_some() { "12" } else { "11" });
    let mut template = String::new();
    tlv(&mut template, "00", &qr.account.guid);
    for (t, v) in &qr.account.fields {
        tlv(&mut template, &format!("{t:02}"), v);
    }
    // Tags below the account template (02..=25: card networks) come first to keep the order ascending.
    let (before, after): (Vec<_>, Vec<_>) = qr.other.iter().partition(|(t, _)| *t < qr.account.tag);
    for (t, v) in before {
        tlv(&mut out, &format!("{t:02}"), v);
    }
    tlv(&mut out, &format!("{:02}", qr.account.tag), &template);
    let mut tail: Vec<(String, String)> = vec![
        (TAG_MCC.into(), qr.mcc.clone()),
        (TAG_CURRENCY.into(), CURRENCY_CNY.into()),
        (TAG_COUNTRY.into(), COUNTRY_CN.into()),
        (TAG_NAME.into(), truncate_chars(&qr.merchant_name, MAX_NAME_CHARS)),
        (TAG_CITY.into(), truncate_chars(&qr.merchant_city, MAX_CITY_CHARS)),
    ];
    if let Some(a) = qr.amount_fen {
        tail.push((TAG_AMOUNT.into(), yuan(a)));
    }
    tail.extend(after.into_iter().map(|(t, v)| (format!("{t:02}"), v.clone())));
    tail.sort_by(|a, b| a.0.cmp(&b.0));
    for (t, v) in &tail {
        tlv(&mut out, t, v);
    }
    out.push_str("6304");
    let crc = crc16_ccitt_false(out.as_bytes());
    out.push_str(&format!("{crc:04X}"));
    out
}

/// A code that is not valid, and why (`qr.invalid.*`, with the tags concerned).
fn invalid(key: &str) -> Error {
    Error::new(crate::codes::QR_INVALID, format!("qr.invalid.{key}"))
}

/// Tag numbers in messages: always two digits, as printed in the EMVCo book.
fn tag_arg(tag: &str) -> Arg {
    Arg::Text(tag.to_string())
}

/// Where in the code a data object is: the payload itself, or a merchant account template.
fn part_arg(part: &str) -> Arg {
    Arg::Key(format!("qr.part.{part}"))
}

/// Split a TLV string into (tag, value) pairs; lengths count characters.
fn split_tlvs(s: &str, part: &str) -> Result<Vec<(String, String)>> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        if i + 4 > chars.len() {
            return Err(invalid("truncated").with("part", part_arg(part)).with("pos", Arg::Int(i as i64)));
        }
        let tag: String = chars[i..i + 2].iter().collect();
        let len_s: String = chars[i + 2..i + 4].iter().collect();
        if !tag.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("tag_not_digits")
                .with("part", part_arg(part))
                .with("tag", tag_arg(&tag))
                .with("pos", Arg::Int(i as i64)));
        }
        if !len_s.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("length_not_digits").with("part", part_arg(part)).with("tag", tag_arg(&tag)));
        }
        let len: usize = len_s
            .parse()
            .map_err(|_| invalid("length_not_digits").with("part", part_arg(part)).with("tag", tag_arg(&tag)))?;
        if len == 0 {
            return Err(invalid("length_zero").with("part", part_arg(part)).with("tag", tag_arg(&tag)));
        }
        let start = i + 4;
        if start + len > chars.len() {
            return Err(invalid("length_overrun")
                .with("part", part_arg(part))
                .with("tag", tag_arg(&tag))
                .with("len", Arg::Int(len as i64))
                .with("left", Arg::Int((chars.len() - start) as i64)));
        }
        let value: String = chars[start..start + len].iter().collect();
        if out.iter().any(|(t, _): &(String, String)| *t == tag) {
            return Err(invalid("tag_twice").with("part", part_arg(part)).with("tag", tag_arg(&tag)));
        }
        out.push((tag, value));
        i = start + len;
    }
    Ok(out)
}

fn tag_num(tag: &str) -> u8 {
    tag.parse().unwrap_or(u8::MAX)
}

/// Parse and check a payload: CRC, lengths, mandatory tags, currency CNY, country CN.
pub fn parse(payload: &str) -> Result<MerchantQr> {
    let payload = payload.trim();
    if payload.is_empty() {
        return Err(invalid("empty"));
    }
    if payload.chars().count() > 512 {
        return Err(invalid("too_long").with("max", Arg::Int(512)));
    }
    // The CRC object is always last: "6304" and four hex digits.
    let n = payload.len();
    if n < 8 || !payload.is_char_boundary(n - 8) || !payload.is_char_boundary(n - 4) || &payload[n - 8..n - 4] != "6304"
    {
        return Err(invalid("no_crc"));
    }
    let crc_text = &payload[n - 4..];
    let crc_given = u16::from_str_radix(crc_text, 16)
        .ok()
        .filter(|_| crc_text.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| invalid("crc_not_hex").with("crc", Arg::Text(crc_text.to_string())))?;
    let crc_actual = crc16_ccitt_false(&payload.as_bytes()[..n - 4]);
    if crc_given != crc_actual {
        return Err(invalid("crc")
            .with("given", Arg::Text(format!("{crc_given:04X}")))
            .with("actual", Arg::Text(format!("{crc_actual:04X}"))));
    }
    let objects = split_tlvs(&payload[..n - 8], "payload")?;
    let get = |tag: &str| objects.iter().find(|(t, _)| t == tag).map(|(_, v)| v.as_str());
    let require = |tag: &str, name: &str| {
        get(tag).ok_or_else(|| {
            invalid("missing").with("name", Arg::Key(format!("qr.field.{name}"))).with("tag", tag_arg(tag))
        })
    };

    match objects.first() {
        Some((t, v)) if t == TAG_FORMAT && v == "01" => {}
        Some((t, _)) if t == TAG_FORMAT => return Err(invalid("format_version")),
        _ => return Err(invalid("format_first")),
    }
    if objects.iter().any(|(t, _)| t == TAG_CRC) {
        return Err(invalid("crc_not_last"));
    }
    let initiation = get(TAG_INITIATION);
    if let Some(v) = initiation {
        if v != "11" && v != "12" {
            return Err(invalid("initiation").with("value", Arg::Text(v.to_string())));
        }
    }
    let mcc = require(TAG_MCC, "mcc")?;
    if mcc.len() != 4 || !mcc.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid("mcc"));
    }
    let currency = require(TAG_CURRENCY, "currency")?;
    if currency != CURRENCY_CNY {
        return Err(invalid("currency").with("value", Arg::Text(currency.to_string())));
    }
    let country = require(TAG_COUNTRY, "country")?;
    if country != COUNTRY_CN {
        return Err(invalid("country").with("value", Arg::Text(country.to_string())));
    }
    let merchant_name = require(TAG_NAME, "merchant_name")?.to_string();
    let merchant_city = require(TAG_CITY, "merchant_city")?.to_string();
    let amount_fen = match get(TAG_AMOUNT) {
        None => None,
        Some(v) => {
            if v.len() > 13 {
                return Err(invalid("amount_too_long"));
            }
            let fen = parse_yuan(v).ok_or_else(|| invalid("amount_format").with("value", Arg::Text(v.to_string())))?;
            if fen <= 0 {
                return Err(invalid("amount_not_positive"));
            }
            if Fen::amount(fen).is_err() {
                return Err(invalid("amount_too_large").with("max", Arg::Fen(Fen::MAX_AMOUNT)));
            }
            Some(fen)
        }
    };
    if initiation == Some("12") && amount_fen.is_none() {
        return Err(invalid("amount_missing"));
    }

    let mut account = None;
    let mut other = Vec::new();
    for (t, v) in &objects {
        let num = tag_num(t);
        match num {
            0 | 1 | 52 | 53 | 54 | 58 | 59 | 60 => {}
            26..=51 if account.is_none() => {
                let subs = split_tlvs(v, "template")?;
                let mut guid = None;
                let mut fields = Vec::new();
                for (st, sv) in subs {
                    if st == "00" {
                        guid = Some(sv);
                    } else {
                        fields.push((tag_num(&st), sv));
                    }
                }
                let guid = guid.ok_or_else(|| invalid("template_no_id").with("tag", tag_arg(t)))?;
                account = Some(MerchantAccount { tag: num, guid, fields });
            }
            _ => other.push((num, v.clone())),
        }
    }
    let account = account.ok_or_else(|| invalid("no_account"))?;
    Ok(MerchantQr { account, mcc: mcc.to_string(), amount_fen, merchant_name, merchant_city, other })
}

impl MerchantQr {
    /// Refuse what [`encode`] would have to cut or could not represent.
    pub fn validate(&self) -> Result<()> {
        if !(26..=51).contains(&self.account.tag) {
            return Err(Error::field("account.tag", "qr.encode.account_tag"));
        }
        if self.account.guid.is_empty() || self.account.guid.chars().count() > 32 {
            return Err(Error::field("account.guid", "qr.encode.account_id"));
        }
        let mut template_len = 4 + self.account.guid.chars().count();
        for (t, v) in &self.account.fields {
            if *t == 0 || *t > 99 {
                return Err(Error::field("account.fields", "qr.encode.sub_tag"));
            }
            let n = v.chars().count();
            if n == 0 || n > 99 {
                return Err(Error::field("account.fields", "qr.encode.sub_value"));
            }
            template_len += 4 + n;
        }
        if template_len > 99 {
            return Err(Error::field("account", "qr.encode.account_too_long"));
        }
        if self.mcc.len() != 4 || !self.mcc.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::field("mcc", "qr.encode.mcc"));
        }
        if let Some(a) = self.amount_fen {
            yizhan_ledger::amount_check("amount_fen", a)?;
        }
        let name = self.merchant_name.chars().count();
        if name == 0 || name > MAX_NAME_CHARS {
            return Err(Error::field_msg(
                "merchant_name",
                Msg::new("qr.encode.name").int("max", MAX_NAME_CHARS as i64),
            ));
        }
        let city = self.merchant_city.chars().count();
        if city == 0 || city > MAX_CITY_CHARS {
            return Err(Error::field_msg(
                "merchant_city",
                Msg::new("qr.encode.city").int("max", MAX_CITY_CHARS as i64),
            ));
        }
        for (t, v) in &self.other {
            let n = v.chars().count();
            if matches!(t, 0 | 1 | 52 | 53 | 54 | 58 | 59 | 60 | 63) || *t > 99 || n == 0 || n > 99 {
                return Err(Error::field_msg("other", Msg::new("qr.encode.extra_tag").text("tag", format!("{t:02}"))));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(amount_fen: Option<i64>) -> MerchantQr {
        MerchantQr {
            account: MerchantAccount {
                tag: 26,
                guid: YIZHAN_GUID.into(),
                fields: vec![(1, "org".into()), (2, "0190f1a2b3c4d5e6f7a8b9c0".into()), (3, "a1b2c3d4e5f60718".into())],
            },
            mcc: "5812".into(),
            amount_fen,
            merchant_name: "Lao Wang Noodles".into(),
            merchant_city: "Hangzhou".into(),
            other: vec![],
        }
    }

    #[test]
    fn crc_matches_the_published_check_value() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
        assert_eq!(crc16_ccitt_false(b""), 0xFFFF);
    }

    #[test]
    fn encodes_the_fields_in_order_and_round_trips() {
        let qr = sample(Some(1234));
        qr.validate().unwrap();
        let s = encode(&qr);
        assert!(s.starts_with("000201010212"), "{s}");
        assert!(s.contains("5303156"));
        assert!(s.contains("54051234") || s.contains("540512.34"), "{s}");
        assert!(s.contains("5802CN"));
        assert!(s.contains("5916Lao Wang Noodles"));
        assert!(s.contains("6008Hangzhou"));
        let crc = &s[s.len() - 4..];
        assert_eq!(crc, crc.to_uppercase());
        assert_eq!(format!("{:04X}", crc16_ccitt_false(&s.as_bytes()[..s.len() - 4])), crc);
        assert_eq!(parse(&s).unwrap(), qr);

        let open = sample(None);
        let s = encode(&open);
        assert!(s.starts_with("000201010211"), "{s}");
        assert!(!s.contains("5405"));
        assert_eq!(parse(&s).unwrap(), open);
    }

    #[test]
    fn chinese_names_are_counted_in_characters() {
        let mut qr = sample(None);
        qr.merchant_name = "老王面馆".into();
        qr.merchant_city = "杭州".into();
        let s = encode(&qr);
        assert!(s.contains("5904老王面馆"));
        assert!(s.contains("6002杭州"));
        assert_eq!(parse(&s).unwrap(), qr);
    }

    #[test]
    fn parses_a_payload_written_by_another_issuer() {
        // Built by hand: an extra card-network tag 02, additional data 62, lowercase nothing.
        let body = "0002010102110204411126130009cn.yizhan5204000053031565802CN5903Ada6007Beijing62070503ABC6304";
        let payload = format!("{body}{:04X}", crc16_ccitt_false(body.as_bytes()));
        let qr = parse(&payload).unwrap();
        assert_eq!(qr.account.guid, "cn.yizhan");
        assert_eq!(qr.account.fields, vec![]);
        assert_eq!(qr.merchant_name, "Ada");
        assert_eq!(qr.other, vec![(2, "4111".to_string()), (62, "0503ABC".to_string())]);
        assert_eq!(encode(&qr), payload);
    }

    #[test]
    fn any_single_changed_character_is_refused() {
        let s = encode(&sample(Some(500)));
        let chars: Vec<char> = s.chars().collect();
        for i in 0..chars.len() {
            let mut t = chars.clone();
            t[i] = match t[i] {
                '9' => '8',
                c if c.is_ascii_digit() => char::from(c as u8 + 1),
                'Z' | 'z' => 'A',
                c if c.is_ascii_alphabetic() => char::from(c as u8 + 1),
                _ => 'x',
            };
            let tampered: String = t.into_iter().collect();
            let e = parse(&tampered).expect_err(&format!("changing position {i} was accepted: {tampered}"));
            assert_eq!(e.code, crate::codes::QR_INVALID);
        }
    }

    fn with_crc(body: &str) -> String {
        let b = format!("{body}6304");
        format!("{b}{:04X}", crc16_ccitt_false(b.as_bytes()))
    }

    #[test]
    fn refuses_bad_lengths_currency_and_missing_tags() {
        let good = encode(&sample(None));
        let body = &good[..good.len() - 8];

        let e = parse(&with_crc(&body.replace("5303156", "5303840"))).unwrap_err();
        assert_eq!(e.code, crate::codes::QR_INVALID);
        assert_eq!(e.msg, Msg::new("qr.invalid.currency").text("value", "840"));

        let e = parse(&with_crc(&body.replace("5802CN", ""))).unwrap_err();
        assert_eq!(e.msg, Msg::new("qr.invalid.missing").key_arg("name", "qr.field.country").text("tag", "58"));

        let e = parse(&with_crc(&body.replace("5916Lao Wang Noodles", ""))).unwrap_err();
        assert_eq!(e.msg, Msg::new("qr.invalid.missing").key_arg("name", "qr.field.merchant_name").text("tag", "59"));

        let e = parse(&with_crc(&body.replace("5916Lao", "5999Lao"))).unwrap_err();
        assert_eq!(e.msg.key, "qr.invalid.length_overrun", "{}", e.msg);
        assert!(e.msg.args.contains(&("len".into(), Arg::Int(99))), "{}", e.msg);

        let e = parse(&with_crc(&body.replace("5916Lao", "59x6Lao"))).unwrap_err();
        assert_eq!(e.msg.key, "qr.invalid.length_not_digits", "{}", e.msg);
        assert!(e.msg.args.contains(&("tag".into(), Arg::Text("59".into()))), "{}", e.msg);

        let e = parse(&with_crc(&body.replacen("000201", "000202", 1))).unwrap_err();
        assert_eq!(e.msg.key, "qr.invalid.format_version", "{}", e.msg);

        let e = parse(&with_crc(&format!("{body}5303156"))).unwrap_err();
        assert_eq!(e.msg, Msg::new("qr.invalid.tag_twice").key_arg("part", "qr.part.payload").text("tag", "53"));

        let e = parse(&with_crc(&body.replacen("010211", "010212", 1))).unwrap_err();
        assert_eq!(e.msg.key, "qr.invalid.amount_missing", "{}", e.msg);

        let e = parse(&with_crc(&format!("{body}54051.234"))).unwrap_err();
        assert_eq!(e.msg, Msg::new("qr.invalid.amount_format").text("value", "1.234"));

        let e = parse(&with_crc(&format!("{body}54040.00"))).unwrap_err();
        assert_eq!(e.msg.key, "qr.invalid.amount_not_positive", "{}", e.msg);

        let e = parse(&good[..good.len() - 8]).unwrap_err();
        assert_eq!(e.msg.key, "qr.invalid.no_crc", "{}", e.msg);

        let e = parse(&format!("{}zzzz", &good[..good.len() - 4])).unwrap_err();
        assert_eq!(e.msg, Msg::new("qr.invalid.crc_not_hex").text("crc", "zzzz"));

        assert_eq!(parse("").unwrap_err().code, crate::codes::QR_INVALID);
        assert_eq!(parse("hello").unwrap_err().code, crate::codes::QR_INVALID);
        assert_eq!(parse(&"9".repeat(600)).unwrap_err().code, crate::codes::QR_INVALID);
        assert_eq!(parse("abcd6304老王").unwrap_err().code, crate::codes::QR_INVALID);
        assert_eq!(parse("00020101老6304ABCD").unwrap_err().code, crate::codes::QR_INVALID);
    }

    #[test]
    fn refuses_a_payload_without_our_template() {
        let body = "0002010102115204000053031565802CN5903Ada6007Beijing";
        let e = parse(&with_crc(body)).unwrap_err();
        assert_eq!(e.msg.key, "qr.invalid.no_account", "{}", e.msg);
    }

    #[test]
    fn validate_refuses_what_encode_would_cut() {
        let mut qr = sample(None);
        qr.merchant_name = "x".repeat(26);
        assert_eq!(qr.validate().unwrap_err().code, yizhan_core::Code::ValidationFailed);
        let mut qr = sample(Some(0));
        assert!(qr.validate().is_err());
        qr.amount_fen = Some(Fen::MAX_AMOUNT + 1);
        assert!(qr.validate().is_err());
        let mut qr = sample(None);
        qr.account.fields.push((4, "y".repeat(80)));
        assert!(qr.validate().is_err());
    }
}
