#![allow(clippy::unwrap_used)]
//! Random sequences of payments, holds, posts, voids, linked groups and
//! expiries, submitted in concurrent groups (so they share batches), agree
//! with a plain sequential model and keep every invariant.

use proptest::prelude::*;
use yizhan_core::testing::TestDb;
use yizhan_core::{Code, Fen};
use yizhan_ledger::{Ledger, LedgerConfig, Transfer, TransferSpec, MIGRATIONS};

/// 0 may go negative; 1..=3 wallets; 4 a merchant; 5 was never opened.
const ACCOUNTS: [&str; 6] = ["gateway", "wallet:1", "wallet:2", "wallet:3", "org:m", "wallet:ghost"];
const OPENED: usize = 5;
const START_FEN: i64 = 3_000;

#[derive(Debug, Clone)]
enum Op {
    Pay {
        from: usize,
        to: usize,
        amount: i64,
    },
    Hold {
        from: usize,
        to: usize,
        amount: i64,
        timeout_ms: Option<i64>,
    },
    Post {
        hold: usize,
        amount: Option<i64>,
    },
    Void {
        hold: usize,
    },
    Linked(Vec<(usize, usize, i64)>),
    Expire,
    /// Ends the concurrent group and moves the clock.
    Advance(i64),
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![12 => 1..2_500i64, 1 => Just(0i64), 1 => Just(Fen::MAX_AMOUNT + 1)]
}

