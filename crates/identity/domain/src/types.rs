//! Values that can only hold what is valid: parse once at the edge, then
//! pass the type around.

use serde::{Deserialize, Serialize};
use std::fmt;
use yizhan_core::{Error, Msg, Result};

/// A login: a mainland mobile number ("13812345678") or an e-mail address
/// (lowercased), normalized so one person cannot register twice by spelling.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Login(String);

pub const MAX_EMAIL_LEN: usize = 254;

impl Login {
    pub fn parse(s: &str) -> Result<Login> {
        let s = s.trim();
        if s.contains('@') {
            parse_email(s).map(Login).ok_or_else(|| Error::field("login", "identity.login.invalid"))
        } else {
            parse_mobile(s).map(Login).ok_or_else(|| Error::field("login", "identity.login.invalid"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_email(&self) -> bool {
        self.0.contains('@')
    }

    /// "138****5678" or "a***@example.com".
    pub fn masked(&self) -> String {
        mask_login(&self.0)
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Login({})", self.masked())
    }
}

/// Mask a stored login for showing to others.
pub fn mask_login(login: &str) -> String {
    if login.starts_with("deleted:") {
        return "deleted".into();
    }
    if let Some((local, domain)) = login.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = login.chars().collect();
    if chars.len() == 11 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[7..].iter().collect();
        return format!("{head}****{tail}");
    }
    "***".into()
}

/// A person's name as a payer sees it before paying them: every character but
/// the last hidden ("*伟", "**ng"), enough to tell a wrong number, too little to
/// learn a stranger's name.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.split_last() {
        None => String::new(),
        Some((last, [])) => format!("*{last}"),
        Some((last, rest)) => format!("{}{last}", "*".repeat(rest.len().min(3))),
    }
}

fn parse_mobile(s: &str) -> Option<String> {
    let all: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = match all.strip_prefix("+86") {
        Some(rest) => rest,
        // "86" and 11 digits; 11 digits alone never start with 86 as a mobile.
        None if all.len() == 13 => all.strip_prefix("86")?,
        None => all.as_str(),
    };
    let b = digits.as_bytes();
    let ok = b.len() == 11 && b.iter().all(u8::is_ascii_digit) && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
    ok.then(|| digits.to_string())
}

fn parse_email(s: &str) -> Option<String> {
    let s = s.to_lowercase();
    if s.len() > MAX_EMAIL_LEN {
        return None;
    }
    let (local, domain) = s.split_once('@')?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return None;
    }
    let local_ok = local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return None;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || domain.len() > 253 {
        return None;
    }
    let labels_ok = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let tld = labels.last()?;
    if !labels_ok || tld.len() < 2 || !tld.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some(s)
}

/// A GB 11643 resident identity number: 17 digits and a check character.
/// Its Debug shows only the masked form; there is no Display, so it does not
/// end up in a log by accident. Use [`IdNumber::expose`] where the full number
/// is really needed.
#[derive(Clone, PartialEq, Eq)]
pub struct IdNumber(String);

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The GB 11643 check character of 17 digits (None if they are not digits).
pub fn id_check_char(first17: &str) -> Option<char> {
    let b = first17.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b.iter().zip(ID_WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    Some(char::from(ID_CHECK[(sum % 11) as usize]))
}

impl IdNumber {
    pub fn parse(s: &str) -> Result<IdNumber> {
        let bad = |key: &str| Error::field("id_number", key);
        let s = s.trim().to_ascii_uppercase();
        if s.len() != 18 || !s.is_ascii() {
            return Err(bad("identity.id_number.length"));
        }
        let (first17, check) = s.split_at(17);
        if !first17.bytes().all(|c| c.is_ascii_digit()) || !check.bytes().all(|c| c.is_ascii_digit() || c == b'X') {
            return Err(bad("identity.id_number.characters"));
        }
        if first17.starts_with('0') {
            return Err(bad("identity.id_number.invalid"));
        }
        let (y, m, d) = birth_date_of(&s).ok_or_else(|| bad("identity.id_number.birth_date"))?;
        if !(1900..=2100).contains(&y) || !yizhan_core::time::is_valid_date(y, m, d) {
            return Err(bad("identity.id_number.birth_date"));
        }
        if id_check_char(first17).map(String::from).as_deref() != Some(check) {
            return Err(bad("identity.id_number.check"));
        }
        Ok(IdNumber(s))
    }

    /// The full number. Only for sealing, the blind index, and showing to
    /// the owner or to staff who stated a reason (which the access log keeps).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 4, ten '*', last 4: "3301**********123X".
    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }

    /// (year, month, day) of birth, digits 7-14.
    pub fn birth_date(&self) -> (i64, u32, u32) {
        birth_date_of(&self.0).unwrap_or((1900, 1, 1))
    }
}

