//! Issue 12, the embedded cluster: its own system account, and no directory someone else made
//! first is used for its data or its socket.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use fundledger::postgres::cluster::SERVER_ACCOUNT;
use fundledger::postgres::{Cluster, ClusterError, Durability};

fn temp_root(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fundledger-{what}-{}", uuid::Uuid::new_v4().simple()))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn uid_of(name: &str) -> Option<u32> {
    std::fs::read_to_string("/etc/passwd").unwrap().lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f[0] == name).then(|| f[2].parse().unwrap())
    })
}

#[test]
fn a_new_cluster_runs_as_its_own_account_and_refuses_a_socket_directory_it_did_not_make() {
    let root = temp_root("cluster");
    let cluster = Cluster::new(&root).unwrap();
    cluster.init(Durability::Disposable).unwrap();
    let owner = std::fs::metadata(cluster.pgdata()).unwrap().uid();
    if is_root() {
        // Not `postgres` or `nobody`, which other software on the machine shares.
        assert_eq!(Some(owner), uid_of(SERVER_ACCOUNT), "PGDATA belongs to {SERVER_ACCOUNT}");
    } else {
        assert_eq!(owner, std::fs::metadata("/proc/self").unwrap().uid());
    }

    // Someone made the socket directory first (here: writable by everyone).
    std::fs::create_dir(cluster.socket_dir()).unwrap();
    std::fs::set_permissions(cluster.socket_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    match cluster.start() {
        Err(ClusterError::NotOurs { path, .. }) => assert_eq!(path, cluster.socket_dir()),
        other => panic!("a socket directory someone else made must be refused: {other:?}"),
    }
    assert!(!cluster.is_running());

    // Made by the cluster itself: private, and the server starts.
    std::fs::remove_dir(cluster.socket_dir()).unwrap();
    assert!(cluster.start().unwrap());
    let socket = std::fs::metadata(cluster.socket_dir()).unwrap();
    assert_eq!(socket.permissions().mode() & 0o777, 0o700);
    assert_eq!(socket.uid(), owner);
    cluster.stop().unwrap();
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_data_directory_others_may_write_to_is_refused() {
    let root = temp_root("cluster-open");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    match Cluster::new(&root) {
        Err(ClusterError::NotOurs { path, .. }) => {
            assert_eq!(path, root.canonicalize().unwrap());
        }
        other => panic!("a world-writable data directory must be refused: {other:?}"),
    }
    std::fs::remove_dir_all(&root).unwrap();
}
