#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{id_number, world, PASSWORD};
use yizhan_core::{Code, Engine};
use yizhan_identity::IdNumber;

#[test]
fn gb_11643_numbers_are_checked() {
    // Published example.
    assert!(IdNumber::parse("11010519491231002X").is_ok());
    // Numbers computed from the standard: every check character occurs, X included.
    let mut checks = std::collections::BTreeSet::new();
    for seq in 0..200 {
        let n = id_number("330106", "19900307", &format!("{seq:03}"));
        let parsed = IdNumber::parse(&n).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(parsed.expose(), n);
        checks.insert(n.chars().last().unwrap());
    }
    assert_eq!(checks.len(), 11, "{checks:?}");

    let good = id_number("330106", "19900307", "123");
    // Every other check character is refused.
    for c in "0123456789X".chars().filter(|c| !good.ends_with(*c)) {
        let bad = format!("{}{c}", &good[..17]);
        let e = IdNumber::parse(&bad).unwrap_err();
        assert_eq!(e.fields[0].field, "id_number", "{bad}");
    }
    // One changed digit breaks the checksum.
    let mut changed: Vec<char> = good.chars().collect();
    changed[16] = if changed[16] == '9' { '8' } else { '9' };
    assert!(IdNumber::parse(&changed.iter().collect::<String>()).is_err());

    // Valid checksums around invalid birth dates and regions are still refused.
    for bad in [
        id_number("330106", "19900230", "123"), // 30 February
        id_number("330106", "19001301", "123"), // month 13
        id_number("330106", "18991231", "123"), // before 1900
        id_number("330106", "21010101", "123"), // after 2100
        id_number("030106", "19900307", "123"), // region starts with 0
    ] {
        assert!(IdNumber::parse(&bad).is_err(), "{bad}");
    }
    assert!(IdNumber::parse(&id_number("330106", "20000229", "123")).is_ok(), "leap day");
    assert!(IdNumber::parse(&id_number("330106", "19000228", "123")).is_ok());
    for bad in ["", "123", "11010519491231002", "11010519491231002XX", "1101051949123100２X", "A1010519491231002X"] {
        assert!(IdNumber::parse(bad).is_err(), "{bad}");
    }
    // Lowercase x, spaces around.
    assert_eq!(IdNumber::parse(" 11010519491231002x ").unwrap().expose(), "11010519491231002X");
}

#[test]
fn identity_numbers_show_masked() {
    let n = IdNumber::parse(&id_number("330106", "19900307", "123")).unwrap();
    let masked = n.masked();
    assert_eq!(masked.len(), 18);
    assert_eq!(&masked[..4], "3301");
    assert_eq!(&masked[4..14], "**********");
    assert_eq!(&masked[14..], &n.expose()[14..]);
    assert_eq!(IdNumber::parse("11010519491231002X").unwrap().masked(), "1101**********002X");
    let debug = format!("{n:?} {:?}", Some(&n));
    assert!(!debug.contains(n.expose()), "{debug}");
    assert!(debug.contains(&masked));
}

/// Every text a table holds, cell by cell.
async fn all_cells(db: &yizhan_core::Db, table: &str, columns: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for c in columns {
        let rows: Vec<(Option<String>,)> =
            sqlx::query_as(&format!("SELECT CAST({c} AS TEXT) FROM {table}")).fetch_all(&db.pool).await.unwrap();
        out.extend(rows.into_iter().filter_map(|r| r.0));
    }
    out
}

const USER_COLUMNS: &[&str] = &[
    "id",
    "login",
    "name",
    "password_hash",
    "is_admin",
    "verification_level",
    "real_name",
    "id_cipher",
    "id_index",
    "id_masked",
    "home_city_id",
    "verified_by",
    "verified_at_ms",
    "created_at_ms",
    "deleted_at_ms",
];