pub fn mask_id_number(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

fn birth_date_of(s: &str) -> Option<(i64, u32, u32)> {
    let y = s.get(6..10)?.parse::<i64>().ok()?;
    let m = s.get(10..12)?.parse::<u32>().ok()?;
    let d = s.get(12..14)?.parse::<u32>().ok()?;
    Some((y, m, d))
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

/// A password as typed: 8 to 128 characters. Debug never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(s: &str) -> Result<Password> {
        let n = s.chars().count();
        if n < Self::MIN_CHARS {
            Err(Error::field_msg(
                "password",
                Msg::new("identity.password.too_short").int("min", Self::MIN_CHARS as i64),
            ))
        } else if n > Self::MAX_CHARS {
            Err(Error::field_msg("password", Msg::new("identity.password.too_long").int("max", Self::MAX_CHARS as i64)))
        } else {
            Ok(Password(s.to_string()))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A person's or organisation's name: trimmed, 1 to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(s: &str) -> Result<PersonName> {
        Self::parse_field(s, "name")
    }

    /// Same rules, reporting a different field.
    pub fn parse_field(s: &str, field: &str) -> Result<PersonName> {
        let t = s.trim();
        if t.is_empty() {
            Err(Error::field(field, "error.field.empty"))
        } else if t.chars().count() > Self::MAX_CHARS {
            Err(Error::field_msg(field, Msg::new("error.field.too_long").int("max", Self::MAX_CHARS as i64)))
        } else if t.chars().any(char::is_control) {
            Err(Error::field(field, "error.field.control_characters"))
        } else {
            Ok(PersonName(t.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    CityDepartment,
    Hospital,
    Merchant,
    MobilityOperator,
    Court,
}

impl OrgKind {
    pub const ALL: &'static [OrgKind] =
        &[OrgKind::CityDepartment, OrgKind::Hospital, OrgKind::Merchant, OrgKind::MobilityOperator, OrgKind::Court];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::CityDepartment => "city_department",
            OrgKind::Hospital => "hospital",
            OrgKind::Merchant => "merchant",
            OrgKind::MobilityOperator => "mobility_operator",
            OrgKind::Court => "court",
        }
    }

    pub fn parse(s: &str) -> Result<OrgKind> {
        OrgKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::field("kind", "identity.org_kind.invalid"))
    }
}

impl fmt::Display for OrgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff member's role in an organisation. Admins manage the members;
/// operators do the organisation's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            _ => Err(Error::field("role", "identity.role.invalid")),
        }
    }

    fn rank(self) -> u8 {
        match self {
            Role::Operator => 1,
            Role::Admin => 2,
        }
    }

    /// Whether this role may do what `min` may.
    pub fn at_least(self, min: Role) -> bool {
        self.rank() >= min.rank()
    }
}

/// Province abbreviations that begin a mainland plate.
const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

fn plate_char_ok(c: char) -> bool {
    (c.is_ascii_uppercase() && c != 'I' && c != 'O') || c.is_ascii_digit()
}

