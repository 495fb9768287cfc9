//! The catalogue against the code: every message key the code uses, every key
//! a template looks up, every error code, kind of organisation, role and city
//! service has words in both languages; each room's rows are sorted; Chinese
//! texts hold no English words; rendering fills every placeholder; no message
//! shows an internal id.
//!
//! The keys are found by reading the source of every crate (tests and
//! `#[cfg(test)]` modules left out): the string literals given to
//! `Error::new`, `Error::field`, `Error::forbidden`, `Error::not_found`
//! (as `error.not_found.<x>`), `Msg::new`, `Arg::Key` and `key_arg`, and
//! every literal of the form `error.<…>` (e.g. the amount errors of
//! `Fen::amount`). The arguments chained after a call (`.int("max", …)`,
//! `.with("kind", Arg::Key(…))`) are the sample arguments it is rendered with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use yizhan_core::{Arg, Msg};
use yizhan_kit::i18n::{render, Lang};

/// Words the Chinese texts may hold as they are: acronyms, protocol and
/// product names a person cannot be spared.
const ALLOWED_LATIN: &[&str] = &[
    "QR", "PIN", "CNY", "JSON", "SMTP", "API", "ID", "ASCII", "HTTP", "URL", "SQLITE", "POSTGRES", "APP", "CRC", "SVG",
    "PNG", "JPEG", "PDF",
];
/// Header names an API client has to send exactly as written.
const ALLOWED_PHRASES: &[&str] = &["Idempotency-Key"];
/// Rows whose Chinese is meant to be another language: the switch to English.
const LATIN_ROWS: &[&str] = &["lang.switch"];
/// Rows that are each language's own stored text (notifications from before
/// messages): a placeholder per language.
const PER_LANGUAGE_ROWS: &[&str] = &["notify.stored_text"];

/// One place the code uses a key, with the arguments it gives.
#[derive(Debug, Clone)]
struct Use {
    key: String,
    args: Vec<(String, Arg)>,
    /// Argument names the same file gives to messages built in steps
    /// (`let body = Msg::new(…); … body.text("payer", …)`).
    later: BTreeSet<String>,
    at: String,
}

/// The names of every message argument a source gives: `.text("payer"`, `.with("kind"`.
fn arg_names(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for m in [".int(", ".text(", ".fen(", ".time(", ".key_arg(", ".with(", ".arg("] {
        let mut from = 0;
        while let Some(pos) = src[from..].find(m) {
            from += pos + m.len();
            if let Some((name, _)) = literal(src[from..].trim_start()) {
                out.insert(name);
            }
        }
    }
    out
}

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn walk(dir: &Path, ext: &str, skip_tests: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name == "target" || name.starts_with('.') || (skip_tests && name == "tests") {
                continue;
            }
            walk(&p, ext, skip_tests, out);
        } else if name.ends_with(ext) {
            out.push(p);
        }
    }
}

/// The source without comment lines and without the `#[cfg(test)]` part.
fn source_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    // Comment lines are blanked, not removed, so line numbers stay true.
    text.lines().map(|l| if l.trim_start().starts_with("//") { "" } else { l }).collect::<Vec<_>>().join("\n")
}

/// A Rust string literal starting at `s[0] == '"'`: its value and its length in the source.
fn literal(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// The top-level arguments of a call whose `(` is just before `s`, and the
/// length up to and including its `)`.
fn call_args(s: &str) -> Option<(Vec<String>, usize)> {
    let mut depth = 0usize;
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        let c = b[i] as char;
        match c {
            '"' => {
                let (_, n) = literal(&s[i..])?;
                cur.push_str(&s[i..i + n]);
                i += n;
                continue;
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => {
                if !cur.trim().is_empty() {
                    args.push(cur.trim().to_string());
                }
                return Some((args, i + 1));
            }
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(cur.trim().to_string());
                cur.clear();
                i += 1;
                continue;
            }
            _ => {}
        }
        let ch = s[i..].chars().next()?;
        cur.push(ch);
        i += ch.len_utf8();
    }
    None
}

fn lit_arg(args: &[String], i: usize) -> Option<String> {
    args.get(i).and_then(|a| literal(a)).filter(|(_, n)| *n == args[i].len()).map(|(v, _)| v)
}

