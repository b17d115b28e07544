use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ek_server::MemberRole;

use super::*;

fn args(dir: &Path, nodes: u32, observers: u32) -> LocalClusterArgs {
    LocalClusterArgs {
        nodes,
        observers,
        dir: dir.to_owned(),
        base_client_port: 12181,
        base_peer_port: 13888,
        base_admin_port: 18080,
        bind: "127.0.0.1".parse().unwrap(),
        no_start: true,
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn error(args: &LocalClusterArgs) -> String {
    match prepare(args) {
        Ok(nodes) => panic!("should fail, got {nodes:?}"),
        Err(error) => format!("{error:#}"),
    }
}

#[test]
fn writes_the_layout_and_configs_that_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let nodes = prepare(&args(&dir, 3, 1)).unwrap();
    assert!(dir.join("ca/ca.pem").is_file() && dir.join("ca/ca.key").is_file());
    let ca_pem = fs::read_to_string(dir.join("ca/ca.pem")).unwrap();
    let roles = [
        MemberRole::Voter,
        MemberRole::Voter,
        MemberRole::Voter,
        MemberRole::Observer,
    ];
    assert_eq!(nodes.len(), 4);
    for (index, node) in nodes.iter().enumerate() {
        let id = index as u64 + 1;
        let offset = index as u16;
        let node_dir = dir.join(format!("node-{id}"));
        let config_path = node_dir.join("edgekeeper.toml");
        let expected = Node {
            id,
            role: roles[index],
            client_addr: addr(12181 + offset),
            dir: node_dir.clone(),
            config_path: config_path.clone(),
        };
        assert_eq!(node, &expected);
        assert_eq!(fs::read_to_string(node_dir.join("ca.pem")).unwrap(), ca_pem);

        let (config, _, _) = config::load(Some(&config_path)).unwrap();
        assert_eq!(config.node_id, id);
        assert_eq!(config.data_dir, node_dir.join("data"));
        assert!(config.data_dir.is_absolute() && config.data_dir.is_dir());
        assert_eq!(config.client_addr, addr(12181 + offset));
        assert_eq!(config.admin_addr, addr(18080 + offset));
        let ensemble = config.ensemble.unwrap();
        assert_eq!(ensemble.peer_listen, None);
        for path in [&ensemble.ca_cert, &ensemble.cert, &ensemble.key] {
            assert!(path.is_absolute() && path.is_file(), "{}", path.display());
            assert!(path.starts_with(&node_dir), "{}", path.display());
        }
        let members: Vec<(u64, SocketAddr, SocketAddr, MemberRole)> = ensemble
            .members
            .iter()
            .map(|m| (m.id, m.peer_addr, m.client_addr, m.role))
            .collect();
        assert_eq!(
            members,
            [
                (1, addr(13888), addr(12181), MemberRole::Voter),
                (2, addr(13889), addr(12182), MemberRole::Voter),
                (3, addr(13890), addr(12183), MemberRole::Voter),
                (4, addr(13891), addr(12184), MemberRole::Observer),
            ]
        );
    }
}

#[test]
fn run_with_no_start_only_writes_files() {
    let tmp = tempfile::tempdir().unwrap();
    run(args(tmp.path(), 1, 0)).unwrap();
    assert!(tmp.path().join("node-1/edgekeeper.toml").is_file());
    assert!(!tmp.path().join("node-1/edgekeeper.log").exists());
    assert!(!tmp.path().join("node-2").exists());
}

#[test]
fn a_rerun_reuses_the_ca_keys_data_and_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = args(tmp.path(), 3, 0);
    prepare(&cluster).unwrap();
    let kept = [
        "ca/ca.key",
        "ca/ca.pem",
        "node-2/node.key",
        "node-2/node.pem",
    ];
    let before: Vec<Vec<u8>> = kept
        .iter()
        .map(|file| fs::read(tmp.path().join(file)).unwrap())
        .collect();
    fs::write(tmp.path().join("node-2/data/log.0"), b"txns").unwrap();
    let edited = tmp.path().join("node-1/edgekeeper.toml");
    let text = fs::read_to_string(&edited)
        .unwrap()
        .replace("[ensemble]\n", "[ensemble]\nzab_tick_ms = 200\n");
    fs::write(&edited, &text).unwrap();

    // Other ports on the rerun: the existing configs still win.
    let moved = LocalClusterArgs {
        base_client_port: 22181,
        ..args(tmp.path(), 3, 0)
    };
    let nodes = prepare(&moved).unwrap();
    assert_eq!(nodes[0].client_addr, addr(12181));
    let after: Vec<Vec<u8>> = kept
        .iter()
        .map(|file| fs::read(tmp.path().join(file)).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        fs::read(tmp.path().join("node-2/data/log.0")).unwrap(),
        b"txns"
    );
    assert_eq!(fs::read_to_string(&edited).unwrap(), text);
    let (config, _, _) = config::load(Some(&edited)).unwrap();
    assert_eq!(config.ensemble.unwrap().zab_tick_ms, 200);
}

