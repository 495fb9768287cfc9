//! A room: one capability's HTTP side, described as data so the app can join
//! the rooms at start. Each room lists what it brings (texts, authorization
//! rows, tiles, tabs, the services a city may offer, its migrations, the URL
//! prefixes it serves) and how to mount its routes from the services it needs.
//! `join` refuses two rooms claiming the same text key, route, tile, tab or
//! prefix.

use crate::authz::RouteRule;
use crate::i18n::Text;
use crate::page::{NavItem, Tile};
use axum::Router;
use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use utoipa_axum::router::OpenApiRouter;
use yizhan_core::{Code, MigrationSet};

/// What a room brings.
pub struct Room {
    pub name: &'static str,
    /// The URL prefixes its pages and API routes live under (a path belongs
    /// to the room with the longest matching prefix).
    pub prefixes: &'static [&'static str],
    pub texts: &'static [Text],
    /// Who may call each of its API routes.
    pub access: &'static [RouteRule],
    pub tiles: &'static [Tile],
    pub nav: &'static [NavItem],
    /// Service keys a city may switch on for its residents.
    pub city_services: &'static [&'static str],
    /// Its public error codes beyond the platform's (`yizhan_core::Code::ALL`),
    /// each with an `error.<name>` title in its texts.
    pub codes: &'static [&'static [Code]],
    /// Pages for what a notification is about: (target kind, path with `{id}`).
    pub links: &'static [(&'static str, &'static str)],
    /// Its domains' tables, in dependency order.
    pub migrations: &'static [&'static MigrationSet],
    /// Its routes, given the services it needs.
    pub mount: fn(&Deps) -> Result<Mounted, String>,
}

/// A room's routes, ready to merge: the API (documented) and the pages.
pub struct Mounted {
    pub api: OpenApiRouter,
    pub pages: Router,
}

impl Mounted {
    pub fn new(api: OpenApiRouter, pages: Router) -> Mounted {
        Mounted { api, pages }
    }
}

/// The services the app built, by type: each room takes what it needs.
#[derive(Default)]
pub struct Deps(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Deps {
    pub fn new() -> Deps {
        Deps::default()
    }

    pub fn with<T: Clone + Send + Sync + 'static>(mut self, v: T) -> Deps {
        self.0.insert(TypeId::of::<T>(), Box::new(v));
        self
    }

    /// A service by its type; an error names what is missing.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Result<T, String> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
            .cloned()
            .ok_or_else(|| format!("no {} was provided to the rooms", std::any::type_name::<T>()))
    }
}

/// The rooms' lists, joined, each entry checked to appear once.
pub struct Joined {
    pub texts: Vec<(&'static str, &'static [Text])>,
    pub access: Vec<&'static RouteRule>,
    pub tiles: Vec<&'static Tile>,
    pub nav: Vec<&'static NavItem>,
    pub city_services: Vec<&'static str>,
    pub migrations: Vec<&'static MigrationSet>,
    pub links: Vec<(&'static str, &'static str)>,
    /// The platform's codes, then every room's.
    pub codes: Vec<Code>,
    pub prefixes: Vec<(&'static str, &'static str)>,
}

fn once(seen: &mut HashSet<String>, what: &str, key: String, room: &str) -> Result<(), String> {
    if seen.insert(key.clone()) {
        Ok(())
    } else {
        Err(format!("{what} {key} is claimed twice (again by room {room})"))
    }
}

/// Join the rooms' lists; a duplicate is an error naming it.
pub fn join(rooms: &[&'static Room]) -> Result<Joined, String> {
    let mut j = Joined {
        texts: Vec::new(),
        access: Vec::new(),
        tiles: Vec::new(),
        nav: Vec::new(),
        city_services: Vec::new(),
        migrations: Vec::new(),
        links: Vec::new(),
        codes: Code::ALL.to_vec(),
        prefixes: Vec::new(),
    };
    let mut code_names: HashSet<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    let (mut names, mut routes, mut tiles, mut nav, mut services, mut migrations, mut prefixes) = Default::default();
    let mut links = HashSet::new();
    for room in rooms {
        once(&mut names, "room", room.name.to_string(), room.name)?;
        j.texts.push((room.name, room.texts));
        for r in room.access {
            once(&mut routes, "route", format!("{} {}", r.method, r.path), room.name)?;
            j.access.push(r);
        }
        for t in room.tiles {
            once(&mut tiles, "tile", t.key.to_string(), room.name)?;
            j.tiles.push(t);
        }
        for n in room.nav {
            once(&mut nav, "tab", n.href.to_string(), room.name)?;
            j.nav.push(n);
        }
        for s in room.city_services {
            once(&mut services, "city service", s.to_string(), room.name)?;
            j.city_services.push(s);
        }
        for m in room.migrations {
            once(&mut migrations, "migration set", m.domain.to_string(), room.name)?;
            j.migrations.push(m);
        }
        for c in room.codes.iter().flat_map(|cs| cs.iter()) {
            once(&mut code_names, "error code", c.as_str().to_string(), room.name)?;
            j.codes.push(*c);
        }
        for l in room.links {
            once(&mut links, "link for", l.0.to_string(), room.name)?;
            j.links.push(*l);
        }
        for p in room.prefixes {
            once(&mut prefixes, "URL prefix", p.to_string(), room.name)?;
            j.prefixes.push((p, room.name));
        }
    }
    crate::i18n::join(&j.texts)?;
    Ok(j)
}

/// The room whose prefix is the longest that `path` is or starts with (at a
/// `/` boundary, so the prefix `/` is the root page alone).
pub fn room_of<'a>(prefixes: &'a [(&'static str, &'static str)], path: &str) -> Option<&'a str> {
    prefixes
        .iter()
        .filter(|(p, _)| path == *p || (path.starts_with(p) && path[p.len()..].starts_with('/')))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, r)| *r)
}

