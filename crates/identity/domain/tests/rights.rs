#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{world, PASSWORD};
use yizhan_core::Code;
use yizhan_identity::{OrgKind, Role};

#[tokio::test]
async fn export_holds_everything_including_the_full_number() {
    let w = world().await;
    let admin = w.admin().await;
    let city = w.id.create_city(&admin, "Hangzhou", vec!["bills".into()]).await.unwrap();
    let org = w.id.create_org(&admin, &city.id, OrgKind::Hospital, "Hospital").await.unwrap();
    let me = w.person("13812345678", "Chen").await;
    w.id.login("13812345678", PASSWORD, "1.1.1.1").await.unwrap();
    w.id.verify_real_name(&me.user_id, "陈小红", "11010519491231002X").await.unwrap();
    w.id.set_home_city(&me.user_id, &city.id).await.unwrap();
    w.id.add_member(&admin, &org.id, &me.user_id, Role::Operator).await.unwrap();

    let x = w.id.export(&me.user_id).await.unwrap();
    assert_eq!(x["profile"]["user_id"], me.user_id.as_str());
    assert_eq!(x["profile"]["login"], "13812345678");
    assert_eq!(x["profile"]["real_name"], "陈小红");
    assert_eq!(x["profile"]["home_city_name"], "Hangzhou");
    assert_eq!(x["id_number"], "11010519491231002X");
    assert_eq!(x["memberships"][0]["org_kind"], "hospital");
    assert_eq!(x["memberships"][0]["role"], "operator");
    assert_eq!(x["sessions_count"], 2);
    assert_eq!(x["active_sessions_count"], 2);
    let text = x.to_string();
    assert!(!text.contains("argon2"), "no password hash in the export");
    assert!(!text.contains("token_hash"));

    // A person without a real name exports null there.
    let other = w.person("b@example.com", "B").await;
    assert!(w.id.export(&other.user_id).await.unwrap()["id_number"].is_null());
}

#[tokio::test]
async fn deleting_an_account_erases_the_person_but_keeps_the_row_and_the_log() {
    let w = world().await;
    let admin = w.admin().await;
    let city = w.id.create_city(&admin, "Hangzhou", vec![]).await.unwrap();
    let org = w.id.create_org(&admin, &city.id, OrgKind::CityDepartment, "Bureau").await.unwrap();
    let me = w.person("13812345678", "Chen Xiaohong").await;
    let second = w.id.login("13812345678", PASSWORD, "1.1.1.1").await.unwrap();
    w.id.verify_real_name(&me.user_id, "陈小红", "11010519491231002X").await.unwrap();
    w.id.set_home_city(&me.user_id, &city.id).await.unwrap();
    w.id.add_member(&admin, &org.id, &me.user_id, Role::Admin).await.unwrap();
    let reader = w.person("clerk@example.com", "Clerk").await;
    w.id.add_member(&admin, &org.id, &reader.user_id, Role::Operator).await.unwrap();
    w.id.staff_read_profile(&reader, &org.id, &me.user_id, "permit", true).await.unwrap();
    assert_eq!(w.audit.count(&me.user_id).await.unwrap(), 1);

    w.clock.advance_ms(1000);
    w.id.delete_account(&me.user_id).await.unwrap();
    w.id.delete_account(&me.user_id).await.unwrap(); // twice is fine
    assert_eq!(w.id.delete_account("nobody").await.unwrap_err().code, Code::NotFound);

    // Sessions end; signing in fails like any wrong login.
    assert_eq!(w.id.authenticate(&second.token).await.unwrap_err().code, Code::Unauthorized);
    assert_eq!(w.id.login("13812345678", PASSWORD, "1.1.1.1").await.unwrap_err().code, Code::InvalidCredentials);
    assert_eq!(w.id.profile(&me.user_id).await.unwrap_err().code, Code::NotFound);
    assert_eq!(w.id.reveal_own_id_number(&me.user_id).await.unwrap_err().code, Code::NotFound);
    assert_eq!(w.id.find_by_login("13812345678").await.unwrap(), None);
    assert_eq!(w.id.find_by_id_number("11010519491231002X").await.unwrap(), None);
    // Staff can no longer read the person, nor act as staff.
    let e = w.id.staff_read_profile(&reader, &org.id, &me.user_id, "again", false).await.unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert!(w.id.memberships(&me.user_id).await.unwrap().is_empty());
    assert_eq!(w.id.list_members(&admin, &org.id).await.unwrap().len(), 1);

    // The row stays, with nothing personal left.
    #[allow(clippy::type_complexity)]
    let row: (
        String,
        String,
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT login, name, password_hash, is_admin, verification_level, real_name, id_cipher, id_index, id_masked,
                    home_city_id, deleted_at_ms FROM users WHERE id = $1",
    )
    .bind(&me.user_id)
    .fetch_one(&w.t.db.pool)
    .await
    .unwrap();
    assert_eq!(row.0, format!("deleted:{}", me.user_id));
    assert_eq!((row.1.as_str(), row.2.as_str(), row.3, row.4), ("", "", 0, 0));
    assert_eq!((row.5, row.6, row.7, row.8, row.9), (None, None, None, None, None));
    assert_eq!(row.10, Some(w.ctx.now_ms()));
    let r = w.id.user_ref(&me.user_id).await.unwrap();
    assert_eq!((r.name.as_str(), r.login_masked.as_str()), ("", "deleted"));

    // The access log is kept, and still verifies.
    assert_eq!(w.audit.count(&me.user_id).await.unwrap(), 1);
    assert!(w.audit.verify(&me.user_id).await.unwrap().ok);

    // The login and the identity number are free again.
    let again = w.id.register("13812345678", PASSWORD, "New Chen").await.unwrap();
    assert_ne!(again, me.user_id);
    w.id.verify_real_name(&again, "陈小红", "11010519491231002X").await.unwrap();
    assert_eq!(w.id.find_by_id_number("11010519491231002X").await.unwrap().unwrap().user_id, again);
}

#[tokio::test]
async fn a_deleted_admin_loses_every_power() {
    let w = world().await;
    let admin = w.admin().await;
    w.id.delete_account(&admin.user_id).await.unwrap();
    // A principal captured before the deletion would still say is_admin, but
    // no request can produce one: every request authenticates afresh.
    let e = w.id.login("admin@yizhan.example", common::PASSWORD, "1.1.1.1").await.unwrap_err();
    assert_eq!(e.code, Code::InvalidCredentials);
    // ensure_admin then makes a new account under that login.
    let fresh = w.id.ensure_admin("admin@yizhan.example", common::PASSWORD, "Admin").await.unwrap();
    assert_ne!(fresh, admin.user_id);
}
