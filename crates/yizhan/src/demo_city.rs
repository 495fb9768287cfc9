//! `yizhan demo`'s city services: two cities with different catalogues
//! (marriage registration, library card, Hong Kong / Macau travel permit,
//! traffic fine payment), a week of released slots, and department staff
//! logins. Running it twice adds nothing twice (the week moves on). A staff
//! login someone else already holds is left alone and said so: the
//! department and its services are still made, without that member.

use crate::app::Built;
use crate::demo::{claim, Claim, Report};
use serde_json::{json, Value};
use yizhan_booking::{local_day, Hours, Rules};
use yizhan_city::{BookingSetup, Delivery, LocalText, NewService};
use yizhan_identity::{City, OrgKind, Principal, Role};

/// (city, department, staff login, staff name).
const DEPARTMENTS: &[(&str, &str, &str, &str)] = &[
    ("Hangzhou 杭州", "Hangzhou Civil Affairs Bureau 杭州市民政局", "civil@demo.yizhan.local", "Clerk Zhou 周办事员"),
    ("Hangzhou 杭州", "Hangzhou Library 杭州图书馆", "library@demo.yizhan.local", "Librarian Sun 孙馆员"),
    (
        "Hangzhou 杭州",
        "Hangzhou Exit-Entry Administration 杭州市出入境管理局",
        "exit-entry@demo.yizhan.local",
        "Officer Wu 吴警官",
    ),
    (
        "Hangzhou 杭州",
        "Hangzhou Traffic Police 杭州市公安局交警支队",
        "traffic@demo.yizhan.local",
        "Officer Lin 林警官",
    ),
    ("Suzhou 苏州", "Suzhou Civil Affairs Bureau 苏州市民政局", "suzhou-civil@demo.yizhan.local", "Clerk Xu 徐办事员"),
    ("Suzhou 苏州", "Suzhou Library 苏州图书馆", "suzhou-library@demo.yizhan.local", "Librarian He 何馆员"),
];

fn t(en: &str, zh: &str) -> LocalText {
    LocalText::new(en, zh)
}

fn tv(en: &str, zh: &str) -> Value {
    json!({"en": en, "zh": zh})
}

/// Weekday counters: 09:00-11:30 and 14:00-16:30 in 30-minute slots.
fn weekday_hours(capacity: i64) -> Vec<Hours> {
    (0..5)
        .flat_map(|weekday| {
            [(540, 690), (840, 990)].map(|(start_minute, end_minute)| Hours {
                weekday,
                start_minute,
                end_minute,
                slot_minutes: 30,
                capacity,
            })
        })
        .collect()
}

fn appointment(counters: &[&str], capacity: i64, walkin_places: i64) -> Option<BookingSetup> {
    Some(BookingSetup {
        rules: Rules { walkin_places, ..Rules::default() },
        counters: counters.iter().map(|c| c.to_string()).collect(),
        hours: weekday_hours(capacity),
        publish_days: 7,
    })
}

fn marriage() -> NewService {
    NewService {
        category: "family".into(),
        title: t("Marriage registration", "结婚登记"),
        description: t(
            "Book a time to register your marriage; both of you come with your documents.",
            "预约结婚登记时间，双方携带材料到场办理。",
        ),
        documents: vec![t("Both identity cards", "双方居民身份证"), t("Both household registers", "双方户口簿")],
        fee_fen: 900,
        delivery: Delivery::Appointment,
        form: json!({
            "type": "object", "x-order": ["partner_name", "first_marriage"],
            "required": ["partner_name", "first_marriage"],
            "properties": {
                "partner_name": {"type": "string", "maxLength": 30, "title": tv("Your partner's name", "对方姓名"),
                                 "description": tv("As on the identity card", "与身份证一致")},
                "first_marriage": {"type": "boolean", "title": tv("First marriage for both", "双方均为初婚")}
            }
        }),
        booking: appointment(&["Window 1 一号窗口", "Window 2 二号窗口"], 2, 1),
        deposit_fen: 0,
        deposit_perk: String::new(),
        // One of the couple books and invites the other; both confirm with verified real names.
        two_people: true,
    }
}

fn library_card() -> NewService {
    NewService {
        category: "culture".into(),
        title: t("Library card", "图书馆读者证"),
        description: t("Borrow books at every branch of the city library.", "在全市图书馆各分馆借阅图书。"),
        documents: vec![t("Identity card", "居民身份证")],
        fee_fen: 0,
        delivery: Delivery::Application,
        form: json!({
            "type": "object", "x-order": ["kind", "school", "agree"], "required": ["kind", "school", "agree"],
            "properties": {
                "kind": {"type": "string", "enum": ["adult", "student"], "title": tv("Card", "读者证类型"),
                         "x-enum-titles": [tv("Adult", "成人证"), tv("Student", "学生证")]},
                "school": {"type": "string", "maxLength": 40, "title": tv("School", "学校"),
                           "x-show-if": {"field": "kind", "in": ["student"]}},
                "agree": {"type": "boolean", "title": tv("I agree to the library's rules", "我同意图书馆借阅规则")}
            }
        }),
        booking: None,
        // ¥100 held in the wallet until the card is returned, waived from the credit perk.
        deposit_fen: 10_000,
        deposit_perk: "library_card".into(),
        two_people: false,
    }
}

