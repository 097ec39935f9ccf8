//! Test databases: a SQLite file in a temp dir, or a fresh PostgreSQL database per
//! test (dropped at the end). PostgreSQL comes from `SCEAU_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`); when it is unreachable the
//! test is skipped with a message, or fails when `SCEAU_REQUIRE_PG=1`.

use std::time::Duration;

use sceau::config::{DatabaseBackend, DatabaseSettings};
use sceau::store::Store;
use secrecy::SecretString;
use sqlx::Connection;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Declares one test per backend running `$body(TestDb)`; name the second `…_on_postgres`.
macro_rules! on_both_backends {
    ($sqlite:ident, $postgres:ident, $body:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $body(crate::support::db::sqlite()).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            if let Some(db) = crate::support::db::postgres().await {
                $body(db).await
            }
        }
    };
}
pub(crate) use on_both_backends;

/// A value bound into a raw test query.
pub enum Arg {
    Int(i64),
    Blob(Vec<u8>),
    Text(String),
}

/// A database for one test; a PostgreSQL one is dropped with it.
pub struct TestDb {
    pub url: String,
    pub backend: DatabaseBackend,
    /// Keeps the SQLite file (and anything else the test puts there) alive.
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

/// A SQLite database in a fresh temp dir (the file is created by `Store::connect`).
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db/sceau.db").display());
    TestDb {
        url,
        backend: DatabaseBackend::Sqlite,
        dir,
        pg: None,
    }
}

/// A fresh PostgreSQL database, or `None` (after saying so) when PostgreSQL is not there.
pub async fn postgres() -> Option<TestDb> {
    let admin =
        std::env::var("SCEAU_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let connected =
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&admin)).await;
    let mut connection = match connected {
        Ok(Ok(connection)) => connection,
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            if std::env::var("SCEAU_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("SCEAU_REQUIRE_PG=1 but PostgreSQL is unreachable: {why}");
            }
            eprintln!("skipped: PostgreSQL unreachable ({why}); set SCEAU_TEST_DATABASE_URL");
            return None;
        }
    };
    let name = format!("sceau_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    Some(TestDb {
        url: with_database(&admin, &name),
        backend: DatabaseBackend::Postgres,
        dir: tempfile::tempdir().unwrap(),
        pg: Some((admin, name)),
    })
}

/// `admin` with its database name replaced by `name`.
fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// `$query` with each of `$args` bound in turn (one macro: the query types
/// differ per backend).
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Blob(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        query
    }};
}

impl TestDb {
    pub fn is_postgres(&self) -> bool {
        self.backend == DatabaseBackend::Postgres
    }

    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: SecretString::from(self.url.clone()),
            max_connections: 4,
            ..DatabaseSettings::default()
        }
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.settings()).await.unwrap()
    }

    /// The number of rows in `table`, read on a connection of its own.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self.backend {
            DatabaseBackend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                let count: i64 = sqlx::query_scalar(&sql)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
                connection.close().await.unwrap();
                count
            }
            DatabaseBackend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let count: i64 = sqlx::query_scalar(&sql)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
                connection.close().await.unwrap();
                count
            }
        }
    }

    /// The rows of a query whose columns are all text, on a connection of its
    /// own: how tests read what the product stored.
    pub async fn text_rows(&self, sql: &str, args: Vec<Arg>) -> Vec<Vec<String>> {
        macro_rules! read {
            ($connection:expr) => {{
                use sqlx::Row as _;
                let query = bind_args!(sqlx::query(sql), args);
                let rows = query.fetch_all(&mut $connection).await.unwrap();
                let out: Vec<Vec<String>> = rows
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| row.try_get::<String, _>(i).unwrap())
                            .collect()
                    })
                    .collect();
                $connection.close().await.unwrap();
                out
            }};
        }
        match self.backend {
            DatabaseBackend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                read!(connection)
            }
            DatabaseBackend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
                read!(connection)
            }
        }
    }

    /// Runs raw SQL (`$1`-style parameters) on a connection of its own: how tests tamper.
    pub async fn execute(&self, sql: &str, args: Vec<Arg>) -> u64 {
        macro_rules! run {
            ($connection:expr) => {{
                let query = bind_args!(sqlx::query(sql), args);
                let affected = query
                    .execute(&mut $connection)
                    .await
                    .unwrap()
                    .rows_affected();
                $connection.close().await.unwrap();
                affected
            }};
        }
        match self.backend {
            DatabaseBackend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                run!(connection)
            }
            DatabaseBackend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
                run!(connection)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop runs outside async: a thread with its own runtime drops the database,
        // closing whatever connections the test left open.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&admin)
                    .await
                    .map_err(std::io::Error::other)?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut connection)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database: {dropped:?}");
        }
    }
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}
