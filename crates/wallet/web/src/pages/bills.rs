//! Bills and fines: the list and paying one (a confirmation screen first,
//! with the payment PIN when one is set; paid, the transfer's page).

use super::confirm::{confirm_page, confirming, done, pin_checked, Confirmation};
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
}

pub(crate) async fn bills_render(s: &WalletRoom, l: Layout, p: &Principal, status: StatusCode) -> Response {
    match s.pay.bills(&p.user_id).await {
        Ok(list) => {
            let rows = list
                .into_iter()
                .map(|bill| BillRow { kind_label: category_label(l.lang, bill.kind.as_str()), bill, key: form_key() })
                .collect();
            render_status(status, &BillsPage { l, rows })
        }
        Err(e) => failure_page(l.lang, &e),
    }
}

pub(crate) async fn bills_page(State(s): State<WalletRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/bills", &p).await;
    bills_render(&s, l, &p, StatusCode::OK).await
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
    if !confirming(&form) {
        return match s.pay.preview_bill(&p.user_id, &id).await {
            Ok(v) => {
                let amount = v.amount_fen.unwrap_or_default();
                let fields = vec![("idem", form.get("idem").to_string())];
                let action = format!("/bills/{id}/pay");
                confirm_page(l, "bills.title", &action, fields, Confirmation::payment(v, amount), "/bills")
            }
            Err(e) => {
                let (l, status) = failed(l, e);
                bills_render(&s, l, &p, status).await
            }
        };
    }
    let r = async {
        pin_checked(&s, &p.user_id, &form).await?;
        let (pay, user, bill, idem) = (s.pay.clone(), p.user_id.clone(), id.clone(), form.get("idem").to_string());
        to_completion(async move { pay.pay_bill(&user, &bill, &idem).await }).await
    }
    .await;
    match r {
        Ok(rc) => done(&rc.transfer_id),
        Err(e) => {
            let (l, status) = failed(l, e);
            bills_render(&s, l, &p, status).await
        }
    }
}
