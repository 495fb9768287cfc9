use yizhan_core::testing::TestDb;
use yizhan_core::MigrationSet;

static SET: MigrationSet = MigrationSet {
    domain: "coretest",
    sqlite: &[("0001", "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL, b BLOB)")],
    postgres: &[("0001", "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL, b BYTEA)")],
};

#[tokio::test]
async fn placeholders_types_and_migrations_work_on_the_engine() {
    let t = TestDb::new(&[&SET]).await;
    // Migrating twice is a no-op.
    t.db.migrate(&[&SET]).await.unwrap();
    let mut tx = t.db.begin().await.unwrap();
    sqlx::query("INSERT INTO t (id, n, b) VALUES ($1, $2, $3)")
        .bind("a")
        .bind(5_i64)
        .bind(vec![1u8, 2])
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (n, s): (i64, i64) = sqlx::query_as("SELECT n, CAST(SUM(n) AS BIGINT) FROM t WHERE id = $1 GROUP BY n")
        .bind("a")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!((n, s), (5, 5));
    // A rolled-back transaction leaves nothing.
    let mut tx = t.db.begin().await.unwrap();
    sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)").bind("b").bind(1_i64).execute(tx.conn()).await.unwrap();
    drop(tx);
    let (c,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&t.db.pool).await.unwrap();
    assert_eq!(c, 1);
}

/// Two processes on one database (the demo beside `serve`): a write
/// transaction that read first still writes when the other process wrote in
/// the meantime. On SQLite a deferred BEGIN would be refused at its first
/// write ("database is locked", no busy wait helps a stale snapshot); `begin`
/// takes the write lock up front, so the other process waits its turn.
#[tokio::test]
async fn a_write_transaction_that_read_first_is_not_refused_by_another_process() {
    let t = TestDb::new(&[&SET]).await;
    let other = yizhan_core::Db::connect(t.db.url()).await.unwrap();
    let mut tx = t.db.begin().await.unwrap();
    let (before,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(tx.conn()).await.unwrap();
    let mut writer = tokio::spawn(async move {
        let mut tx = other.begin().await?;
        sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)").bind("theirs").bind(1_i64).execute(tx.conn()).await?;
        tx.commit().await
    });
    // Give the other process the chance to commit in between (it does on
    // PostgreSQL; on SQLite it waits for the lock this transaction holds).
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut writer).await;
    sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)")
        .bind("mine")
        .bind(before + 1)
        .execute(tx.conn())
        .await
        .expect("the write after the read is not refused");
    tx.commit().await.unwrap();
    match early {
        Ok(done) => done.unwrap().unwrap(),
        Err(_) => writer.await.unwrap().unwrap(),
    }
    let (c,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&t.db.pool).await.unwrap();
    assert_eq!(c, before + 2);
}

#[tokio::test]
async fn a_second_process_with_another_vault_key_is_refused() {
    let t = TestDb::new(&[&SET]).await;
    let first = yizhan_core::Vault::random();
    // The first start records the key's fingerprint; later starts with it pass.
    first.check_against(&t.db, 1).await.unwrap();
    first.check_against(&t.db, 2).await.unwrap();
    // A process that generated its own key (another data directory) is refused.
    let other = yizhan_core::Vault::random();
    let e = other.check_against(&t.db, 3).await.unwrap_err();
    assert_eq!(e.code, yizhan_core::Code::Conflict);
    assert_eq!(e.msg.key, "error.vault.key_mismatch");
    // The recorded fingerprint is the first key's, and it is not the key.
    let (fp,): (String,) =
        sqlx::query_as("SELECT fingerprint FROM vault_fingerprint").fetch_one(&t.db.pool).await.unwrap();
    assert_eq!(fp, first.fingerprint());
    first.check_against(&t.db, 4).await.unwrap();
}

