//! The layout's rules, checked on the source tree: a domain crate knows no
//! HTTP and writes no page URL; a room's web side uses only the kit, core,
//! the domain crates and the identity room's public extractors, never
//! another room's web side or the app; the kit names no domain; and every
//! API operation a room mounts lies under one of that room's URL prefixes,
//! which ARCHITECTURE.md lists in its table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every workspace member: (package name, folder).
fn members() -> Vec<(String, PathBuf)> {
    let root = crates_dir().join("..");
    let toml = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let block = toml.split("members = [").nth(1).unwrap().split(']').next().unwrap();
    let mut out = Vec::new();
    for m in block.split(',').map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()) {
        let dir = root.join(m);
        let name = package_name(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap());
        out.push((name, dir));
    }
    assert!(out.len() >= 10, "members not read: {out:?}");
    out
}

fn package_name(toml: &str) -> String {
    toml.lines().find_map(|l| l.strip_prefix("name = ")).unwrap().trim_matches('"').to_string()
}

/// The names in a Cargo.toml's `[dependencies]` table (not dev-dependencies).
fn dependencies(dir: &Path) -> BTreeSet<String> {
    let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let mut deps = BTreeSet::new();
    let mut inside = false;
    for line in toml.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            inside = l == "[dependencies]";
            continue;
        }
        if inside {
            if let Some((name, _)) = l.split_once(['=', '.']) {
                if !name.trim().is_empty() && !name.starts_with('#') {
                    deps.insert(name.trim().to_string());
                }
            }
        }
    }
    deps
}

/// The Rust files under `dir/src`, with their text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out
}

/// Code without comments (a crude but sufficient cut at `//`).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).filter(|l| !l.trim().is_empty())
}

fn is_domain(name: &str, dir: &Path) -> bool {
    let d = dir.to_string_lossy();
    name == "yizhan-core" || name == "yizhan-idempotency" || d.ends_with("/domain") || d.ends_with("/ledger")
}

fn is_room_web(dir: &Path) -> bool {
    dir.to_string_lossy().ends_with("/web")
}

const HTTP_CRATES: &[&str] = &["axum", "askama", "utoipa", "utoipa-axum", "tower", "tower-http", "yizhan-kit"];

#[test]
fn domain_crates_know_no_http_and_write_no_page_url() {
    let members = members();
    let page_prefixes: Vec<&str> = yizhan_app::joined()
        .unwrap()
        .prefixes
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| *p != "/" && !p.starts_with("/api/"))
        .collect();
    let mut checked = 0;
    for (name, dir) in members.iter().filter(|(n, d)| is_domain(n, d)) {
        checked += 1;
        for dep in dependencies(dir) {
            assert!(!HTTP_CRATES.contains(&dep.as_str()), "{name} depends on {dep}");
            assert!(!dep.ends_with("-web") && dep != "yizhan-app", "{name} depends on the web side {dep}");
        }
        for (file, text) in sources(dir) {
            for line in code_lines(&text) {
                assert!(!line.contains("axum") && !line.contains("askama"), "{}: {line}", file.display());
                for p in &page_prefixes {
                    for quote in [format!("\"{p}/"), format!("\"{p}\"")] {
                        assert!(!line.contains(&quote), "{} writes the page URL {p}: {line}", file.display());
                    }
                }
            }
        }
    }
    assert!(checked >= 7, "only {checked} domain crates found");
}

#[test]
fn a_room_uses_only_the_kit_core_domains_and_the_identity_extractors() {
    let members = members();
    let webs: BTreeSet<String> = members.iter().filter(|(_, d)| is_room_web(d)).map(|(n, _)| n.clone()).collect();
    assert!(webs.len() >= 4, "{webs:?}");
    for (name, dir) in members.iter().filter(|(_, d)| is_room_web(d)) {
        let deps = dependencies(dir);
        assert!(!deps.contains("yizhan-app"), "{name} depends on the app");
        for dep in deps.iter().filter(|d| webs.contains(*d)) {
            assert_eq!(dep, "yizhan-identity-web", "{name} depends on another room's web side, {dep}");
        }
        for (file, text) in sources(dir) {
            for line in code_lines(&text) {
                for other in webs.iter().filter(|w| *w != name && *w != "yizhan-identity-web") {
                    let path = other.replace('-', "_");
                    assert!(!line.contains(&path), "{} uses {other}: {line}", file.display());
                }
                assert!(!line.contains("yizhan_app"), "{} uses the app: {line}", file.display());
            }
        }
    }
}

#[test]
fn the_kit_names_no_domain() {
    let members = members();
    let (_, kit) = members.iter().find(|(n, _)| n == "yizhan-kit").unwrap();
    for dep in dependencies(kit) {
        assert!(
            !dep.starts_with("yizhan-") || dep == "yizhan-core" || dep == "yizhan-idempotency",
            "the kit depends on {dep}"
        );
    }
    // Words of the rooms: none may appear in the kit's code (its texts file
    // holds the words of the frame and of the platform's error titles).
    let words = ["wallet", "identity", "ledger", "red_packet", "hospital", "merchant", "bill", "notify", "audit"];
    for (file, text) in sources(kit) {
        if file.ends_with("texts.rs") {
            continue;
        }
        for line in code_lines(&text) {
            let lower = line.to_lowercase();
            for w in words {
                assert!(!lower.contains(w), "{} names the domain word {w}: {line}", file.display());
            }
        }
    }
}

#[tokio::test]
async fn every_api_operation_lies_under_its_rooms_prefix() {
    let app = yizhan_app::testing::spawn().await;
    let joined = yizhan_app::joined().unwrap();
    let deps = yizhan_app::deps(&app.state);
    let mut seen = 0;
    for room in yizhan_app::ROOMS {
        let mounted = (room.mount)(&deps).unwrap();
        for path in mounted.api.into_openapi().paths.paths.keys() {
            seen += 1;
            let owner = yizhan_kit::room::room_of(&joined.prefixes, path);
            assert_eq!(
                owner,
                Some(room.name),
                "{path} is mounted by {} but its prefix belongs to {owner:?}",
                room.name
            );
        }
    }
    assert!(seen > 30, "only {seen} paths");
}

#[test]
fn architecture_lists_every_rooms_prefixes() {
    let text = std::fs::read_to_string(crates_dir().join("../ARCHITECTURE.md")).unwrap();
    let section = text.split("## URL prefixes").nth(1).expect("ARCHITECTURE.md has a section '## URL prefixes'");
    let mut documented: BTreeMap<String, String> = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() >= 3 && cells[1].starts_with('`') {
            documented.insert(cells[1].trim_matches('`').to_string(), cells[2].trim_matches('`').to_string());
        }
    }
    let actual: BTreeMap<String, String> =
        yizhan_app::joined().unwrap().prefixes.iter().map(|(p, r)| (p.to_string(), r.to_string())).collect();
    assert_eq!(documented, actual, "the table in ARCHITECTURE.md differs from the rooms' lists");
}
