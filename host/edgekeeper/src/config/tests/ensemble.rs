//! `[ensemble]`: every rule, the defaults, path resolution and the documented examples.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ek_server::{Ensemble, Member, MemberRole};

use super::{check_err, err, ok};
use crate::config::{load, parse};

/// A valid three-voter ensemble for node 1; tests append keys to `[ensemble]` or replace
/// parts of it.
const ENSEMBLE: &str = r#"
node_id = 1
[ensemble]
ca_cert = "ca.pem"
cert = "node.pem"
key = "node.key"
[[ensemble.members]]
id = 1
peer_addr = "127.0.0.1:3888"
client_addr = "127.0.0.1:2181"
[[ensemble.members]]
id = 2
peer_addr = "127.0.0.1:3889"
client_addr = "127.0.0.1:2182"
[[ensemble.members]]
id = 3
peer_addr = "127.0.0.1:3890"
client_addr = "127.0.0.1:2183"
"#;

/// `ENSEMBLE` with `extra` added to the `[ensemble]` table.
fn ensemble_with(extra: &str) -> String {
    ENSEMBLE.replacen(
        "key = \"node.key\"\n",
        &format!("key = \"node.key\"\n{extra}\n"),
        1,
    )
}

fn member(id: u64, peer_port: u16, client_port: u16, role: MemberRole) -> Member {
    Member {
        id,
        peer_addr: SocketAddr::from(([127, 0, 0, 1], peer_port)),
        client_addr: SocketAddr::from(([127, 0, 0, 1], client_port)),
        role,
    }
}

#[test]
fn no_ensemble_table_runs_standalone() {
    assert_eq!(ok("node_id = 4").0.ensemble, None);
}

#[test]
fn full_ensemble_example_round_trips() {
    let (config, _, _) = ok(r#"
        node_id = 2
        data_dir = "/abs/node-2/data"
        client_addr = "127.0.0.1:2182"
        admin_addr = "127.0.0.1:8081"

        [ensemble]
        ca_cert = "/etc/ek/ca.pem"
        cert = "tls/node.pem"
        key = "node.key"
        peer_listen = "0.0.0.0:3889"
        zab_tick_ms = 100
        init_limit_ticks = 20
        sync_limit_ticks = 5
        peer_keepalive_ms = 300
        peer_idle_timeout_ms = 3000

        [[ensemble.members]]
        id = 1
        peer_addr = "127.0.0.1:3888"
        client_addr = "127.0.0.1:2181"
        role = "voter"

        [[ensemble.members]]
        id = 2
        peer_addr = "127.0.0.1:3889"
        client_addr = "127.0.0.1:2182"

        [[ensemble.members]]
        id = 3
        peer_addr = "127.0.0.1:3890"
        client_addr = "127.0.0.1:2183"

        [[ensemble.members]]
        id = 4
        peer_addr = "127.0.0.1:3891"
        client_addr = "127.0.0.1:2184"
        role = "observer"
    "#);
    let mut expected = Ensemble::new(
        vec![
            member(1, 3888, 2181, MemberRole::Voter),
            member(2, 3889, 2182, MemberRole::Voter),
            member(3, 3890, 2183, MemberRole::Voter),
            member(4, 3891, 2184, MemberRole::Observer),
        ],
        PathBuf::from("/etc/ek/ca.pem"),
        PathBuf::from("/x/tls/node.pem"),
        PathBuf::from("/x/node.key"),
    );
    expected.peer_listen = Some("0.0.0.0:3889".parse().unwrap());
    expected.zab_tick_ms = 100;
    expected.init_limit_ticks = 20;
    expected.sync_limit_ticks = 5;
    expected.peer_keepalive_ms = 300;
    expected.peer_idle_timeout_ms = 3000;
    assert_eq!(config.ensemble, Some(expected));
    assert_eq!(config.node_id, 2);
    assert_eq!(config.data_dir, PathBuf::from("/abs/node-2/data"));
    assert_eq!(config.client_addr, "127.0.0.1:2182".parse().unwrap());
    assert_eq!(config.admin_addr, "127.0.0.1:8081".parse().unwrap());
}

#[test]
fn ensemble_timing_defaults_come_from_the_runtime() {
    let ensemble = ok(ENSEMBLE).0.ensemble.unwrap();
    let defaults = Ensemble::new(
        vec![
            member(1, 3888, 2181, MemberRole::Voter),
            member(2, 3889, 2182, MemberRole::Voter),
            member(3, 3890, 2183, MemberRole::Voter),
        ],
        PathBuf::from("/x/ca.pem"),
        PathBuf::from("/x/node.pem"),
        PathBuf::from("/x/node.key"),
    );
    assert_eq!(ensemble, defaults);
    assert_eq!(ensemble.peer_listen, None);
}

#[test]
fn ensemble_timing_keys_are_each_optional() {
    type Field = fn(&Ensemble) -> u32;
    let cases: [(&str, Field); 5] = [
        ("zab_tick_ms = 7", |e| e.zab_tick_ms),
        ("init_limit_ticks = 7", |e| e.init_limit_ticks),
        ("sync_limit_ticks = 3", |e| e.sync_limit_ticks),
        ("peer_keepalive_ms = 7", |e| e.peer_keepalive_ms),
        ("peer_idle_timeout_ms = 700", |e| e.peer_idle_timeout_ms),
    ];
    for (line, field) in cases {
        let ensemble = ok(&ensemble_with(line)).0.ensemble.unwrap();
        let value: u32 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(field(&ensemble), value, "{line}");
    }
}

#[test]
fn tls_paths_resolve_against_the_config_file_directory() {
    let ensemble = ok(ENSEMBLE).0.ensemble.unwrap();
    assert_eq!(ensemble.ca_cert, PathBuf::from("/x/ca.pem"));
    let text = ENSEMBLE.replace("cert = \"node.pem\"", "cert = \"/etc/ek/node.pem\"");
    let ensemble = ok(&text).0.ensemble.unwrap();
    assert_eq!(ensemble.cert, PathBuf::from("/etc/ek/node.pem"));
    // data_dir keeps its meaning: relative to the working directory.
    let (config, _, _) = ok(&format!("data_dir = \"d\"\n{ENSEMBLE}"));
    assert_eq!(config.data_dir, PathBuf::from("d"));
    // A bare file name has an empty parent: the paths stay relative to the working dir.
    let (config, _, _) = parse(ENSEMBLE, Path::new("edgekeeper.toml")).unwrap();
    assert_eq!(config.ensemble.unwrap().key, PathBuf::from("node.key"));
}

#[test]
fn load_resolves_tls_paths_next_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgekeeper.toml");
    std::fs::write(&path, ENSEMBLE).unwrap();
    let ensemble = load(Some(&path)).unwrap().0.ensemble.unwrap();
    assert_eq!(ensemble.ca_cert, dir.path().join("ca.pem"));
    assert_eq!(ensemble.cert, dir.path().join("node.pem"));
    assert_eq!(ensemble.key, dir.path().join("node.key"));
}