/// A rotation writes `secret.key.next` before it commits. Started again, a
/// data directory whose database took the new key finishes the move (the old
/// key becomes `secret.key.previous`, still good for checking MACs); one
/// whose rotation never committed drops the new key and keeps the old.
#[tokio::test]
async fn an_interrupted_rotation_is_finished_or_undone_at_start() {
    use yizhan_core::vault::{write_next_key, NEXT_KEY_FILE, PREVIOUS_KEY_FILE};
    use yizhan_core::Vault;
    let t = TestDb::new(&[&SET]).await;
    let dir = tempfile::tempdir().unwrap();
    let old = Vault::load_for(dir.path(), None, &t.db).await.unwrap();
    old.check_against(&t.db, 1).await.unwrap();
    let tag = old.mac("pay.qr.v1", b"user:u1:");

    // Not committed: the next key goes, the old one stays.
    let abandoned = Vault::generate();
    write_next_key(dir.path(), &abandoned).unwrap();
    let again = Vault::load_for(dir.path(), None, &t.db).await.unwrap();
    assert_eq!(again.fingerprint(), old.fingerprint());
    assert!(!dir.path().join(NEXT_KEY_FILE).exists());
    assert!(!again.has_previous());

    // Committed (the database records the new key), then a crash: the move is finished.
    let new = Vault::generate();
    write_next_key(dir.path(), &new).unwrap();
    let mut tx = t.db.begin().await.unwrap();
    old.hand_over(&mut tx, &new).await.unwrap();
    tx.commit().await.unwrap();
    let started = Vault::load_for(dir.path(), None, &t.db).await.unwrap();
    assert_eq!(started.fingerprint(), new.fingerprint());
    started.check_against(&t.db, 2).await.unwrap();
    assert!(dir.path().join(PREVIOUS_KEY_FILE).exists());
    assert!(started.has_previous());
    // Tokens made under the old key still check while it is kept, not forged ones.
    assert!(started.mac_matches("pay.qr.v1", b"user:u1:", &tag[..12]));
    assert!(!started.mac_matches("pay.qr.v1", b"user:u2:", &tag[..12]));
    assert!(!Vault::generate().mac_matches("pay.qr.v1", b"user:u1:", &tag[..12]));
    // A hand-over from a key that is no longer the database's is refused.
    let mut tx = t.db.begin().await.unwrap();
    assert!(old.hand_over(&mut tx, &Vault::generate()).await.is_err());
}

#[test]
fn a_key_written_out_reads_back_as_the_same_key() {
    let v = yizhan_core::Vault::generate();
    let back = yizhan_core::Vault::from_hex(&v.to_hex()).unwrap();
    assert_eq!(back.fingerprint(), v.fingerprint());
    assert_eq!(back.blind_index("d", "x"), v.blind_index("d", "x"));
    let sealed = v.seal(b"secret", "ctx").unwrap();
    assert_eq!(back.open(&sealed, "ctx").unwrap(), b"secret");
}

/// A relaxed transaction commits without waiting for the disk on its own
/// (SQLite `synchronous=NORMAL`, PostgreSQL `synchronous_commit` off for that
/// transaction only); every other transaction still waits for it, and what a
/// relaxed one wrote is there for everyone at once and after a reopen.
#[tokio::test]
async fn a_relaxed_transaction_skips_only_its_own_flush() {
    let t = TestDb::new(&[&SET]).await;
    let setting = |engine| match engine {
        yizhan_core::Engine::Sqlite => "PRAGMA synchronous",
        yizhan_core::Engine::Postgres => "SHOW synchronous_commit",
    };
    let engine = t.db.engine();
    let read = |v: sqlx::any::AnyRow| -> String {
        use sqlx::Row;
        v.try_get::<i64, _>(0).map(|n| n.to_string()).or_else(|_| v.try_get::<String, _>(0)).unwrap()
    };
    let mut tx = t.db.begin_relaxed().await.unwrap();
    let relaxed = read(sqlx::query(setting(engine)).fetch_one(tx.conn()).await.unwrap());
    sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)").bind("relaxed").bind(1_i64).execute(tx.conn()).await.unwrap();
    // The write permit is shared: a durable writer waits for the relaxed one.
    let db = t.db.clone();
    let mut durable = tokio::spawn(async move {
        let mut tx = db.begin().await?;
        let (c,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(tx.conn()).await?;
        sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)").bind("durable").bind(c).execute(tx.conn()).await?;
        let mode = sqlx::query(if db.engine() == yizhan_core::Engine::Sqlite {
            "PRAGMA synchronous"
        } else {
            "SHOW synchronous_commit"
        })
        .fetch_one(tx.conn())
        .await?;
        tx.commit().await?;
        Ok::<_, yizhan_core::Error>(mode)
    });
    let early = tokio::time::timeout(std::time::Duration::from_millis(200), &mut durable).await;
    let waited = early.is_err();
    tx.commit().await.unwrap();
    let durable_mode = match early {
        Ok(done) => done.unwrap().unwrap(),
        Err(_) => durable.await.unwrap().unwrap(),
    };
    let durable_mode = read(durable_mode);
    match engine {
        yizhan_core::Engine::Sqlite => {
            assert!(waited, "the durable writer waits for the relaxed one's write permit");
            // Both commit with NORMAL: the durable one then waits for the
            // group flush of the log (see the group commit test).
            assert_eq!((relaxed.as_str(), durable_mode.as_str()), ("1", "1"), "NORMAL, the durable one flushed after");
        }
        yizhan_core::Engine::Postgres => {
            assert_eq!((relaxed.as_str(), durable_mode.as_str()), ("off", "on"));
        }
    }
    // The durable writer saw the relaxed row (it waited on SQLite; on
    // PostgreSQL it may have counted before it, never half of it).
    let (n,): (i64,) = sqlx::query_as("SELECT n FROM t WHERE id = 'durable'").fetch_one(&t.db.pool).await.unwrap();
    if engine == yizhan_core::Engine::Sqlite {
        assert_eq!(n, 1, "on SQLite the durable writer waited for the relaxed one");
    }
    let again = yizhan_core::Db::connect(t.db.url()).await.unwrap();
    let (c,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&again.pool).await.unwrap();
    assert_eq!(c, 2);
}