struct Installed {
    tiles: Vec<&'static Tile>,
    city_services: Vec<&'static str>,
    links: Vec<(&'static str, &'static str)>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Make the joined lists the ones pages read: the catalogue, the tab bar,
/// the home screen's tiles and the services a city may offer. The first call
/// wins (tests build the app many times in one process).
pub fn install(j: &Joined) -> Result<(), String> {
    crate::i18n::install(&j.texts)?;
    crate::page::install_nav(j.nav.clone());
    let mut tiles = j.tiles.clone();
    tiles.sort_by_key(|t| t.order);
    let _ = INSTALLED.set(Installed { tiles, city_services: j.city_services.clone(), links: j.links.clone() });
    Ok(())
}

/// Every room's home-screen tiles, in their order.
pub fn tiles() -> &'static [&'static Tile] {
    INSTALLED.get().map(|i| i.tiles.as_slice()).unwrap_or(&[])
}

/// The service keys a city may offer, from every room.
pub fn city_services() -> &'static [&'static str] {
    INSTALLED.get().map(|i| i.city_services.as_slice()).unwrap_or(&[])
}

/// The page for what a notification is about, if a room has one for its kind.
/// The id is percent-encoded into the path.
pub fn link(kind: &str, id: &str) -> Option<String> {
    let pattern = INSTALLED.get()?.links.iter().find(|(k, _)| *k == kind)?.1;
    let safe: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    Some(pattern.replace("{id}", &safe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{r, Access};

    fn none(_: &Deps) -> Result<Mounted, String> {
        Ok(Mounted::new(OpenApiRouter::new(), Router::new()))
    }

    static A: Room = Room {
        name: "a",
        prefixes: &["/a", "/api/v1/a"],
        texts: &[("a.x", "X", "叉")],
        access: &[r("GET", "/api/v1/a", Access::Public)],
        tiles: &[],
        nav: &[],
        city_services: &["a"],
        codes: &[],
        links: &[],
        migrations: &[],
        mount: none,
    };
    static B: Room = Room {
        name: "b",
        prefixes: &["/b"],
        texts: &[("b.x", "X", "叉")],
        access: &[r("GET", "/api/v1/a", Access::Public)],
        tiles: &[],
        nav: &[],
        city_services: &[],
        codes: &[],
        links: &[],
        migrations: &[],
        mount: none,
    };
    static C: Room = Room { name: "c", prefixes: &["/c"], texts: &[("a.x", "X", "叉")], access: &[], ..B };

    static D: Room = Room {
        name: "d",
        prefixes: &["/d"],
        texts: &[],
        access: &[],
        codes: &[&[Code::new("not_found", yizhan_core::Class::NotFound)]],
        ..B
    };

    #[test]
    fn duplicates_are_refused_with_their_name() {
        let e = join(&[&A, &D]).err().unwrap();
        assert!(e.contains("error code not_found"), "{e}");
        assert!(join(&[&A]).is_ok());
        let e = join(&[&A, &B]).err().unwrap();
        assert!(e.contains("GET /api/v1/a"), "{e}");
        let e = join(&[&A, &C]).err().unwrap();
        assert!(e.contains("a.x"), "{e}");
        let e = join(&[&A, &A]).err().unwrap();
        assert!(e.contains("room a"), "{e}");
    }

    #[test]
    fn a_path_belongs_to_the_longest_prefix() {
        let p = [
            ("/", "people"),
            ("/money", "money"),
            ("/api/v1/money", "money"),
            ("/api/v1", "app"),
            ("/api/v1/me", "people"),
        ];
        assert_eq!(room_of(&p, "/"), Some("people"));
        assert_eq!(room_of(&p, "/home"), None);
        assert_eq!(room_of(&p, "/money/pay"), Some("money"));
        assert_eq!(room_of(&p, "/moneyx"), None);
        assert_eq!(room_of(&p, "/api/v1/me/real-name"), Some("people"));
        assert_eq!(room_of(&p, "/api/v1/other"), Some("app"));
    }
}