/// A sample value for an argument as the code builds it (`Arg::Fen(…)`, `.int(…)`).
fn sample(kind: &str, value: &str) -> Arg {
    match kind {
        "fen" | "Fen" => Arg::Fen(1250),
        "time" | "Time" => Arg::Time(1_764_000_000_000),
        "int" | "Int" => Arg::Int(7),
        "key_arg" | "Key" => Arg::Key(literal(value).map(|(v, _)| v).unwrap_or_else(|| "app.name".into())),
        _ => Arg::Text("样例 Sample".into()),
    }
}

/// The arguments chained after a call: `.int("max", 8)`, `.with("kind", Arg::Key(…))`.
fn chained_args(mut s: &str) -> Vec<(String, Arg)> {
    let mut out = Vec::new();
    loop {
        let t = s.trim_start();
        let Some(rest) = t.strip_prefix('.') else { break };
        let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let method = &rest[..name_len];
        let Some(after) = rest[name_len..].strip_prefix('(') else { break };
        let Some((args, n)) = call_args(after) else { break };
        match method {
            "int" | "text" | "fen" | "time" | "key_arg" => {
                if let Some(name) = lit_arg(&args, 0) {
                    out.push((name, sample(method, args.get(1).map(String::as_str).unwrap_or(""))));
                }
            }
            "with" | "arg" => {
                if let Some(name) = lit_arg(&args, 0) {
                    let v = args.get(1).cloned().unwrap_or_default();
                    let kind = v.trim_start_matches("yizhan_core::").trim_start_matches("Arg::");
                    let k = kind.split('(').next().unwrap_or("");
                    let inner = kind.split_once('(').map(|(_, r)| r.trim_end_matches(')')).unwrap_or("");
                    out.push((name, sample(k, inner)));
                }
            }
            // `.with_retry_after(…)`, `.into()`, `.map(…)`: not arguments of the message.
            _ => {}
        }
        s = &after[n..];
    }
    out
}

/// (pattern, index of the key among the call's arguments, prefix added to it).
const CALLS: &[(&str, usize, &str)] = &[
    ("Error::new(", 1, ""),
    ("Error::field(", 1, ""),
    ("Error::forbidden(", 0, ""),
    ("Error::not_found(", 0, "error.not_found."),
    ("Msg::new(", 0, ""),
    ("Arg::Key(", 0, ""),
    ("key_arg(", 1, ""),
];

fn uses_in(path: &Path, src: &str, out: &mut Vec<Use>) {
    let rel = path.strip_prefix(crates_dir()).unwrap_or(path).display().to_string();
    // The catalogues themselves define keys; they do not use them.
    if path.file_name().is_some_and(|n| n == "texts.rs") {
        return;
    }
    // Where the calls' arguments are, so the `error.` pass below does not count them again.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let later = arg_names(src);
    for (pat, idx, prefix) in CALLS {
        let mut from = 0;
        while let Some(pos) = src[from..].find(pat) {
            let start = from + pos;
            from = start + pat.len();
            // Other crates' errors (`std::io::Error::new`, `anyhow::Error::new`) are not messages.
            let before = &src[..start];
            if before.ends_with("io::") || before.ends_with("anyhow::") || before.ends_with("fmt::") {
                continue;
            }
            let line = src[..start].matches('\n').count() + 1;
            let Some((args, n)) = call_args(&src[from..]) else { continue };
            spans.push((from, from + n));
            let Some(key) = lit_arg(&args, *idx) else { continue };
            let args_chain =
                if *pat == "Arg::Key(" || *pat == "key_arg(" { Vec::new() } else { chained_args(&src[from + n..]) };
            out.push(Use {
                key: format!("{prefix}{key}"),
                args: args_chain,
                later: later.clone(),
                at: format!("{rel}:{line}"),
            });
        }
    }
    // Every literal that is an `error.` key, wherever it is (e.g. `Fen::amount`'s errors).
    let mut i = 0;
    while let Some(pos) = src[i..].find("\"error.") {
        let start = i + pos;
        i = start + 1;
        if spans.iter().any(|(a, b)| (*a..*b).contains(&start)) {
            continue;
        }
        if let Some((v, _)) = literal(&src[start..]) {
            let is_key = v.len() > "error.".len()
                && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
                && !v.ends_with('.');
            if is_key {
                let line = src[..start].matches('\n').count() + 1;
                out.push(Use { key: v, args: Vec::new(), later: later.clone(), at: format!("{rel}:{line}") });
            }
        }
    }
}

