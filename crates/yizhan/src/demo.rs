//! `yizhan demo`: a demo city with organisations and people, to try the app.
//! Running it twice changes nothing the second time, and it is safe on a data
//! directory with real people: a demo login or identity number someone else
//! already holds is left alone (and said so), never a failure half-way.

use crate::app;
use crate::DataOpts;
use indicatif::{ProgressBar, ProgressStyle};
use yizhan_core::time::DAY_MS;
use yizhan_identity::{OrgKind, Principal, Role};
use yizhan_pay::{BillKind, BillSpec, BillTo};

pub const DEMO_PASSWORD: &str = "demo-pass-2026";

/// What each demo resident finds in the wallet (fen). Topped up with a fixed
/// idempotency key, so a second run of the demo credits nothing.
const DEMO_TOPUP_FEN: i64 = 50_000;
/// What an unverified demo resident finds instead: their account may top up
/// at most 200 yuan at a time (the default limit for level 0).
const DEMO_UNVERIFIED_TOPUP_FEN: i64 = 20_000;
const DEMO_TOPUP_KEY: &str = "demo-seed-topup-1";
const DEMO_PLATE: &str = "浙A12345";

/// A demo bill: (organisation, kind, fen, description, days until due, to the plate rather than the identity number).
const BILLS: &[(&str, BillKind, i64, &str, i64, bool)] = &[
    ("Hangzhou Water 杭州水务", BillKind::Water, 4_680, "Water, last month 上月水费", 14, false),
    (
        "Hangzhou Traffic Police 杭州市公安局交警支队",
        BillKind::Fine,
        20_000,
        "Speeding on Tianmushan Road 天目山路超速",
        15,
        true,
    ),
];

