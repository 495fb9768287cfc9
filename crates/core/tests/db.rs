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