fn account() -> impl Strategy<Value = usize> {
    prop_oneof![20 => 0..OPENED, 1 => Just(5usize)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (account(), account(), amount()).prop_map(|(from, to, amount)| Op::Pay { from, to, amount }),
        3 => (account(), account(), amount(), prop::option::of(1..5_000i64))
            .prop_map(|(from, to, amount, timeout_ms)| Op::Hold { from, to, amount, timeout_ms }),
        3 => (any::<usize>(), prop::option::of(prop_oneof![5 => 1..2_500i64, 1 => Just(0i64)]))
            .prop_map(|(hold, amount)| Op::Post { hold, amount }),
        2 => any::<usize>().prop_map(|hold| Op::Void { hold }),
        2 => prop::collection::vec((account(), account(), amount()), 1..4).prop_map(Op::Linked),
        1 => Just(Op::Expire),
        2 => (1..4_000i64).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Posted,
    Voided,
    Expired,
}

#[derive(Debug, Clone)]
struct MHold {
    from: usize,
    to: usize,
    amount: i64,
    expires_at_ms: Option<i64>,
    state: St,
}

/// (posted, pending_debit, pending_credit) per opened account.
#[derive(Debug, Clone)]
struct Model {
    bal: [(i64, i64, i64); OPENED],
    holds: Vec<MHold>,
    now: i64,
}

/// What one op returned, in comparable form.
#[derive(Debug, PartialEq, Eq)]
enum Res {
    Ok,
    Err(Code),
    Count(u64),
    Skip,
}

impl Model {
    fn spend(&mut self, from: usize, to: usize, amount: i64, pending: bool) -> Result<(), Code> {
        if Fen::amount(amount).is_err() {
            return Err(Code::ValidationFailed);
        }
        if from == to {
            return Err(yizhan_ledger::codes::SELF_PAYMENT);
        }
        if from >= OPENED || to >= OPENED {
            return Err(Code::NotFound);
        }
        let (posted, pd, _) = self.bal[from];
        if from != 0 && posted - pd - amount < 0 {
            return Err(yizhan_ledger::codes::INSUFFICIENT_FUNDS);
        }
        if pending {
            self.bal[from].1 += amount;
            self.bal[to].2 += amount;
        } else {
            self.bal[from].0 -= amount;
            self.bal[to].0 += amount;
        }
        Ok(())
    }

    fn release(&mut self, h: usize, posted: i64, state: St) {
        let (from, to, amount) = (self.holds[h].from, self.holds[h].to, self.holds[h].amount);
        self.bal[from].1 -= amount;
        self.bal[to].2 -= amount;
        self.bal[from].0 -= posted;
        self.bal[to].0 += posted;
        self.holds[h].state = state;
    }

    fn resolved_err(&self, h: usize) -> Option<Code> {
        match self.holds[h].state {
            St::Pending => None,
            St::Expired => Some(yizhan_ledger::codes::HOLD_EXPIRED),
            St::Posted | St::Voided => Some(yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED),
        }
    }

    fn apply(&mut self, op: &Op, hold: Option<usize>) -> Res {
        let r = |x: Result<(), Code>| match x {
            Ok(()) => Res::Ok,
            Err(c) => Res::Err(c),
        };
        match op {
            Op::Pay { from, to, amount } => r(self.spend(*from, *to, *amount, false)),
            Op::Hold { from, to, amount, timeout_ms } => {
                let res = self.spend(*from, *to, *amount, true);
                if res.is_ok() {
                    self.holds.push(MHold {
                        from: *from,
                        to: *to,
                        amount: *amount,
                        expires_at_ms: timeout_ms.map(|t| self.now + t),
                        state: St::Pending,
                    });
                }
                r(res)
            }
            Op::Post { amount, .. } => {
                let Some(h) = hold else { return Res::Skip };
                if amount.is_some_and(|a| Fen::amount(a).is_err()) {
                    return Res::Err(Code::ValidationFailed);
                }
                if let Some(c) = self.resolved_err(h) {
                    return Res::Err(c);
                }
                if self.holds[h].expires_at_ms.is_some_and(|e| e <= self.now) {
                    return Res::Err(yizhan_ledger::codes::HOLD_EXPIRED);
                }
                let a = amount.unwrap_or(self.holds[h].amount);
                if a > self.holds[h].amount {
                    return Res::Err(Code::ValidationFailed);
                }
                self.release(h, a, St::Posted);
                Res::Ok
            }
            Op::Void { .. } => {
                let Some(h) = hold else { return Res::Skip };
                if let Some(c) = self.resolved_err(h) {
                    return Res::Err(c);
                }
                self.release(h, 0, St::Voided);
                Res::Ok
            }
            Op::Linked(specs) => {
                let saved = self.clone();
                for (from, to, amount) in specs {
                    if let Err(c) = self.spend(*from, *to, *amount, false) {
                        *self = saved;
                        return Res::Err(c);
                    }
                }
                Res::Ok
            }
            Op::Expire => {
                let mut n = 0;
                for h in 0..self.holds.len() {
                    if self.holds[h].state == St::Pending && self.holds[h].expires_at_ms.is_some_and(|e| e <= self.now)
                    {
                        self.release(h, 0, St::Expired);
                        n += 1;
                    }
                }
                Res::Count(n)
            }
            Op::Advance(_) => Res::Skip,
        }
    }
}

fn res<T>(r: yizhan_core::Result<T>) -> Res {
    match r {
        Ok(_) => Res::Ok,
        Err(e) => Res::Err(e.code),
    }
}

/// Runs one op; holds made come back so later ops can name them.
async fn submit(l: &Ledger, op: &Op, hold_id: Option<&str>) -> (Res, Option<Transfer>) {
    let spec = |from: usize, to: usize, amount: i64, category: &str| {
        TransferSpec::new(ACCOUNTS[from], ACCOUNTS[to], amount, category)
    };
    match op {
        Op::Pay { from, to, amount } => (res(l.transfer(spec(*from, *to, *amount, "p2p")).await), None),
        Op::Hold { from, to, amount, timeout_ms } => {
            match l.transfer(spec(*from, *to, *amount, "hold").pending(*timeout_ms)).await {
                Ok(t) => (Res::Ok, Some(t)),
                Err(e) => (Res::Err(e.code), None),
            }
        }
        Op::Post { amount, .. } => match hold_id {
            Some(id) => (res(l.post_pending(id, *amount, None).await), None),
            None => (Res::Skip, None),
        },
        Op::Void { .. } => match hold_id {
            Some(id) => (res(l.void_pending(id, None).await), None),
            None => (Res::Skip, None),
        },
        Op::Linked(specs) => {
            let specs = specs.iter().map(|(f, t, a)| spec(*f, *t, *a, "p2p")).collect();
            (res(l.submit_linked(specs).await), None)
        }
        Op::Expire => match l.expire_due().await {
            Ok(n) => (Res::Count(n), None),
            Err(e) => (Res::Err(e.code), None),
        },
        Op::Advance(_) => (Res::Skip, None),
    }
}

async fn run_case(ops: Vec<Op>, pipeline: bool) {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, clock) = t.ctx();
    let l = Ledger::start_with(ctx.clone(), LedgerConfig { pipeline, ..LedgerConfig::default() });
    l.open_account(ACCOUNTS[0], "gateway", true).await.unwrap();
    for a in &ACCOUNTS[1..OPENED] {
        l.open_account(a, "wallet", false).await.unwrap();
    }
    let mut m = Model { bal: [(0, 0, 0); OPENED], holds: Vec::new(), now: ctx.now_ms() };
    for (w, wallet) in ACCOUNTS.iter().enumerate().take(4).skip(1) {
        l.transfer(TransferSpec::new(ACCOUNTS[0], *wallet, START_FEN, "topup")).await.unwrap();
        m.spend(0, w, START_FEN, false).unwrap();
    }
    let mut hold_ids: Vec<String> = Vec::new();

    // Split into groups at each Advance; a group goes in at once (in order:
    // join_all polls in order, and each call queues on its first poll).
    let mut groups: Vec<(Vec<Op>, i64)> = vec![(Vec::new(), 0)];
    for op in ops {
        if let Op::Advance(ms) = op {
            groups.push((Vec::new(), ms));
        } else if let Some(g) = groups.last_mut() {
            // Small groups keep join_all in its in-order mode.
            if g.0.len() >= 8 {
                groups.push((vec![op], 0));
            } else {
                g.0.push(op);
            }
        }
    }
    for (group, advance_ms) in groups {
        clock.advance_ms(advance_ms);
        m.now = ctx.now_ms();
        let known = hold_ids.len();
        let pick = |h: &usize| if known == 0 { None } else { Some(h % known) };
        let targets: Vec<Option<usize>> = group
            .iter()
            .map(|op| match op {
                Op::Post { hold, .. } | Op::Void { hold } => pick(hold),
                _ => None,
            })
            .collect();
        let futs = group.iter().zip(&targets).map(|(op, h)| submit(&l, op, h.map(|h| hold_ids[h].as_str())));
        let got = futures::future::join_all(futs).await;
        for ((op, h), (r, made)) in group.iter().zip(&targets).zip(got) {
            let want = m.apply(op, *h);
            assert_eq!(r, want, "op {op:?} (hold {h:?}) at {}", m.now);
            if let Some(t) = made {
                hold_ids.push(t.id);
            }
        }
        assert_eq!(hold_ids.len(), m.holds.len());
        for (i, a) in ACCOUNTS[..OPENED].iter().enumerate() {
            let b = l.balance(a).await.unwrap();
            assert_eq!((b.posted_fen, b.pending_debit_fen, b.pending_credit_fen), m.bal[i], "{a}");
        }
    }
    for (i, id) in hold_ids.iter().enumerate() {
        let st = l.hold(id).await.unwrap().state;
        let want = match m.holds[i].state {
            St::Pending => yizhan_ledger::HoldState::Pending,
            St::Posted => yizhan_ledger::HoldState::Posted,
            St::Voided => yizhan_ledger::HoldState::Voided,
            St::Expired => yizhan_ledger::HoldState::Expired,
        };
        assert_eq!(st, want, "hold {i}");
    }
    let report = l.check().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.mismatches);
    assert_eq!(report.open_pending, m.holds.iter().filter(|h| h.state == St::Pending).count() as u64);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_invariant(ops in prop::collection::vec(op(), 40), pipeline in any::<bool>()) {
        // Multi-thread: see tests/common on TestDb's drop under PostgreSQL.
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run_case(ops, pipeline));
    }
}