#[test]
fn roles_default_to_voter() {
    let text = ENSEMBLE.replacen("id = 3\n", "id = 3\nrole = \"observer\"\n", 1);
    let ensemble = ok(&text).0.ensemble.unwrap();
    let roles: Vec<MemberRole> = ensemble.members.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [MemberRole::Voter, MemberRole::Voter, MemberRole::Observer]
    );
}

#[test]
fn node_id_must_be_set_and_be_a_member() {
    check_err(
        &ENSEMBLE.replace("node_id = 1\n", ""),
        "node_id",
        "missing: with [ensemble], node_id must name this node",
    );
    check_err(
        &ENSEMBLE.replace("node_id = 1\n", "node_id = 4\n"),
        "node_id",
        "4 is not among ensemble.members (ids 1, 2, 3)",
    );
    check_err(
        &ENSEMBLE.replace("node_id = 1\n", "node_id = 0\n"),
        "node_id",
        "must be > 0",
    );
}

#[test]
fn member_ids_must_be_positive_and_unique() {
    check_err(
        &ENSEMBLE.replacen("id = 2\n", "id = 0\n", 1),
        "ensemble.members[1].id",
        "must be > 0",
    );
    check_err(
        &ENSEMBLE.replacen("id = 3\n", "id = 2\n", 1),
        "ensemble.members[2].id",
        "duplicate id 2 (also ensemble.members[1])",
    );
}

#[test]
fn member_addresses_must_be_unique_and_dialable() {
    check_err(
        &ENSEMBLE.replace("127.0.0.1:3890", "127.0.0.1:3888"),
        "ensemble.members[2].peer_addr",
        "duplicate peer_addr 127.0.0.1:3888 (also ensemble.members[0])",
    );
    check_err(
        &ENSEMBLE.replace("127.0.0.1:2182", "127.0.0.1:2181"),
        "ensemble.members[1].client_addr",
        "duplicate client_addr 127.0.0.1:2181 (also ensemble.members[0])",
    );
    check_err(
        &ENSEMBLE.replace("127.0.0.1:3889", "127.0.0.1:0"),
        "ensemble.members[1].peer_addr",
        "port must not be 0",
    );
    check_err(
        &ENSEMBLE.replace("127.0.0.1:2183", "127.0.0.1:0"),
        "ensemble.members[2].client_addr",
        "port must not be 0",
    );
    // The same port on another host is a different address.
    ok(&ENSEMBLE.replace("127.0.0.1:3889", "127.0.0.2:3888"));
    check_err(
        &ENSEMBLE.replace("\"127.0.0.1:3889\"", "\"node-2:3888\""),
        "ensemble.members[1].peer_addr",
        "invalid socket address",
    );
}

