//! The kv-broker refuses to start on a database it cannot use, with a clear message and exit
//! code 1, and leaves the file alone.
use std::process::Command;

fn start_on(database: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_example-kv-broker"))
        .env("OSB_LISTEN", "127.0.0.1:0")
        .env("OSB_DATABASE_URL", format!("sqlite:{}", database.display()))
        .env("OSB_BROKER_PASSWORD", "pw")
        .output()
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_corrupt_database_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let garbage = b"this is not a database, just some text that fills the first page".repeat(80);
    std::fs::write(&path, &garbage).unwrap();
    let (code, stderr) = start_on(&path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(stderr.contains("not usable"), "{stderr}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is left alone"
    );
}

#[tokio::test]
async fn another_programs_database_is_refused() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let url = format!("sqlite:{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let (code, stderr) = start_on(&path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("another program (customers)"), "{stderr}");
}

#[test]
fn a_database_in_an_unwritable_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    // A directory cannot be created under a regular file.
    let (code, stderr) = start_on(&blocker.join("sub").join("kv.db"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot create the directory"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_is_refused_after_the_busy_timeout() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    // A first start creates the database; then another program holds its write lock.
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-kv-broker"))
        .env("OSB_LISTEN", "127.0.0.1:0")
        .env("OSB_DATABASE_URL", format!("sqlite:{}", path.display()))
        .env("OSB_BROKER_PASSWORD", "pw")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !path.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();
    let (code, stderr) = tokio::task::spawn_blocking(move || start_on(&path))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("unavailable") && stderr.contains("locked"),
        "{stderr}"
    );
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
}