/// Durable writers at once on SQLite share flushes of the log (a group
/// commit): every commit returns only once a flush covers it, and no more
/// flushes are made than commits. Each row is there after a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_writers_at_once_share_the_flushes_of_the_log() {
    let t = TestDb::new(&[&SET]).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let db = t.db.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = db.begin().await?;
            sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)")
                .bind(format!("w{i}"))
                .bind(i)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            // Returned: a flush covers it.
            Ok::<_, yizhan_core::Error>(db.group_commits())
        }));
    }
    for task in tasks {
        if let Some((committed, flushed, _)) = task.await.unwrap().unwrap() {
            assert!(committed >= 1 && flushed >= 1);
        }
    }
    match t.db.group_commits() {
        Some((committed, flushed, flushes)) => {
            assert_eq!(t.db.engine(), yizhan_core::Engine::Sqlite);
            // The 64, and the migrations' before them.
            assert!(committed >= 64 && flushed == committed, "every commit flushed: {committed} {flushed}");
            assert!((1..=committed).contains(&flushes), "{flushes} flushes for {committed} commits");
        }
        None => assert!(t.db.engine() == yizhan_core::Engine::Postgres || t.db.url().contains("memory")),
    }
    let again = yizhan_core::Db::connect(t.db.url()).await.unwrap();
    let (c,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM t WHERE id LIKE 'w%'").fetch_one(&again.pool).await.unwrap();
    assert_eq!(c, 64);
}

/// Lookups by id, many per query.
struct ById(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl yizhan_core::group::ReadBatch for ById {
    type Op = String;
    type Out = Option<i64>;
    fn read<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        ops: &'a [String],
    ) -> futures::future::BoxFuture<'a, yizhan_core::Result<Vec<yizhan_core::Result<Option<i64>>>>> {
        Box::pin(async move {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let list = yizhan_core::Params::of(conn).list(ops.len());
            let sql = format!("SELECT id, n FROM t WHERE id IN ({list})");
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
            for id in ops {
                q = q.bind(id);
            }
            let found: std::collections::HashMap<String, i64> = q.fetch_all(&mut *conn).await?.into_iter().collect();
            Ok(ops.iter().map(|id| Ok(found.get(id).copied())).collect())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_at_once_share_their_queries_and_each_hears_its_own_answer() {
    let t = TestDb::new(&[&SET]).await;
    let mut tx = t.db.begin().await.unwrap();
    for i in 0..100_i64 {
        sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)")
            .bind(format!("k{i}"))
            .bind(i)
            .execute(tx.conn())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let queries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reads = yizhan_core::group::GroupRead::start(t.db.clone(), ById(queries.clone()), Default::default());
    let mut tasks = Vec::new();
    for i in 0..400_i64 {
        let reads = reads.clone();
        // Every fourth asks for an id that is not there.
        tasks.push(tokio::spawn(async move {
            let id = if i % 4 == 3 { format!("missing{i}") } else { format!("k{}", i % 100) };
            (i, reads.get(id).await.unwrap())
        }));
    }
    for task in tasks {
        let (i, got) = task.await.unwrap();
        assert_eq!(got, if i % 4 == 3 { None } else { Some(i % 100) }, "lookup {i}");
    }
    let n = queries.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n < 400, "400 lookups at once took {n} queries");
}