fn code_uses() -> Vec<Use> {
    let mut files = Vec::new();
    walk(&crates_dir(), ".rs", true, &mut files);
    assert!(files.len() > 20, "found only {} source files under {}", files.len(), crates_dir().display());
    let mut out = Vec::new();
    for f in files {
        uses_in(&f, &source_of(&f), &mut out);
    }
    out
}

/// Every `t("key")` of every template (any `templates` folder, subfolders too).
fn template_keys() -> Vec<(String, String)> {
    fn templates_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for p in entries.flatten().map(|e| e.path()) {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            if !p.is_dir() || name == "target" || name.starts_with('.') {
                continue;
            }
            if name == "templates" {
                out.push(p.clone());
            }
            templates_dirs(&p, out);
        }
    }
    let mut dirs = Vec::new();
    templates_dirs(&crates_dir(), &mut dirs);
    assert!(dirs.len() >= 4, "found only {} templates folders", dirs.len());
    let mut files = Vec::new();
    for d in dirs {
        walk(&d, ".html", false, &mut files);
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let rel = f.strip_prefix(crates_dir()).unwrap_or(&f).display().to_string();
        let mut i = 0;
        while let Some(pos) = text[i..].find("t(\"") {
            let start = i + pos;
            i = start + 2;
            let prev = text[..start].chars().last().unwrap_or(' ');
            if prev.is_ascii_alphanumeric() || prev == '_' {
                continue; // `tk("…")`, `format("…")`…
            }
            if let Some((k, _)) = literal(&text[start + 2..]) {
                out.push((k, rel.clone()));
            }
        }
    }
    out
}

/// The `{name}` placeholders of a text.
fn placeholders(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.insert(name.to_string());
                }
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

/// The English words of a Chinese text: runs of 3+ ASCII letters outside
/// `{placeholders}`, not in the allow-list.
fn latin_words(zh: &str) -> Vec<String> {
    let mut text = zh.to_string();
    for p in placeholders(zh) {
        text = text.replace(&format!("{{{p}}}"), " ");
    }
    for p in ALLOWED_PHRASES {
        text = text.replace(p, " ");
    }
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphabetic() {
            cur.push(c);
        } else {
            if cur.len() >= 3 && !ALLOWED_LATIN.contains(&cur.to_ascii_uppercase().as_str()) {
                words.push(cur.clone());
            }
            cur.clear();
        }
    }
    words
}

fn is_id_like(name: &str) -> bool {
    name == "id" || name.ends_with("_id") || name.contains("fen") || name == "account"
}