/// Normalise and check a mainland car plate: province character, issuing-office
/// letter, then 5 characters (6 for new-energy vehicles, with D or F first or
/// last), letters I and O never used. "浙a·12345" becomes "浙A12345".
pub fn normalize_plate(s: &str) -> Result<String> {
    let p: String =
        s.chars().filter(|c| !matches!(c, ' ' | '·' | '•' | '-' | '\u{3000}')).collect::<String>().to_uppercase();
    let chars: Vec<char> = p.chars().collect();
    let bad = || Error::field("plate", "identity.plate.format");
    if chars.len() != 7 && chars.len() != 8 {
        return Err(bad());
    }
    if !PROVINCES.contains(chars[0]) || !chars[1].is_ascii_uppercase() || matches!(chars[1], 'I' | 'O') {
        return Err(bad());
    }
    let serial = &chars[2..];
    if !serial.iter().all(|c| plate_char_ok(*c)) {
        return Err(bad());
    }
    if serial.len() == 6 {
        let first = serial[0];
        let last = serial[5];
        if !matches!(first, 'D' | 'F') && !matches!(last, 'D' | 'F') {
            return Err(bad());
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_masked_but_their_last_character() {
        assert_eq!(super::mask_name("王伟"), "*伟");
        assert_eq!(super::mask_name("欧阳娜娜"), "***娜");
        assert_eq!(super::mask_name("Li"), "*i");
        assert_eq!(super::mask_name("Browser Tester"), "***r");
        assert_eq!(super::mask_name(""), "");
    }

    use super::*;
    use yizhan_core::Code;

    #[test]
    fn plates_normalise_and_check() {
        assert_eq!(normalize_plate("浙A12345").unwrap(), "浙A12345");
        assert_eq!(normalize_plate(" 浙a·1234x ").unwrap(), "浙A1234X");
        assert_eq!(normalize_plate("京AD12345").unwrap(), "京AD12345");
        assert_eq!(normalize_plate("粤B12345F").unwrap(), "粤B12345F");
        for bad in ["浙A1234", "浙A123456", "A12345", "浙I12345", "浙A1234O", "美A12345", "浙112345", "", "浙A12345678"]
        {
            assert_eq!(normalize_plate(bad).unwrap_err().code, Code::ValidationFailed, "{bad}");
        }
    }

    #[test]
    fn mobile_numbers_normalize() {
        for s in ["13812345678", "+86 138 1234 5678", "86-138-1234-5678", " 138-1234-5678 ", "+8613812345678"] {
            assert_eq!(Login::parse(s).unwrap().as_str(), "13812345678", "{s}");
        }
        for s in ["12812345678", "1381234567", "138123456789", "23812345678", "+1 138 1234 5678", "1381234567a", ""] {
            let e = Login::parse(s).unwrap_err();
            assert_eq!(e.fields[0].field, "login", "{s}");
        }
        assert_eq!(Login::parse("13812345678").unwrap().masked(), "138****5678");
    }

    #[test]
    fn emails_lowercase_and_need_a_sane_shape() {
        assert_eq!(Login::parse(" Li.Wei+x@Example.COM ").unwrap().as_str(), "li.wei+x@example.com");
        assert!(Login::parse("a@b.cn").unwrap().is_email());
        for s in ["a@b", "@b.cn", "a@", "a b@c.cn", "a@@b.cn", "a@b..cn", "a@-b.cn", "a@b.c", ".a@b.cn", "a@b.c1"] {
            assert!(Login::parse(s).is_err(), "{s}");
        }
        let address =
            |last: usize| format!("{}@{}.{}.{}.com", "a".repeat(64), "b".repeat(63), "c".repeat(63), "d".repeat(last));
        assert_eq!(address(57).len(), 254);
        assert!(Login::parse(&address(57)).is_ok());
        assert!(Login::parse(&address(58)).is_err());
        assert!(Login::parse(&format!("{}@b.cn", "a".repeat(65))).is_err());
        assert!(Login::parse(&format!("a@{}.cn", "b".repeat(64))).is_err());
        assert_eq!(Login::parse("wei@example.com").unwrap().masked(), "w***@example.com");
    }

    #[test]
    fn identity_numbers_check() {
        let n = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(n.expose(), "11010519491231002X");
        assert_eq!(n.masked(), "1101**********002X");
        assert_eq!(IdNumber::parse("11010519491231002x").unwrap().expose(), "11010519491231002X");
        assert_eq!(n.birth_date(), (1949, 12, 31));
        let dbg = format!("{n:?}");
        assert!(!dbg.contains("11010519491231002X"), "{dbg}");
        assert!(dbg.contains("1101**********002X"));
        for bad in ["110105194912310021", "11010519491231002", "11010519491231002XX", "1101051949123100AX", ""] {
            assert_eq!(IdNumber::parse(bad).unwrap_err().fields[0].field, "id_number", "{bad}");
        }
    }

    #[test]
    fn password_and_name_rules() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(!format!("{:?}", Password::parse("secret-pass").unwrap()).contains("secret"));
        assert_eq!(PersonName::parse("  王小明 ").unwrap().as_str(), "王小明");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse("a\u{7}b").is_err());
        assert!(PersonName::parse(&"名".repeat(64)).is_ok());
        assert!(PersonName::parse(&"名".repeat(65)).is_err());
    }

    #[test]
    fn kinds_and_roles_round_trip() {
        for k in OrgKind::ALL {
            assert_eq!(OrgKind::parse(k.as_str()).unwrap(), *k);
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
        }
        assert!(OrgKind::parse("bank").is_err());
        assert!(Role::Admin.at_least(Role::Operator));
        assert!(!Role::Operator.at_least(Role::Admin));
        assert_eq!(Role::parse("operator").unwrap(), Role::Operator);
        assert_eq!(serde_json::to_value(Role::Admin).unwrap(), serde_json::json!("admin"));
    }
}