struct Person {
    login: &'static str,
    name: &'static str,
    /// A valid demo identity number (GB 11643 checksum) or none.
    id_number: Option<&'static str>,
    staff_of: Option<(&'static str, Role)>,
}

const ORGS: &[(&str, OrgKind)] = &[
    ("Hangzhou Traffic Police 杭州市公安局交警支队", OrgKind::CityDepartment),
    ("Hangzhou Water 杭州水务", OrgKind::CityDepartment),
    ("Hangzhou First People's Hospital 杭州市第一人民医院", OrgKind::Hospital),
    ("West Lake Tea House 西湖茶馆", OrgKind::Merchant),
    ("Hangzhou Public Bikes 杭州公共自行车", OrgKind::MobilityOperator),
    ("Hangzhou Intermediate People's Court 杭州市中级人民法院", OrgKind::Court),
];

const PEOPLE: &[Person] = &[
    Person { login: "13800000001", name: "Li Hua 李华", id_number: Some("11010519491231002X"), staff_of: None },
    Person { login: "13800000002", name: "Wang Fang 王芳", id_number: None, staff_of: None },
    // Li Hua's partner for a marriage registration booked by two (both need verified real names).
    Person { login: "13800000003", name: "Zhang Wei 张伟", id_number: Some("330106199203150027"), staff_of: None },
    Person {
        login: "police@demo.yizhan.local",
        name: "Officer Zhang 张警官",
        id_number: None,
        staff_of: Some(("Hangzhou Traffic Police 杭州市公安局交警支队", Role::Operator)),
    },
    Person {
        login: "clinic@demo.yizhan.local",
        name: "Dr. Chen 陈医生",
        id_number: None,
        staff_of: Some(("Hangzhou First People's Hospital 杭州市第一人民医院", Role::Operator)),
    },
    // The water company's clerk: it reports the credit demo residents' bills, so it reviews their contests.
    Person {
        login: "water@demo.yizhan.local",
        name: "Clerk Gao 高办事员",
        id_number: None,
        staff_of: Some(("Hangzhou Water 杭州水务", Role::Operator)),
    },
    Person {
        login: "teahouse@demo.yizhan.local",
        name: "Tea House Cashier 茶馆收银",
        id_number: None,
        staff_of: Some(("West Lake Tea House 西湖茶馆", Role::Admin)),
    },
];

/// What became of one demo login.
pub(crate) enum Claim {
    /// Registered now.
    Added(String),
    /// A demo account from an earlier run (it takes the demo password).
    There(String),
    /// Someone else's account: left alone.
    Taken,
}

impl Claim {
    fn user_id(&self) -> Option<&str> {
        match self {
            Claim::Added(id) | Claim::There(id) => Some(id),
            Claim::Taken => None,
        }
    }
}

/// The demo account under `login`: registered if the login is free, reused
/// if it takes the demo password, and left alone if it is another person's.
pub(crate) async fn claim(
    s: &yizhan_app::AppState,
    login: &str,
    name: &str,
    welcome: bool,
) -> yizhan_core::Result<Claim> {
    if let Some(u) = s.identity.find_by_login(login).await? {
        return Ok(if s.identity.check_password(&u.user_id, DEMO_PASSWORD).await? {
            Claim::There(u.user_id)
        } else {
            Claim::Taken
        });
    }
    let registered = if welcome {
        yizhan_identity_web::register_with_welcome(&s.identity, &s.notify, login, DEMO_PASSWORD, name).await
    } else {
        s.identity.register(login, DEMO_PASSWORD, name).await
    };
    match registered {
        Ok(id) => Ok(Claim::Added(id)),
        // Held by an unproved sign-up or a deleted account: not ours either.
        Err(e) if e.code == yizhan_core::error::Code::AlreadyExists => Ok(Claim::Taken),
        Err(e) => Err(e),
    }
}

/// Verify a demo account's real name unless it already is; `false` when the
/// number is held by another account (the demo account stays unverified).
async fn verify_demo(s: &yizhan_app::AppState, user_id: &str, name: &str, number: &str) -> yizhan_core::Result<bool> {
    if s.identity.profile(user_id).await?.verification_level > 0 {
        return Ok(true);
    }
    match s.identity.verify_real_name(user_id, name, number).await {
        Ok(_) => Ok(true),
        Err(e) if e.code == yizhan_identity::codes::BOUND_ELSEWHERE => Ok(false),
        Err(e) => Err(e),
    }
}

/// Lines of the closing report: what was added, what was already there.
#[derive(Default)]
pub(crate) struct Report {
    added: Vec<String>,
    there: Vec<String>,
    skipped: Vec<String>,
}

impl Report {
    pub(crate) fn login(&mut self, login: &str, c: &Claim) {
        match c {
            Claim::Added(_) => self.added.push(format!("login {login}")),
            Claim::There(_) => self.there.push(format!("login {login}")),
            Claim::Taken => self.skipped.push(format!("login {login}: another account holds it, left alone")),
        }
    }
}

pub async fn run(data: &DataOpts) -> anyhow::Result<()> {
    let built = app::build(data, false).await?;
    let s = &built.state;
    let err = |e: yizhan_core::Error| anyhow::anyhow!("{e}");
    let steps = 3 + ORGS.len() + PEOPLE.len();
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    bar.set_message("administrator");
    let admin_login = "admin@demo.yizhan.local";
    let mut report = Report::default();
    let admin_was = s.identity.find_by_login(admin_login).await.map_err(err)?.is_some();
    // The first step: refused here (the login is another account's), nothing has changed yet.
    let admin_id = s.identity.ensure_admin(admin_login, DEMO_PASSWORD, "Demo Administrator").await.map_err(|e| {
        anyhow::anyhow!("{e}: {admin_login} belongs to another account on this data directory; nothing was added")
    })?;
    if admin_was {
        report.there.push(format!("administrator {admin_login}"));
    } else {
        report.added.push(format!("administrator {admin_login}"));
    }
    let admin = Principal { user_id: admin_id, name: "Demo Administrator".into(), is_admin: true };
    bar.inc(1);

    bar.set_message("city");
    let services = ["wallet", "city", "health", "shopping", "live", "mobility", "credit"].map(String::from).to_vec();
    let city = match s.identity.list_cities().await.map_err(err)?.into_iter().find(|c| c.name == "Hangzhou 杭州") {
        Some(c) => {
            report.there.push(format!("city {}", c.name));
            c
        }
        None => {
            report.added.push("city Hangzhou 杭州".into());
            s.identity.create_city(&admin, "Hangzhou 杭州", services).await.map_err(err)?
        }
    };
    bar.inc(1);

    let mut org_ids = Vec::new();
    for (name, kind) in ORGS {
        bar.set_message(*name);
        let existing = s.identity.list_orgs(Some(&city.id)).await.map_err(err)?.into_iter().find(|o| o.name == *name);
        let org = match existing {
            Some(o) => {
                report.there.push(format!("organisation {name}"));
                o
            }
            None => {
                report.added.push(format!("organisation {name}"));
                s.identity.create_org(&admin, &city.id, *kind, name).await.map_err(err)?
            }
        };
        org_ids.push((*name, org.id));
        bar.inc(1);
    }

    // Demo people who are ours (user id, real name verified with the demo number).
    let mut ours: Vec<(&Person, String, bool)> = Vec::new();
    for p in PEOPLE {
        bar.set_message(p.login);
        let c = claim(s, p.login, p.name, true).await.map_err(err)?;
        report.login(p.login, &c);
        let Some(user_id) = c.user_id().map(str::to_string) else {
            bar.inc(1);
            continue;
        };
        s.identity.set_home_city(&user_id, &city.id).await.map_err(err)?;
        let mut verified = false;
        if let Some(number) = p.id_number {
            verified = verify_demo(s, &user_id, p.name, number).await.map_err(err)?;
            if !verified {
                report.skipped.push(format!("{}: identity number held by another account, left unverified", p.login));
            }
        }
        ours.push((p, user_id.clone(), verified));
        if let Some((org_name, role)) = p.staff_of {
            if let Some((_, org_id)) = org_ids.iter().find(|(n, _)| *n == org_name) {
                let members = s.identity.list_members(&admin, org_id).await.map_err(err)?;
                if !members.iter().any(|m| m.user_id == user_id) {
                    s.identity.add_member(&admin, org_id, &user_id, role).await.map_err(err)?;
                }
            }
        }
        bar.inc(1);
    }

    bar.set_message("wallets and bills");
    let mut residents = Vec::new();
    for (p, user_id, verified) in ours.iter().filter(|(p, _, _)| p.staff_of.is_none()) {
        let fen = if *verified { DEMO_TOPUP_FEN } else { DEMO_UNVERIFIED_TOPUP_FEN };
        s.pay.topup(user_id, fen, None, DEMO_TOPUP_KEY).await.map_err(err)?;
        if *verified {
            residents.push((*p, user_id.clone()));
        }
    }
    // Bills go to the verified resident (by identity number, or by the plate of the car bound to them with its registration).
    if let Some((person, user_id)) = residents.iter().find(|(p, _)| p.id_number.is_some()) {
        // Bound with proof: the sandbox verifier's documented valid registration certificate.
        let certificate = yizhan_identity::verifier::sandbox::VALID_CERTIFICATE;
        let plate_ours = match s.identity.bind_vehicle(user_id, DEMO_PLATE, certificate).await {
            Ok(_) => true,
            Err(e) if e.code == yizhan_identity::codes::BOUND_ELSEWHERE => {
                report.skipped.push(format!("plate {DEMO_PLATE}: bound to another account, no bill by plate"));
                false
            }
            Err(e) => return Err(err(e)),
        };
        let existing = s.pay.bills(user_id).await.map_err(err)?;
        for (n, (org_name, kind, fen, description, due_days, by_plate)) in BILLS.iter().enumerate() {
            let Some((_, org_id)) = org_ids.iter().find(|(n, _)| n == org_name) else { continue };
            if existing.iter().any(|b| &b.org_id == org_id && b.description == *description) {
                continue;
            }
            if *by_plate && !plate_ours {
                continue;
            }
            let to = match (by_plate, person.id_number) {
                (true, _) | (false, None) => BillTo::Plate(DEMO_PLATE.into()),
                (false, Some(n)) => BillTo::IdNumber(n.into()),
            };
            let spec = BillSpec {
                to,
                kind: *kind,
                amount_fen: *fen,
                due_at_ms: s.ctx.now_ms() + due_days * DAY_MS,
                description: description.to_string(),
            };
            s.pay.issue_bill(&admin, org_id, spec, &format!("demo-bill-{n}")).await.map_err(err)?;
        }
    }
    bar.inc(1);
    bar.set_message("credit scores");
    let credit_people = credit_demo(s, &admin, &org_ids, &mut report).await.map_err(err)?;
    bar.finish_with_message("done");

    println!("\nDemo city: {} ({})", city.name, city.id);
    println!("Every demo login has the password: {DEMO_PASSWORD}\n");
    println!("  {admin_login:<32} platform administrator");
    for (p, _, _) in &ours {
        let role = match p.staff_of {
            Some((org, Role::Admin)) => format!("admin of {org}"),
            Some((org, Role::Operator)) => format!("staff of {org}"),
            None => "resident".to_string(),
        };
        println!("  {:<32} {} — {}", p.login, p.name, role);
    }
    for (login, what) in &credit_people {
        println!("  {login:<32} credit score: {what}");
    }
    println!(
        "\nResidents' wallets hold {} yuan each, {} if not verified (sandbox money).",
        yizhan_core::money::yuan(DEMO_TOPUP_FEN),
        yizhan_core::money::yuan(DEMO_UNVERIFIED_TOPUP_FEN)
    );
    crate::demo_city::run(&built, &admin, &mut report).await?;
    println!("\nAdded: {}", if report.added.is_empty() { "nothing".into() } else { report.added.join(", ") });
    println!("Already there: {}", if report.there.is_empty() { "nothing".into() } else { report.there.join(", ") });
    for line in &report.skipped {
        println!("Skipped: {line}");
    }
    Ok(())
}

/// The credit demo resident with a pay-later line in use and a statement.
const PAY_LATER_LOGIN: &str = "credit-paylater@demo.yizhan.local";
/// The water bill that resident paid on the line (an empty wallet).
const PAY_LATER_BILL_FEN: i64 = 12_800;

/// The pay-later resident switches the line on, pays a water bill with it
/// (the wallet is empty) and gets the statement at once. Running it again
/// pays nothing twice and makes no second statement.
async fn pay_later_demo(
    s: &yizhan_app::AppState,
    admin: &Principal,
    water: &str,
    user_id: &str,
    report: &mut Report,
) -> yizhan_core::Result<()> {
    let f = "33010619850101003";
    let view = s.credit.pay_later(user_id).await?;
    if !view.has_perk {
        report.skipped.push(format!("{PAY_LATER_LOGIN}: the score does not reach the pay-later perk"));
        return Ok(());
    }
    if !view.on {
        s.credit.switch_pay_later(user_id, true).await?;
    }
    let description = "Water on pay-later 先用后付水费";
    let bill = match s.pay.bills(user_id).await?.into_iter().find(|b| b.description == description) {
        Some(b) => b,
        None => {
            let spec = BillSpec {
                to: BillTo::IdNumber(format!("{f}{}", yizhan_identity::types::id_check_char(f).unwrap_or('0'))),
                kind: BillKind::Water,
                amount_fen: PAY_LATER_BILL_FEN,
                due_at_ms: s.ctx.now_ms() + 14 * DAY_MS,
                description: description.to_string(),
            };
            s.pay.issue_bill(admin, water, spec, "demo-paylater-bill").await?
        }
    };
    s.pay.pay_bill(user_id, &bill.id, "demo-paylater-pay").await?;
    s.pay.pay_later_statement_now(user_id).await?;
    Ok(())
}

/// Credit demo residents: (login, real-name number or none, records as (kind, outcome, days late, ref)).
#[allow(clippy::type_complexity)]
const CREDIT_PEOPLE: &[(&str, &str, Option<&str>, &[(yizhan_credit::Kind, yizhan_credit::Outcome, i64)])] = {
    use yizhan_credit::Kind::{Bill, Booking};
    use yizhan_credit::Outcome::{Kept, Late, OnTime};
    &[
        (
            "credit-fair@demo.yizhan.local",
            "Zhou Min 周敏",
            None,
            &[(Bill, Late, 45), (Bill, Late, 3), (Bill, OnTime, 0)],
        ),
        ("credit-good@demo.yizhan.local", "Wu Lei 吴磊", None, &[(Bill, OnTime, 0), (Bill, Late, 40)]),
        (
            "credit-verygood@demo.yizhan.local",
            "Zheng Yu 郑宇",
            None,
            &[(Bill, OnTime, 0), (Bill, OnTime, 0), (Bill, OnTime, 0), (Booking, Kept, 0)],
        ),
        (
            "credit-excellent@demo.yizhan.local",
            "Sun Li 孙丽",
            Some("33010619850101001"),
            &[
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Booking, Kept, 0),
                (Booking, Kept, 0),
                (Booking, Kept, 0),
            ],
        ),
        ("credit-defaulter@demo.yizhan.local", "Qian Gang 钱刚", Some("33010619850101002"), &[(Bill, OnTime, 0)]),
        (
            PAY_LATER_LOGIN,
            "Lin Hui 林慧",
            Some("33010619850101003"),
            &[
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Bill, OnTime, 0),
                (Booking, Kept, 0),
                (Booking, Kept, 0),
                (Booking, Kept, 0),
            ],
        ),
    ]
};

