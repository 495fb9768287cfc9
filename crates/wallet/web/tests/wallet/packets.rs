//! Red packets on the pages: the inbox notice opens the packet, `/red-packets`
//! lists what I sent and what I received (a personal packet still to open
//! first), the group link is absolute, and opening redirects (post/redirect/get).

use crate::common::*;
use crate::{funded, key};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn received_packets_are_listed_linked_from_the_inbox_and_opened_once() {
    let app = spawn_app().await;
    let (_, a) = funded(&app, "rp-sender@example.org", "Sender Ann", 10_000).await;
    let (_, b) = app.user("rp-friend@example.org", "Friend Bo").await;
    let personal = app
        .pay("/api/v1/red-packets", &a, &key(), json!({"count": 1, "to": "rp-friend@example.org", "amount": 888}))
        .await;
    assert_eq!(personal.status, StatusCode::CREATED, "{}", personal.text);
    let pid = personal.body["id"].as_str().unwrap().to_string();
    let group = app.pay("/api/v1/red-packets", &a, &key(), json!({"count": 3, "amount": 300, "mode": "fixed"})).await;
    let gid = group.body["id"].as_str().unwrap().to_string();

    // The friend's inbox links the notice to the packet.
    let cb = format!("yz_session={b}");
    let inbox = page(&app, "/inbox", &cb, "en").await;
    assert!(inbox.text.contains(&format!("href=\"/red-packets/{pid}\"")), "{}", inbox.text);
    // Their list has it waiting to be opened.
    let list = page(&app, "/red-packets", &cb, "en").await;
    assert!(list.text.contains(&format!("id=\"received-{pid}\"")), "{}", list.text);
    assert!(list.text.contains("Sender Ann") && list.text.contains("id=\"packets-sent-empty\""), "{}", list.text);

    // Opening redirects to the packet, which says what I got; the list shows the share.
    let csrf = session_csrf(&app, &cb).await;
    let r = form(&app, &format!("/red-packets/{pid}/claim"), &cb, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let p = page(&app, r.headers.get("location").unwrap().to_str().unwrap(), &cb, "zh-CN").await;
    assert!(p.text.contains("你抢到了 ¥8.88"), "{}", p.text);
    let r = form(&app, &format!("/red-packets/{gid}/claim"), &cb, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let list = page(&app, "/red-packets", &cb, "en").await;
    assert!(list.text.contains("+¥8.88") && list.text.contains("+¥1.00"), "{}", list.text);

    // The sender sees both sent, the group one with its shares; its link is absolute, with copy and share.
    let ca = format!("yz_session={a}");
    let list = page(&app, "/red-packets", &ca, "en").await;
    assert!(list.text.contains(&format!("id=\"sent-{pid}\"")) && list.text.contains(&format!("id=\"sent-{gid}\"")));
    assert!(list.text.contains("Group · 3") && list.text.contains("Friend Bo"), "{}", list.text);
    let req = Request::get(format!("/red-packets/{gid}"))
        .header("cookie", &ca)
        .header("host", "yizhan.example:8080")
        .body(Body::empty())
        .unwrap();
    let p = app.request(req).await;
    assert!(
        p.text.contains(&format!("id=\"packet-link\">http://yizhan.example:8080/red-packets/{gid}<")),
        "{}",
        p.text
    );
    assert!(p.text.contains("data-copy=") && p.text.contains("data-share="), "{}", p.text);
    // A host header that is not a host name is not echoed.
    let req = Request::get(format!("/red-packets/{gid}"))
        .header("cookie", &ca)
        .header("host", "evil\"><script>")
        .body(Body::empty())
        .unwrap();
    let p = app.request(req).await;
    assert!(p.text.contains(&format!("id=\"packet-link\">/red-packets/{gid}<")), "{}", p.text);
}