#[test]
fn a_missing_config_is_written_again() {
    let tmp = tempfile::tempdir().unwrap();
    prepare(&args(tmp.path(), 2, 0)).unwrap();
    let path = tmp.path().join("node-2/edgekeeper.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::remove_file(&path).unwrap();
    prepare(&args(tmp.path(), 2, 0)).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn another_cluster_shape_is_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    prepare(&args(tmp.path(), 3, 0)).unwrap();
    let message = error(&args(tmp.path(), 5, 0));
    assert!(
        message.contains(
            "describes a cluster of 3 voters and 0 observers, not the 5 voters and 0 \
             observers asked for"
        ),
        "{message}"
    );
    assert!(message.contains("delete"), "{message}");
    assert!(!tmp.path().join("node-4").exists());
    let message = error(&args(tmp.path(), 2, 1));
    assert!(
        message.contains("not the 2 voters and 1 observer asked for"),
        "{message}"
    );
    let message = error(&args(tmp.path(), 2, 0));
    assert!(message.contains("not the 2 voters"), "{message}");
    // The shape it was made with still works.
    prepare(&args(tmp.path(), 3, 0)).unwrap();
}

#[test]
fn a_misplaced_config_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    prepare(&args(tmp.path(), 2, 0)).unwrap();
    fs::copy(
        tmp.path().join("node-1/edgekeeper.toml"),
        tmp.path().join("node-2/edgekeeper.toml"),
    )
    .unwrap();
    let message = error(&args(tmp.path(), 2, 0));
    assert!(message.contains("is for node 1"), "{message}");
}

#[test]
fn a_broken_config_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    prepare(&args(tmp.path(), 2, 0)).unwrap();
    let path = tmp.path().join("node-2/edgekeeper.toml");
    fs::write(&path, "tick_ms = 0\n").unwrap();
    let message = error(&args(tmp.path(), 2, 0));
    assert!(message.contains("does not load"), "{message}");
    assert!(message.contains("key 'tick_ms'"), "{message}");
}

#[test]
fn a_replaced_ca_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    prepare(&args(tmp.path(), 2, 0)).unwrap();
    fs::remove_dir_all(tmp.path().join("ca")).unwrap();
    let message = error(&args(tmp.path(), 2, 0));
    assert!(message.contains("is not the cluster CA"), "{message}");
}

#[test]
fn ports_must_fit_and_not_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let base = args(tmp.path(), 3, 0);
    let cases = [
        (
            LocalClusterArgs {
                base_peer_port: 65534,
                ..args(tmp.path(), 3, 0)
            },
            "--base-peer-port 65534: 3 nodes would need ports up to 65536",
        ),
        (
            LocalClusterArgs {
                base_client_port: 0,
                ..args(tmp.path(), 3, 0)
            },
            "--base-client-port must be > 0",
        ),
        (
            LocalClusterArgs {
                base_admin_port: 12183,
                ..args(tmp.path(), 3, 0)
            },
            "overlapping TCP ports",
        ),
        (
            LocalClusterArgs {
                nodes: 0,
                ..args(tmp.path(), 3, 0)
            },
            "--nodes must be >= 1",
        ),
    ];
    for (bad, reason) in cases {
        let message = format!("{:#}", plan(&bad).unwrap_err());
        assert!(message.contains(reason), "{message:?} lacks {reason:?}");
    }
    // Adjacent ranges and a peer range that shares numbers with a TCP range are fine.
    let fits = LocalClusterArgs {
        base_admin_port: 12184,
        base_peer_port: 12181,
        ..base
    };
    assert_eq!(plan(&fits).unwrap().len(), 3);
    assert!(
        !tmp.path().join("ca").exists(),
        "plan must not write anything"
    );
}

#[test]
fn a_wildcard_bind_listens_everywhere_and_dials_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let wildcard = LocalClusterArgs {
        bind: "0.0.0.0".parse().unwrap(),
        ..args(tmp.path(), 2, 0)
    };
    let nodes = prepare(&wildcard).unwrap();
    assert_eq!(nodes[1].client_addr, addr(12182));
    let (config, _, _) = config::load(Some(&nodes[1].config_path)).unwrap();
    assert_eq!(config.client_addr, "0.0.0.0:12182".parse().unwrap());
    let ensemble = config.ensemble.unwrap();
    assert_eq!(ensemble.peer_listen, Some("0.0.0.0:13889".parse().unwrap()));
    assert_eq!(ensemble.members[0].peer_addr, addr(13888));
}

#[test]
fn node_lines_have_the_documented_shape() {
    let node = Node {
        id: 4,
        role: MemberRole::Observer,
        client_addr: addr(2184),
        dir: PathBuf::from("/d/node-4"),
        config_path: PathBuf::from("/d/node-4/edgekeeper.toml"),
    };
    assert_eq!(
        node_line(&node, Some(77)),
        "node 4 pid 77 client 127.0.0.1:2184 role observer config /d/node-4/edgekeeper.toml"
    );
    assert_eq!(
        node_line(&node, None),
        "node 4 client 127.0.0.1:2184 role observer config /d/node-4/edgekeeper.toml"
    );
}
