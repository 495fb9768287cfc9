//! Bills and fines: the list and paying one.

use super::*;

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .route("/bills", get(bills_page))
        .route("/bills/{id}", get(|| async { Redirect::to("/bills") }))
        .route("/bills/{id}/pay", post(bill_pay))
}

// ---- bills ----

pub struct BillRow {
    pub bill: yizhan_pay::Bill,
    pub kind_label: String,
    pub key: String,
}

#[derive(Template)]
#[template(path = "bills.html")]
pub(crate) struct BillsPage {
    l: Layout,
    rows: Vec<BillRow>,
    receipt: Option<yizhan_pay::BillReceipt>,
}

pub(crate) async fn bills_render(
    s: &WalletRoom,
    l: Layout,
    p: &Principal,
    status: StatusCode,
    receipt: Option<yizhan_pay::BillReceipt>,
) -> Response {
    match s.pay.bills(&p.user_id).await {
        Ok(list) => {
            let rows = list
                .into_iter()
                .map(|bill| BillRow { kind_label: category_label(l.lang, bill.kind.as_str()), bill, key: form_key() })
                .collect();
            render_status(status, &BillsPage { l, rows, receipt })
        }
        Err(e) => failure_page(l.lang, &e),
    }
}

pub(crate) async fn bills_page(State(s): State<WalletRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/bills", &p).await;
    bills_render(&s, l, &p, StatusCode::OK, None).await
}

pub(crate) async fn bill_pay(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/bills", &p).await;
    let (pay, user, bill, idem) = (s.pay.clone(), p.user_id.clone(), id.clone(), form.get("idem").to_string());
    match to_completion(async move { pay.pay_bill(&user, &bill, &idem).await }).await {
        Ok(rc) => {
            let msg = say(
                lang,
                Msg::new("bills.paid_msg").fen("amount", rc.amount_fen).text("payee", rc.payee_org_name.clone()),
            );
            bills_render(&s, l.ok(&msg), &p, StatusCode::OK, Some(rc)).await
        }
        Err(e) => {
            let (l, status) = failed(l, e);
            bills_render(&s, l, &p, status, None).await
        }
    }
}
