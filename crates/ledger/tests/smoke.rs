use yizhan_core::testing::TestDb;
use yizhan_ledger::{Ledger, TransferSpec, MIGRATIONS};

#[tokio::test]
async fn smoke() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _clock) = t.ctx();
    let l = Ledger::start(ctx);
    l.open_account("gw", "gateway", true).await.unwrap();
    l.open_account("w1", "wallet", false).await.unwrap();
    l.open_account("w2", "wallet", false).await.unwrap();
    l.transfer(TransferSpec::new("gw", "w1", 1000, "topup")).await.unwrap();
    let t1 = l.transfer(TransferSpec::new("w1", "w2", 300, "p2p")).await.unwrap();
    assert_eq!(t1.seq, 2);
    let e = l.transfer(TransferSpec::new("w1", "w2", 800, "p2p")).await.unwrap_err();
    assert_eq!(e.code, yizhan_core::Code::InsufficientFunds);
    let h = l.transfer(TransferSpec::new("w1", "w2", 500, "hold").pending(Some(1000))).await.unwrap();
    assert_eq!(l.balance("w1").await.unwrap().available_fen, 200);
    l.post_pending(&h.id, Some(100), None).await.unwrap();
    assert_eq!(l.balance("w1").await.unwrap().available_fen, 600);
    let r = l.check().await.unwrap();
    assert!(r.is_clean(), "{r:?}");
    let p = l.history("w1", None, 10).await.unwrap();
    assert_eq!(p.items.len(), 4);
}