/// Residents across every band: each opted in with records from the water
/// company; the "good" one contests a late bill, the defaulter is on the
/// court's list. Running it again changes nothing.
async fn credit_demo(
    s: &yizhan_app::AppState,
    admin: &Principal,
    org_ids: &[(&str, String)],
    report: &mut Report,
) -> yizhan_core::Result<Vec<(String, String)>> {
    let water = org_ids.iter().find(|(n, _)| n.starts_with("Hangzhou Water")).map(|(_, id)| id.clone());
    let court = org_ids.iter().find(|(n, _)| n.contains("Court")).map(|(_, id)| id.clone());
    let (Some(water), Some(court)) = (water, court) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut listed = Vec::new();
    for (login, name, first17, records) in CREDIT_PEOPLE {
        let c = claim(s, login, name, false).await?;
        report.login(login, &c);
        let Some(user_id) = c.user_id().map(str::to_string) else { continue };
        if let Some(f) = first17 {
            let number = format!("{f}{}", yizhan_identity::types::id_check_char(f).unwrap_or('0'));
            let verified = verify_demo(s, &user_id, name, &number).await?;
            if !verified {
                report.skipped.push(format!("{login}: identity number held by another account, left unverified"));
            } else if login.contains("defaulter") {
                listed.push(format!("{number},(2026)浙01执123号"));
            }
        }
        s.credit.opt_in(&user_id).await?;
        for (n, (kind, outcome, days_late)) in records.iter().enumerate() {
            let rid = s
                .credit
                .record_event(yizhan_credit::NewRecord {
                    user_id: user_id.clone(),
                    kind: *kind,
                    outcome: *outcome,
                    days_late: *days_late,
                    occurred_at_ms: s.ctx.now_ms() - DAY_MS,
                    source: "demo".into(),
                    source_org_id: Some(water.clone()),
                    source_ref: format!("demo-{n}"),
                })
                .await?;
            // The good resident contests the late bill (once): frozen while the water company reviews it.
            if login.contains("-good@") && *days_late == 40 {
                if let Some(rid) = rid {
                    let _ = s
                        .credit
                        .contest(&user_id, &rid, "Paid at the counter before the due date 已在到期前于窗口缴纳")
                        .await;
                }
            }
        }
        out.push((login.to_string(), user_id));
    }
    if !listed.is_empty() {
        s.credit.upload_defaulters(admin, &court, &listed.join("\n")).await?;
    }
    if let Some((_, user_id)) = out.iter().find(|(l, _)| l == PAY_LATER_LOGIN) {
        pay_later_demo(s, admin, &water, user_id, report).await?;
    }
    let mut shown = Vec::new();
    for (login, user_id) in out {
        let v = s.credit.score(&user_id).await?;
        shown.push((login, format!("{} ({})", v.score, v.band)));
    }
    Ok(shown)
}
