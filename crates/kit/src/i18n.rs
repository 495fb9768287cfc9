//! The text catalogue: every word a person sees, in English and Simplified
//! Chinese. Each room brings its own rows; the app joins them at start
//! (`install`), refusing a key defined twice. Pages and problems look keys up
//! here.

use axum::http::HeaderMap;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;
use yizhan_core::{Arg, Msg};

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

    /// The language of a request through the router (which says whether the
    /// cookie names carry the `__Host-` prefix).
    pub fn from_request(headers: &HeaderMap, ext: &axum::http::Extensions) -> Lang {
        Lang::from_headers_with(headers, crate::security::secure_of(ext))
    }

    /// `from_headers_with` for plain-HTTP cookie names.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        Lang::from_headers_with(headers, false)
    }

    /// The `lang` cookie wins (the switch on the page), then Accept-Language by quality.
    pub fn from_headers_with(headers: &HeaderMap, secure: bool) -> Lang {
        let name = crate::extract::lang_cookie_name(secure);
        if let Some(l) = crate::extract::cookie(headers, name).and_then(|v| Lang::parse(&v)) {
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

    /// Like [`Lang::tk`], but a value the catalogue has no words for (a key
    /// typed through the API, a kind a newer room writes) shows as it is.
    pub fn tk_or<'a>(self, prefix: &str, key: &'a str) -> &'a str {
        match CATALOG.get().and_then(|c| c.get(format!("{prefix}.{key}").as_str())) {
            Some((en, zh)) => self.pick(en, zh),
            None => key,
        }
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
    match CATALOG.get().and_then(|c| c.get(key)) {
        Some((en, zh)) => match lang {
            Lang::En => en,
            Lang::Zh => zh,
        },
        None => {
            tracing::warn!(key, "missing catalogue key");
            MISSING
        }
    }
}

/// What a missing key renders as (a test fails on it).
pub const MISSING: &str = "??";

/// One row of a room's catalogue: (key, English, Simplified Chinese).
pub type Text = (&'static str, &'static str, &'static str);

type Joined = HashMap<&'static str, (&'static str, &'static str)>;

static CATALOG: OnceLock<Joined> = OnceLock::new();

/// Join the rooms' catalogues into one, refusing a key two rooms (or one room
/// twice) define, and a row missing a language.
pub fn join(parts: &[(&'static str, &'static [Text])]) -> Result<Joined, String> {
    let mut all: Joined = HashMap::new();
    let mut owner: HashMap<&'static str, &'static str> = HashMap::new();
    for (room, texts) in parts {
        for (k, en, zh) in texts.iter() {
            if en.is_empty() || zh.is_empty() {
                return Err(format!("text {k} of room {room} is missing a language"));
            }
            if let Some(first) = owner.insert(k, room) {
                return Err(format!("text {k} is defined twice (rooms {first} and {room})"));
            }
            all.insert(k, (en, zh));
        }
    }
    Ok(all)
}

/// Make the joined catalogue the one every page and problem reads. The first
/// call wins; later calls (tests building the app again) only check theirs.
pub fn install(parts: &[(&'static str, &'static [Text])]) -> Result<(), String> {
    let joined = join(parts)?;
    let _ = CATALOG.set(joined);
    Ok(())
}

/// Whether the installed catalogue has this key.
pub fn has(key: &str) -> bool {
    CATALOG.get().is_some_and(|c| c.contains_key(key))
}

/// A message in this language: its text with every argument in place
/// (money as yuan, times in China time, keys in this language). A key the
/// catalogue lacks is shown as it is and logged; a test renders every key.
pub fn render(lang: Lang, m: &Msg) -> String {
    let text = match CATALOG.get().and_then(|c| c.get(m.key.as_str())) {
        Some((en, zh)) => match lang {
            Lang::En => *en,
            Lang::Zh => *zh,
        },
        None => {
            tracing::warn!(key = %m.key, "missing catalogue key");
            m.key.as_str()
        }
    };
    let args: Vec<(&str, String)> = m.args.iter().map(|(k, v)| (k.as_str(), arg_text(lang, v))).collect();
    fill(text, &args)
}

fn arg_text(lang: Lang, a: &Arg) -> String {
    match a {
        Arg::Text(s) => s.clone(),
        Arg::Fen(f) => yizhan_core::money::yuan_grouped(*f),
        Arg::Time(ms) => yizhan_core::time::fmt_cst(*ms),
        Arg::Int(n) => n.to_string(),
        Arg::Key(k) => lookup(lang, k).to_string(),
    }
}

/// Replace `{name}` placeholders in a text with the given values.
pub fn fill(text: &str, args: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_refuses_duplicates_and_missing_languages() {
        static A: &[Text] = &[("a.one", "One", "一")];
        static B: &[Text] = &[("a.one", "Uno", "一")];
        static C: &[Text] = &[("c.x", "", "空")];
        assert!(join(&[("a", A)]).is_ok());
        let e = join(&[("a", A), ("b", B)]).unwrap_err();
        assert!(e.contains("a.one") && e.contains("rooms a and b"), "{e}");
        assert!(join(&[("c", C)]).unwrap_err().contains("missing a language"));
    }

    #[test]
    fn placeholders_are_filled_by_name() {
        assert_eq!(
            fill("{who} sent {amount} yuan", &[("amount", "5.00".into()), ("who", "Li".into())]),
            "Li sent 5.00 yuan"
        );
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