#[tokio::test]
async fn verifying_a_real_name_stores_the_number_only_sealed() {
    let w = world().await;
    let user = w.id.register("13812345678", PASSWORD, "Xiao Ming").await.unwrap();
    let number = id_number("330106", "19900307", "123");
    let p = w.id.verify_real_name(&user, " 王小明 ", &number.to_lowercase()).await.unwrap();
    assert_eq!(p.verification_level, 1);
    assert_eq!(p.real_name.as_deref(), Some("王小明"));
    assert_eq!(p.id_number_masked.as_deref(), Some(format!("3301**********{}", &number[14..]).as_str()));
    assert_eq!(p.name, "Xiao Ming", "the display name stays");
    assert_eq!(w.id.reveal_own_id_number(&user).await.unwrap(), number);

    // Nothing in the database holds the clear number, nor its birth-date-bearing middle.
    let cells = all_cells(&w.t.db, "users", USER_COLUMNS).await;
    assert!(!cells.is_empty());
    for cell in &cells {
        assert!(!cell.contains(&number), "clear number in users: {cell}");
        assert!(!cell.contains(&number[4..14]), "unmasked digits in users: {cell}");
    }
    if w.t.db.engine() == Engine::Sqlite {
        // Down to the bytes on disk (database and write-ahead log).
        let path = w.t.db.url().trim_start_matches("sqlite://").to_string();
        for file in [path.clone(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                let found = bytes.windows(number.len()).any(|win| win == number.as_bytes());
                assert!(!found, "clear number in {file}");
            }
        }
    }

    // Found again through the blind index, however it is typed.
    let r = w.id.find_by_id_number(&number.to_lowercase()).await.unwrap().unwrap();
    assert_eq!(r.user_id, user);
    assert_eq!(r.login_masked, "138****5678");
    assert_eq!(w.id.find_by_id_number(&id_number("330106", "19900307", "124")).await.unwrap(), None);
    assert_eq!(w.id.find_by_id_number("123").await.unwrap_err().fields[0].field, "id_number");

    // Verifying again with the same number is fine; with another it is not.
    w.id.verify_real_name(&user, "王小明", &number).await.unwrap();
    let e = w.id.verify_real_name(&user, "王小明", &id_number("330106", "19900307", "999")).await.unwrap_err();
    assert_eq!(e.code, Code::Conflict);
    assert_eq!(e.msg.key, "identity.id_number.other_on_account");
}

#[tokio::test]
async fn one_number_belongs_to_one_account() {
    let w = world().await;
    let a = w.id.register("a@example.com", PASSWORD, "A").await.unwrap();
    let b = w.id.register("b@example.com", PASSWORD, "B").await.unwrap();
    w.id.verify_real_name(&a, "张三", "11010519491231002X").await.unwrap();
    // The verifier matched B too (the sandbox matches any name but its test
    // names): B hears it is bound elsewhere, and may open a dispute.
    let e = w.id.verify_real_name(&b, "张三", "11010519491231002x").await.unwrap_err();
    assert_eq!(e.code, yizhan_identity::codes::BOUND_ELSEWHERE);
    assert_eq!(e.msg.key, "identity.id_number.bound_elsewhere");
    assert_eq!(e.fields[0].msg.key, "identity.id_number.bound_elsewhere");
    let p = w.id.profile(&b).await.unwrap();
    assert_eq!((p.verification_level, p.real_name, p.id_number_masked), (0, None, None));
    assert_eq!(w.id.reveal_own_id_number(&b).await.unwrap_err().code, Code::NotFound);
}

#[tokio::test]
async fn bad_real_name_input_is_refused_field_by_field() {
    let w = world().await;
    let a = w.id.register("a@example.com", PASSWORD, "A").await.unwrap();
    let e = w.id.verify_real_name(&a, "", "110105194912310021").await.unwrap_err();
    let fields: Vec<&str> = e.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, vec!["name", "id_number"]);
    // A birth date after today (the test clock is at 2026-11-29).
    let future = id_number("330106", "20270101", "123");
    let e = w.id.verify_real_name(&a, "张三", &future).await.unwrap_err();
    assert_eq!(e.fields[0].field, "id_number");
    assert_eq!(e.fields[0].msg.key, "identity.id_number.birth_in_future");
    assert_eq!(e.msg.key, "identity.id_number.birth_in_future");
    // The message never carries the number.
    assert!(e.msg.args.is_empty() && e.fields[0].msg.args.is_empty(), "{e}");
    assert_eq!(w.id.profile(&a).await.unwrap().verification_level, 0);
    assert_eq!(w.id.verify_real_name("nobody", "张三", "11010519491231002X").await.unwrap_err().code, Code::NotFound);
}

#[tokio::test]
async fn sealed_numbers_are_bound_to_their_owner() {
    let w = world().await;
    let a = w.id.register("a@example.com", PASSWORD, "A").await.unwrap();
    let b = w.id.register("b@example.com", PASSWORD, "B").await.unwrap();
    w.id.verify_real_name(&a, "张三", "11010519491231002X").await.unwrap();
    // Copying A's sealed number onto B's row does not make it B's: it no longer opens.
    let (sealed,): (String,) =
        sqlx::query_as("SELECT id_cipher FROM users WHERE id = $1").bind(&a).fetch_one(&w.t.db.pool).await.unwrap();
    sqlx::query("UPDATE users SET id_cipher = $1 WHERE id = $2")
        .bind(&sealed)
        .bind(&b)
        .execute(&w.t.db.pool)
        .await
        .unwrap();
    assert_eq!(w.id.reveal_own_id_number(&b).await.unwrap_err().code, Code::Internal);
}
