//! The first of the two commands: `fundledger serve` with no DATABASE_URL starts a private
//! cluster, answers /healthz, stops the cluster on SIGTERM, SIGHUP or when the process that
//! started it dies, and reuses its data next time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fundledger::postgres::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(data_dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn get(port: u16, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

async fn wait_healthy(port: u16, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("serve exited early with {status}: {err}");
        }
        if let Some(resp) = get(port, "/healthz").await {
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not answer /healthz within 60 s");
}

fn terminate(child: Child) -> String {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "serve exited with {}", out.status);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn serve_without_database_url_runs_a_private_cluster_and_reuses_it() {
    let data_dir = std::env::temp_dir()
        .join(format!("fundledger-serve-test-{}", uuid::Uuid::new_v4().simple()));

    let port = free_port();
    let first = start(&data_dir, port);
    let mut first = first;
    let resp = wait_healthy(port, &mut first).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains(r#"{"status":"ok"}"#), "{resp}");
    let log = terminate(first);
    assert!(log.contains("creating a private PostgreSQL cluster"), "{log}");
    let cluster = Cluster::new(&data_dir).unwrap();
    assert!(!cluster.is_running(), "the cluster is stopped with the service");

    let port = free_port();
    let second = start(&data_dir, port);
    let mut second = second;
    wait_healthy(port, &mut second).await;
    let log = terminate(second);
    assert!(!log.contains("creating a private PostgreSQL cluster"), "{log}");
    assert!(log.contains("reused=true"), "{log}");
    assert!(!cluster.is_running());
    std::fs::remove_dir_all(&data_dir).unwrap();
}

fn cli(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn request(port: u16, request: String) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn a_token_from_the_cli_works_over_http_until_revoked_and_logs_never_show_an_id_number() {
    let data_dir = std::env::temp_dir()
        .join(format!("fundledger-token-test-{}", uuid::Uuid::new_v4().simple()));
    let bad = Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args([
            "token",
            "create",
            "--role",
            "county_clerk",
            "--label",
            "x",
            "--person",
            "x",
            "--data-dir",
        ])
        .arg(&data_dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!bad.status.success(), "a county role without --county is refused");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--county"));

    let out = cli(
        &data_dir,
        &["token", "create", "--role", "admin", "--label", "管理员 李四", "--person", "lisi"],
    );
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(
        token.starts_with("fl_") && !token.contains(' '),
        "the token alone on the last line: {out}"
    );
    // As API.md's synopsis writes it, with no --person: the label names the person.
    let plain = cli(&data_dir, &["token", "create", "--role", "auditor", "--label", "审计 王五"]);
    assert!(plain.contains("(person `审计 王五`)"), "{plain}");
    let auditor = plain.lines().last().unwrap().trim().to_string();
    let listed = cli(&data_dir, &["token", "list"]);
    assert!(listed.contains("管理员 李四") && !listed.contains(&token[20..]), "{listed}");
    assert!(listed.lines().any(|l| l.contains("审计 王五\t审计 王五")), "{listed}");
    // The pruning job keeps keys at least 30 days, whatever it is asked.
    let pruned = cli(&data_dir, &["idempotency", "prune"]);
    assert!(pruned.contains("forgot 0 idempotency keys older than 35 days"), "{pruned}");
    let short = Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(["idempotency", "prune", "--older-than-days", "10", "--data-dir"])
        .arg(&data_dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 30 days"));

    let port = free_port();
    let mut server = start(&data_dir, port);
    wait_healthy(port, &mut server).await;
    let ready = get(port, "/readyz").await.unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let body = r#"{"code":"370800","name":"济宁市"}"#;
    let post = |token: String| {
        format!(
            "POST /v1/pools HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let created = request(port, post(token.clone())).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let query = r#"{"id_number":"370811199001011236","year":2025}"#;
    let person = request(
        port,
        format!("POST /v1/persons/subsidies HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{query}", query.len()),
    )
    .await;
    if !person.starts_with("HTTP/1.1 200") {
        panic!("{person}\n{}", terminate(server));
    }
    let moved = request(
        port,
        format!("GET /v1/persons/370811199001011236/subsidies?year=2025 HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {token}\r\n\r\n"),
    )
    .await;
    assert!(moved.starts_with("HTTP/1.1 410"), "{moved}");
    let audited = request(
        port,
        format!("GET /v1/audit/verify HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {auditor}\r\n\r\n"),
    )
    .await;
    assert!(audited.starts_with("HTTP/1.1 200"), "{audited}");

    let id = listed
        .lines()
        .find(|l| l.contains("管理员 李四"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    cli(&data_dir, &["token", "revoke", &id]);
    // The server reloads its copy of the token table at most once a second.
    tokio::time::sleep(
        fundledger::tokens::TOKEN_REFRESH_INTERVAL + std::time::Duration::from_millis(100),
    )
    .await;
    let refused = request(port, post(token)).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    let log = terminate(server);
    assert!(
        log.contains("route=/v1/pools")
            && log.contains("status=201")
            && log.contains("duration_ms"),
        "{log}"
    );
    assert!(log.contains("route=/v1/persons/subsidies"), "{log}");
    assert!(log.contains("route=/v1/persons/{id_number}/subsidies"), "{log}");
    assert!(!log.contains("370811199001011236"), "an ID number never reaches the log");
    std::fs::remove_dir_all(&data_dir).unwrap();
}

#[tokio::test]
async fn checkpoint_and_verify_from_the_cli_with_the_printed_public_key() {
    let data_dir = std::env::temp_dir()
        .join(format!("fundledger-checkpoint-test-{}", uuid::Uuid::new_v4().simple()));
    cli(
        &data_dir,
        &[
            "policy",
            "publish",
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies/liaocheng-2024-training.toml"),
        ],
    );
    let out = cli(&data_dir, &["checkpoint"]);
    let public_key = out.lines().find_map(|l| l.strip_prefix("public key: ")).unwrap().to_string();
    assert_eq!(public_key.len(), 64, "{out}");
    let key_file = data_dir.join("keys/checkpoint.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let verified = cli(&data_dir, &["verify", "--public-key", &public_key]);
    let v: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["checkpoints_verified"].as_u64()),
        (Some(true), Some(1)),
        "{verified}"
    );

    // Another key: the recorded checkpoint does not verify, and the exit code says so.
    let other = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let refused = Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(["verify", "--public-key", other, "--data-dir"])
        .arg(&data_dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stdout).contains("not signed by the trusted key"));
    std::fs::remove_dir_all(&data_dir).unwrap();
}

/// Whether process `pid` still runs. A zombie waiting for its reaper does not: in a container
/// the orphan's new parent may never reap it.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start().chars().next();
        !matches!(state, Some('Z' | 'X') | None)
    })
}

fn postmaster_pid(data_dir: &Path) -> u32 {
    let pid_file = data_dir.join("pg/postmaster.pid");
    let text = std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
    text.lines().next().unwrap().trim().parse().unwrap()
}

fn send(signal: &str, pid: u32) {
    Command::new("kill").arg(signal).arg(pid.to_string()).status().unwrap();
}

async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

/// What a failing test would otherwise leave behind: the server (SIGTERM, which stops its
/// cluster), then the cluster itself, then the data directory.
struct Cleanup {
    data_dir: PathBuf,
    serve: Option<u32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.serve.filter(|&pid| alive(pid)) {
            send("-TERM", pid);
            let deadline = Instant::now() + Duration::from_secs(30);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Ok(cluster) = Cluster::new(&self.data_dir) {
            let _ = cluster.stop();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn fresh_data_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fundledger-{name}-{}", uuid::Uuid::new_v4().simple()))
}

#[tokio::test]
async fn serve_exits_cleanly_on_sighup_and_stops_its_cluster() {
    let data_dir = fresh_data_dir("sighup-test");
    let mut cleanup = Cleanup { data_dir: data_dir.clone(), serve: None };
    let port = free_port();
    let mut server = start(&data_dir, port);
    cleanup.serve = Some(server.id());
    wait_healthy(port, &mut server).await;
    let postmaster = postmaster_pid(&data_dir);
    assert!(alive(postmaster));

    // What a closing terminal sends to the jobs started from it.
    send("-HUP", server.id());
    let mut status = None;
    eventually(Duration::from_secs(30), || {
        status = server.try_wait().unwrap();
        status.is_some()
    })
    .await;
    let mut log = String::new();
    if status.is_some() {
        std::io::Read::read_to_string(server.stderr.as_mut().unwrap(), &mut log).unwrap();
    }
    assert!(status.is_some_and(|s| s.success()), "serve did not exit cleanly: {status:?}\n{log}");
    assert!(
        log.contains("SIGHUP") && log.contains("stopping the private PostgreSQL cluster"),
        "{log}"
    );
    assert!(!alive(postmaster), "the cluster's postmaster {postmaster} still runs");
    assert!(!data_dir.join("pg/postmaster.pid").exists());
}

#[tokio::test]
async fn serve_stops_itself_and_its_cluster_when_the_process_that_started_it_dies() {
    let data_dir = fresh_data_dir("orphan-test");
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut cleanup = Cleanup { data_dir: data_dir.clone(), serve: None };
    let port = free_port();
    let (pid_file, log_file) = (data_dir.join("serve.pid"), data_dir.join("serve.log"));
    // A shell script that starts the server in the background, as the README's walkthrough
    // does, and is then killed before it can stop it.
    let mut parent = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" serve --listen "$1" --data-dir "$2" >"$3" 2>&1 & echo $! >"$4"; wait"#)
        .arg(env!("CARGO_BIN_EXE_fundledger"))
        .arg(format!("127.0.0.1:{port}"))
        .arg(&data_dir)
        .arg(&log_file)
        .arg(&pid_file)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut serve = None;
    eventually(Duration::from_secs(10), || {
        serve = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok());
        serve.is_some()
    })
    .await;
    let serve = serve.expect("the shell wrote the server's pid");
    cleanup.serve = Some(serve);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/healthz").await.is_none() {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        assert!(alive(serve) && Instant::now() < deadline, "serve did not come up: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let postmaster = postmaster_pid(&data_dir);

    parent.kill().unwrap();
    parent.wait().unwrap();
    let gone = eventually(Duration::from_secs(30), || !alive(serve)).await;
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    assert!(gone, "serve {serve} still runs 30 s after its parent died:\n{log}");
    assert!(log.contains("the process that started it ended"), "{log}");
    assert!(!alive(postmaster), "the cluster's postmaster {postmaster} still runs:\n{log}");
    assert!(!data_dir.join("pg/postmaster.pid").exists());
}

#[tokio::test]
async fn serve_started_under_nohup_outlives_a_hangup() {
    let data_dir = fresh_data_dir("nohup-test");
    let mut cleanup = Cleanup { data_dir: data_dir.clone(), serve: None };
    let port = free_port();
    // What `nohup` does: SIGHUP ignored before exec.
    let mut server = Command::new("sh")
        .arg("-c")
        .arg(r#"trap "" HUP; exec "$0" serve --listen "$1" --data-dir "$2""#)
        .arg(env!("CARGO_BIN_EXE_fundledger"))
        .arg(format!("127.0.0.1:{port}"))
        .arg(&data_dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cleanup.serve = Some(server.id());
    wait_healthy(port, &mut server).await;
    send("-HUP", server.id());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.try_wait().unwrap().is_none(), "serve under nohup ended on SIGHUP");
    let resp = get(port, "/healthz").await.expect("still serving");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    terminate(server);
    assert!(!Cluster::new(&data_dir).unwrap().is_running());
}

#[test]
fn one_shot_commands_log_the_cluster_start_only_with_verbose() {
    let data_dir = fresh_data_dir("quiet-test");
    let _cleanup = Cleanup { data_dir: data_dir.clone(), serve: None };
    let run = |verbose: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fundledger"));
        cmd.args(["token", "list", "--data-dir"]).arg(&data_dir);
        if verbose {
            cmd.arg("-v");
        }
        let out = cmd.env_remove("DATABASE_URL").env_remove("RUST_LOG").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = run(false);
    assert!(!quiet.contains("INFO"), "a one-shot command logs info lines by default:\n{quiet}");
    let verbose = run(true);
    assert!(
        verbose.contains("private PostgreSQL cluster is up")
            && verbose.contains("stopping the private PostgreSQL cluster"),
        "{verbose}"
    );
}

#[test]
fn cluster_stop_stops_a_cluster_left_running_such_as_the_tests_one() {
    let data_dir = fresh_data_dir("cluster-stop-test");
    let _cleanup = Cleanup { data_dir: data_dir.clone(), serve: None };
    let stop = || {
        Command::new(env!("CARGO_BIN_EXE_fundledger"))
            .args(["cluster", "stop", "--data-dir"])
            .arg(&data_dir)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let none = stop();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no private cluster under"));

    // Started the way the test suite starts its shared cluster, and left running.
    let cluster = fundledger::postgres::testing::start_private(
        &data_dir,
        fundledger::postgres::Durability::Disposable,
    );
    assert!(cluster.is_running());
    let stopped = stop();
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    assert!(String::from_utf8_lossy(&stopped.stdout).contains("stopped the cluster"));
    assert!(!cluster.is_running());
    let again = stop();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("is not running"));
}