#[test]
fn every_room_keeps_its_rows_sorted_unique_and_in_both_languages() {
    let joined = yizhan_app::joined().expect("the rooms join");
    let mut failures = Vec::new();
    for (room, texts) in &joined.texts {
        for w in texts.windows(2) {
            if w[0].0 >= w[1].0 {
                failures.push(format!("room {room}: {:?} is not before {:?}", w[0].0, w[1].0));
            }
        }
        for (k, en, zh) in texts.iter() {
            if en.trim().is_empty() || zh.trim().is_empty() {
                failures.push(format!("room {room}: {k} is missing a language"));
            }
            let only_placeholders = zh.is_ascii() && !placeholders(zh).is_empty();
            // Chinese characters, or Chinese (full-width) punctuation between placeholders.
            let has_chinese = zh.chars().any(|c| {
                ('\u{4e00}'..='\u{9fff}').contains(&c)
                    || ('\u{3000}'..='\u{303f}').contains(&c)
                    || ('\u{ff00}'..='\u{ffef}').contains(&c)
            });
            if !has_chinese && !only_placeholders && !LATIN_ROWS.contains(k) {
                failures.push(format!("room {room}: the Chinese of {k} has no Chinese: {zh:?}"));
            }
            if !LATIN_ROWS.contains(k) {
                let words = latin_words(zh);
                if !words.is_empty() {
                    failures.push(format!("room {room}: the Chinese of {k} holds English words {words:?}: {zh:?}"));
                }
            }
            if placeholders(en) != placeholders(zh) && !PER_LANGUAGE_ROWS.contains(k) {
                failures.push(format!(
                    "room {room}: {k} has placeholders {:?} in English but {:?} in Chinese",
                    placeholders(en),
                    placeholders(zh)
                ));
            }
            if let Some(p) = placeholders(en).into_iter().find(|p| is_id_like(p)) {
                failures.push(format!("room {room}: {k} shows an internal value {{{p}}}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_key_the_code_and_templates_use_has_words_in_both_languages() {
    yizhan_app::install();
    let uses = code_uses();
    assert!(uses.iter().any(|u| u.key == "identity.login.taken"), "the scan finds the code's keys");
    assert!(uses.iter().any(|u| u.key == "error.not_found.user"), "the scan finds not_found keys");
    assert!(uses.iter().any(|u| u.key == "error.amount.too_large"), "the scan finds error literals");
    let mut failures = Vec::new();
    for u in &uses {
        if !yizhan_kit::i18n::has(&u.key) {
            let what = if u.key.contains(' ') { "a sentence, not a key" } else { "missing from the catalogue" };
            failures.push(format!("{}: {:?} is {what}", u.at, u.key));
            continue;
        }
        for (name, _) in &u.args {
            if is_id_like(name) {
                failures.push(format!("{}: {} passes an internal value as {{{name}}}", u.at, u.key));
            }
        }
        let mut msg = Msg { key: u.key.clone(), args: u.args.clone() };
        // A placeholder the call leaves open may be filled a few lines on, by a
        // name the file gives; anything else stays open and fails.
        for p in placeholders(&render(Lang::En, &msg)) {
            if u.later.contains(&p) {
                msg = msg.text(&p, "样例 Sample");
            }
        }
        for lang in [Lang::En, Lang::Zh] {
            let text = render(lang, &msg);
            let left = placeholders(&text);
            if !left.is_empty() {
                failures.push(format!("{}: {} in {lang:?} leaves {left:?} unfilled: {text:?}", u.at, u.key));
            }
            if text.contains(yizhan_kit::i18n::MISSING) {
                failures.push(format!("{}: {} in {lang:?} shows a missing key: {text:?}", u.at, u.key));
            }
        }
    }
    for (k, at) in template_keys() {
        if !yizhan_kit::i18n::has(&k) {
            failures.push(format!("{at}: template key {k:?} is missing from the catalogue"));
        }
    }
    let mut needed: BTreeMap<String, &str> = BTreeMap::new();
    for c in yizhan_app::joined().unwrap().codes.iter() {
        needed.insert(format!("error.{}", c.as_str()), "error code");
    }
    for k in yizhan_identity::OrgKind::ALL {
        needed.insert(format!("kind.{}", k.as_str()), "kind of organisation");
    }
    for r in ["admin", "operator"] {
        let role = yizhan_identity::Role::parse(r).expect("a role");
        needed.insert(format!("role.{}", role.as_str()), "role");
    }
    for s in yizhan_kit::room::city_services() {
        needed.insert(format!("service.{s}"), "city service");
    }
    // What the access log records: the reads the rooms write (`NewAccess::what`).
    for w in ["profile", "identity_number", "bills", "transactions", "identity_verification", "vehicle"] {
        needed.insert(format!("access.field.{w}"), "kind of read in the access log");
    }
    let joined = yizhan_app::joined().expect("the rooms join");
    for n in &joined.nav {
        needed.insert(n.label_key.to_string(), "tab");
    }
    for t in &joined.tiles {
        needed.insert(t.label_key.to_string(), "tile");
    }
    for (k, what) in &needed {
        if !yizhan_kit::i18n::has(k) {
            failures.push(format!("{k} ({what}) is missing from the catalogue"));
        }
    }
    failures.sort();
    failures.dedup();
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_scanner_reads_calls_and_their_arguments() {
    let src = r#"
        Err(Error::field_msg("password", Msg::new("identity.password.too_short").int("min", 8)))
        Error::forbidden("identity.staff.role_needed").with("role", Arg::Key(format!("role.{}", r)))
        let e = std::io::Error::new(ErrorKind::Other, "not ours");
        Error::not_found("identity_number")
        Err("error.amount.too_large")
    "#;
    let mut out = Vec::new();
    uses_in(Path::new("x.rs"), src, &mut out);
    let keys: Vec<&str> = out.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "identity.staff.role_needed",
            "error.not_found.identity_number",
            "identity.password.too_short",
            "error.amount.too_large"
        ]
    );
    assert_eq!(out[0].args[0].0, "role");
    assert!(matches!(out[0].args[0].1, Arg::Key(_)));
    assert_eq!(out[2].args, vec![("min".to_string(), Arg::Int(7))]);
    assert_eq!(latin_words("请以 JSON 发送 Idempotency-Key {max}"), Vec::<String>::new());
    assert_eq!(latin_words("请输入 DELETE 确认"), vec!["DELETE".to_string()]);
}