fn travel_permit() -> NewService {
    NewService {
        category: "travel".into(),
        title: t("Hong Kong / Macau travel permit", "往来港澳通行证"),
        description: t(
            "Book a time at the exit-entry hall to apply for or renew your permit; a photo is taken there.",
            "预约出入境大厅办理或换发通行证，现场采集照片。",
        ),
        documents: vec![t("Identity card", "居民身份证")],
        fee_fen: 6_000,
        delivery: Delivery::Appointment,
        form: json!({
            "type": "object", "x-order": ["kind", "destination"], "required": ["kind", "destination"],
            "properties": {
                "kind": {"type": "string", "enum": ["first", "renewal"], "title": tv("Application", "申请类型"),
                         "x-enum-titles": [tv("First permit", "首次申请"), tv("Renewal", "换发")]},
                "destination": {"type": "string", "enum": ["hong_kong", "macau", "both"],
                                "title": tv("Endorsement for", "签注地"),
                                "x-enum-titles": [tv("Hong Kong", "香港"), tv("Macau", "澳门"), tv("Both", "港澳")]}
            }
        }),
        booking: appointment(&["Hall A 大厅A区"], 4, 1),
        deposit_fen: 0,
        deposit_perk: String::new(),
        two_people: false,
    }
}

fn traffic_fine() -> NewService {
    NewService {
        category: "transport".into(),
        title: t("Pay a traffic fine", "缴纳交通罚款"),
        description: t(
            "Fines for a car bound to your account arrive as bills in your wallet; pay them there.",
            "绑定车辆的罚款会作为账单发到你的钱包，在钱包中缴纳。",
        ),
        documents: vec![],
        fee_fen: 0,
        delivery: Delivery::Payment,
        form: json!({}),
        booking: None,
        deposit_fen: 0,
        deposit_perk: String::new(),
        two_people: false,
    }
}

async fn city_named(built: &Built, admin: &Principal, name: &str) -> anyhow::Result<City> {
    let err = |e: yizhan_core::Error| anyhow::anyhow!("{e}");
    let s = &built.state;
    Ok(match s.identity.list_cities().await.map_err(err)?.into_iter().find(|c| c.name == name) {
        Some(c) => c,
        None => {
            let services = ["wallet", "city"].map(String::from).to_vec();
            s.identity.create_city(admin, name, services).await.map_err(err)?
        }
    })
}

pub async fn run(built: &Built, admin: &Principal, report: &mut Report) -> anyhow::Result<()> {
    let err = |e: yizhan_core::Error| anyhow::anyhow!("{e}");
    let s = &built.state;
    let today = local_day(s.ctx.now_ms());
    let mut logins = Vec::new();
    for (city_name, dept, login, name) in DEPARTMENTS {
        let city = city_named(built, admin, city_name).await?;
        let existing = s.identity.list_orgs(Some(&city.id)).await.map_err(err)?.into_iter().find(|o| o.name == *dept);
        let org = match existing {
            Some(o) => o,
            None => s.identity.create_org(admin, &city.id, OrgKind::CityDepartment, dept).await.map_err(err)?,
        };
        let claimed = claim(s, login, name, true).await.map_err(err)?;
        report.login(login, &claimed);
        if let Claim::Added(user_id) | Claim::There(user_id) = &claimed {
            s.identity.set_home_city(user_id, &city.id).await.map_err(err)?;
            let members = s.identity.list_members(admin, &org.id).await.map_err(err)?;
            if !members.iter().any(|m| &m.user_id == user_id) {
                s.identity.add_member(admin, &org.id, user_id, Role::Admin).await.map_err(err)?;
            }
            logins.push((*login, *name, *dept));
        }
        let offered: Vec<NewService> = match (*city_name, *dept) {
            ("Hangzhou 杭州", d) if d.contains("Civil") => vec![marriage()],
            ("Hangzhou 杭州", d) if d.contains("Library") => vec![library_card()],
            ("Hangzhou 杭州", d) if d.contains("Exit-Entry") => vec![travel_permit()],
            ("Hangzhou 杭州", d) if d.contains("Traffic") => vec![traffic_fine()],
            // Suzhou offers fewer services: its own marriage registration and library card.
            (_, d) if d.contains("Civil") => vec![marriage()],
            (_, _) => vec![library_card()],
        };
        let published = s.city.org_services(&org.id).await.map_err(err)?;
        for svc in offered {
            match published.iter().find(|p| p.title == svc.title) {
                // Already there: keep a week of slots released.
                Some(p) => {
                    if let Some(bs) = &p.booking_service_id {
                        s.booking.publish(bs, today, today + 6).await.map_err(err)?;
                    }
                }
                None => {
                    s.city.publish(admin, &org.id, &svc).await.map_err(err)?;
                }
            }
        }
    }
    println!("\nCity services (catalogues of Hangzhou 杭州 and Suzhou 苏州; a week of slots released):");
    for (login, name, dept) in logins {
        println!("  {login:<32} {name} — admin of {dept}");
    }
    Ok(())
}