#[test]
fn ensemble_needs_a_voter() {
    let text = ENSEMBLE
        .replace(
            "client_addr = \"127.0.0.1:2181\"\n",
            "client_addr = \"127.0.0.1:2181\"\nrole = \"observer\"\n",
        )
        .replace(
            "client_addr = \"127.0.0.1:2182\"\n",
            "client_addr = \"127.0.0.1:2182\"\nrole = \"observer\"\n",
        )
        .replace(
            "client_addr = \"127.0.0.1:2183\"\n",
            "client_addr = \"127.0.0.1:2183\"\nrole = \"observer\"\n",
        );
    check_err(&text, "ensemble.members", "needs at least one voter");
    check_err(
        &ENSEMBLE.replacen("id = 2\n", "id = 2\nrole = \"leader\"\n", 1),
        "ensemble.members[1].role",
        "unknown variant `leader`, expected `voter` or `observer`",
    );
}

#[test]
fn ensemble_required_keys_are_named() {
    check_err(
        "node_id = 1\n[ensemble]\nca_cert = \"a\"\ncert = \"b\"\nkey = \"c\"",
        "ensemble.members",
        "missing: list every member",
    );
    check_err(
        "node_id = 1\n[ensemble]\nca_cert = \"a\"\ncert = \"b\"\nkey = \"c\"\nmembers = []",
        "ensemble.members",
        "missing: list every member",
    );
    for key in ["ca_cert", "cert", "key"] {
        let line = ENSEMBLE
            .lines()
            .find(|line| line.starts_with(&format!("{key} = ")))
            .unwrap();
        check_err(
            &ENSEMBLE.replace(&format!("{line}\n"), ""),
            &format!("ensemble.{key}"),
            "missing (required in [ensemble])",
        );
        check_err(
            &ENSEMBLE.replace(line, &format!("{key} = \"\"")),
            &format!("ensemble.{key}"),
            "must not be empty",
        );
    }
    for field in ["peer_addr", "client_addr"] {
        let line = format!(
            "{field} = \"127.0.0.1:{}\"\n",
            if field == "peer_addr" { 3889 } else { 2182 }
        );
        check_err(
            &ENSEMBLE.replace(&line, ""),
            &format!("ensemble.members[1].{field}"),
            "missing (required in every member)",
        );
    }
    check_err(
        &ENSEMBLE.replacen("id = 3\n", "", 1),
        "ensemble.members[2].id",
        "missing (required in every member)",
    );
}

#[test]
fn ensemble_unknown_keys_are_named() {
    check_err(
        &ensemble_with("election_ms = 5"),
        "ensemble.election_ms",
        "unknown key",
    );
    check_err(
        &ENSEMBLE.replacen("id = 2\n", "id = 2\nweight = 1\n", 1),
        "ensemble.members[1].weight",
        "unknown key",
    );
    check_err(
        &ensemble_with("zab_tick_ms = \"50\""),
        "ensemble.zab_tick_ms",
        "invalid type: string \"50\", expected u32",
    );
}

#[test]
fn ensemble_timing_must_be_positive() {
    for key in [
        "zab_tick_ms",
        "init_limit_ticks",
        "sync_limit_ticks",
        "peer_keepalive_ms",
        "peer_idle_timeout_ms",
    ] {
        check_err(
            &ensemble_with(&format!("{key} = 0")),
            &format!("ensemble.{key}"),
            "must be > 0",
        );
    }
}

#[test]
fn ensemble_timing_must_be_consistent() {
    check_err(
        &ensemble_with("peer_keepalive_ms = 2000"),
        "ensemble.peer_keepalive_ms",
        "must be < peer_idle_timeout_ms (2000)",
    );
    check_err(
        &ensemble_with("peer_idle_timeout_ms = 150"),
        "ensemble.peer_keepalive_ms",
        "must be < peer_idle_timeout_ms (150)",
    );
    check_err(
        &ensemble_with("init_limit_ticks = 3"),
        "ensemble.init_limit_ticks",
        "must be >= sync_limit_ticks (4)",
    );
    check_err(
        &ensemble_with("sync_limit_ticks = 41"),
        "ensemble.init_limit_ticks",
        "must be >= sync_limit_ticks (41)",
    );
    let ensemble = ok(&ensemble_with("init_limit_ticks = 4"))
        .0
        .ensemble
        .unwrap();
    assert_eq!(
        (ensemble.init_limit_ticks, ensemble.sync_limit_ticks),
        (4, 4)
    );
}

#[test]
fn ensemble_error_has_the_documented_shape() {
    assert_eq!(
        err(&ENSEMBLE.replacen("id = 3\n", "id = 2\n", 1)),
        "config /x/edgekeeper.toml: key 'ensemble.members[2].id': duplicate id 2 \
         (also ensemble.members[1])"
    );
}

/// The complete example files in the docs (the `toml` blocks that start by naming their
/// file) load; fragments are left out.
#[test]
fn documented_examples_parse() {
    let doc = include_str!("../../../../../docs/configuration.md");
    let mut examples = 0;
    for block in doc.split("```toml\n").skip(1) {
        let text = block.split("```").next().unwrap();
        if text.starts_with("# /etc/edgekeeper/") {
            ok(text);
            examples += 1;
        }
    }
    assert_eq!(
        examples, 2,
        "docs/configuration.md should hold both examples"
    );
}
