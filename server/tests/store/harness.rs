//! Opens a fresh store of each backend for one test, and cleans up after it.

use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use roomler_server::store::Store;
use roomler_server::store::mongo::{MongoStore, redact_url};
use roomler_server::store::sqlite::SqliteStore;

/// The environment variable with the MongoDB connection string for the suite.
const MONGODB_URL_VARIABLE: &str = "ROOMLER_TEST_MONGODB_URL";

/// Characters of the test name in its database name. MongoDB's "Limits and
/// Thresholds" page allows fewer than 64, and `roomler_`, this and a 13-character
/// suffix make 61.
const MAX_TEST_NAME_IN_DATABASE: usize = 40;

pub async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("roomler.db")).unwrap();
    test(Arc::new(store)).await;
}

pub async fn run_mongo<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(url) = std::env::var(MONGODB_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
    else {
        // Written to the stderr handle directly, which the test harness does not
        // capture, so that a run without --nocapture lists the skipped tests too.
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "skipped: mongodb::{name}: {MONGODB_URL_VARIABLE} is not set; set it to a \
             MongoDB replica set's connection string to run this test"
        );
        return;
    };

    let short_name: String = name.chars().take(MAX_TEST_NAME_IN_DATABASE).collect();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("roomler_{short_name}_{}", &suffix[..12]);
    let store = MongoStore::open_database(&url, Some(&database))
        .await
        .unwrap_or_else(|error| {
            panic!(
                "failed to open the MongoDB store at {} for {name}: {error:#}",
                redact_url(&url)
            )
        });

    let outcome = AssertUnwindSafe(test(Arc::new(store))).catch_unwind().await;

    match ::mongodb::Client::with_uri_str(&url).await {
        Ok(client) => {
            if let Err(error) = client.database(&database).drop().await {
                eprintln!("failed to drop the test database {database}: {error}");
            }
        }
        Err(error) => eprintln!("failed to connect to drop the test database {database}: {error}"),
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
