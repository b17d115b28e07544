//! Every operation, watch kind and session behaviour the Rust `zookeeper-client` crate
//! offers, checked against a running server: results, stats, error codes and events.

use std::time::Duration;

use zookeeper_client as zk;

use crate::harness::{bounded, client, client_with, deadline, wait_until, Server};

const OPEN: &zk::CreateOptions<'static> =
    &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const EPHEMERAL: &zk::CreateOptions<'static> =
    &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());

fn options(mode: zk::CreateMode) -> zk::CreateOptions<'static> {
    mode.with_acls(zk::Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_every_mode() {
    deadline(async {
        let server = Server::start();
        let zk = client(&server).await;

        let (stat, seq) = zk.create("/p", b"data", OPEN).await.unwrap();
        assert_eq!(seq.into_i64(), -1, "no sequence for a plain node");
        assert_eq!(
            (stat.czxid, stat.mzxid, stat.pzxid),
            (stat.czxid, stat.czxid, stat.czxid)
        );
        assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
        assert_eq!(
            (stat.data_length, stat.num_children, stat.ephemeral_owner),
            (4, 0, 0)
        );
        assert_eq!(stat.ctime, stat.mtime);
        assert_eq!(zk.get_data("/p").await.unwrap(), (b"data".to_vec(), stat));

        let (eph, _) = zk.create("/p/eph", b"", EPHEMERAL).await.unwrap();
        assert_eq!(eph.ephemeral_owner, zk.session_id().0);
        assert_eq!(
            zk.create("/p/eph/child", b"", OPEN).await.unwrap_err(),
            zk::Error::NoChildrenForEphemerals
        );

        // The suffix is the parent's count of child creates so far, printed as %010d.
        let seq_options = options(zk::CreateMode::PersistentSequential);
        let (_, s1) = zk.create("/p/s-", b"", &seq_options).await.unwrap();
        let (_, s2) = zk.create("/p/s-", b"", &seq_options).await.unwrap();
        assert_eq!((s1.into_i64(), s2.into_i64()), (1, 2));
        assert_eq!(s1.to_string(), "0000000001");
        zk.delete("/p/s-0000000001", None).await.unwrap();
        let (_, es) = zk
            .create("/p/e-", b"", &options(zk::CreateMode::EphemeralSequential))
            .await
            .unwrap();
        assert_eq!(
            es.into_i64(),
            3,
            "a delete neither reuses nor skips a sequence number"
        );

        let (parent, _) = zk.get_children("/p").await.unwrap();
        let mut parent = parent;
        parent.sort();
        assert_eq!(parent, ["e-0000000003", "eph", "s-0000000002"]);
        let (_, p) = zk.get_data("/p").await.unwrap();
        assert_eq!(p.num_children, 3);
        assert_eq!(p.cversion, 5, "cversion counts child creates and deletes");
        let (_, newest) = zk.get_data("/p/e-0000000003").await.unwrap();
        assert_eq!(p.pzxid, newest.czxid);

        // Containers and TTL nodes: clients see ephemeralOwner 0 (the marker is server-internal).
        let (container, _) = zk
            .create("/c", b"", &options(zk::CreateMode::Container))
            .await
            .unwrap();
        assert_eq!(container.ephemeral_owner, 0);
        let ttl = options(zk::CreateMode::Persistent).with_ttl(Duration::from_secs(600));
        let (ttl_stat, _) = zk.create("/ttl", b"t", &ttl).await.unwrap();
        assert_eq!(ttl_stat.ephemeral_owner, 0);
        let ttl_seq =
            options(zk::CreateMode::PersistentSequential).with_ttl(Duration::from_secs(600));
        let (_, ts) = zk.create("/c/ttl-", b"", &ttl_seq).await.unwrap();
        assert_eq!(ts.into_i64(), 0);

        assert_eq!(
            zk.create("/p", b"", OPEN).await.unwrap_err(),
            zk::Error::NodeExists
        );
        assert_eq!(
            zk.create("/missing/x", b"", OPEN).await.unwrap_err(),
            zk::Error::NoNode
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_and_ttl_nodes_are_reaped() {
    deadline(async {
        let server = Server::start();
        let zk = client(&server).await;
        zk.create("/c", b"", &options(zk::CreateMode::Container))
            .await
            .unwrap();
        zk.create("/c/child", b"", OPEN).await.unwrap();
        let ttl = options(zk::CreateMode::Persistent).with_ttl(Duration::from_millis(500));
        zk.create("/ttl", b"", &ttl).await.unwrap();
        zk.delete("/c/child", None).await.unwrap();
        // A container that had a child and is empty again goes; so does an expired TTL node.
        wait_until("the empty container to be reaped", || async {
            zk.check_stat("/c").await.unwrap().is_none()
        })
        .await;
        wait_until("the TTL node to be reaped", || async {
            zk.check_stat("/ttl").await.unwrap().is_none()
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_versions_and_deletes() {
    deadline(async {
        let server = Server::start();
        let zk = client(&server).await;
        let (created, _) = zk.create("/n", b"v0", OPEN).await.unwrap();

        let set = zk.set_data("/n", b"v1", Some(0)).await.unwrap();
        assert_eq!(
            (set.version, set.czxid, set.data_length),
            (1, created.czxid, 2)
        );
        assert!(set.mzxid > created.mzxid);
        assert_eq!(
            zk.set_data("/n", b"stale", Some(0)).await.unwrap_err(),
            zk::Error::BadVersion
        );
        let any = zk.set_data("/n", b"v22", None).await.unwrap();
        assert_eq!(any.version, 2);
        assert_eq!(zk.get_data("/n").await.unwrap(), (b"v22".to_vec(), any));
        assert_eq!(zk.check_stat("/n").await.unwrap(), Some(any));
        assert_eq!(zk.check_stat("/none").await.unwrap(), None);
        assert_eq!(zk.get_data("/none").await.unwrap_err(), zk::Error::NoNode);
        assert_eq!(
            zk.set_data("/none", b"", None).await.unwrap_err(),
            zk::Error::NoNode
        );

        zk.create("/n/child", b"", OPEN).await.unwrap();
        assert_eq!(
            zk.delete("/n", None).await.unwrap_err(),
            zk::Error::NotEmpty
        );
        assert_eq!(
            zk.delete("/n/child", Some(3)).await.unwrap_err(),
            zk::Error::BadVersion
        );
        zk.delete("/n/child", Some(0)).await.unwrap();
        assert_eq!(
            zk.delete("/n/child", None).await.unwrap_err(),
            zk::Error::NoNode
        );
        zk.delete("/n", Some(2)).await.unwrap();
        assert_eq!(zk.check_stat("/n").await.unwrap(), None);

        // An empty value and a large one round-trip.
        zk.create("/empty", b"", OPEN).await.unwrap();
        assert_eq!(zk.get_data("/empty").await.unwrap().0, b"");
        let big = vec![7u8; 512 * 1024];
        zk.create("/big", &big, OPEN).await.unwrap();
        assert_eq!(zk.get_data("/big").await.unwrap().0, big);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_ephemerals_and_counts() {
    deadline(async {
        let server = Server::start();
        let zk = client(&server).await;
        zk.create("/a", b"", OPEN).await.unwrap();
        zk.create("/a/b", b"", OPEN).await.unwrap();
        zk.create("/a/b/c", b"", OPEN).await.unwrap();
        zk.create("/a/e1", b"", EPHEMERAL).await.unwrap();
        zk.create("/a/b/e2", b"", EPHEMERAL).await.unwrap();

        let mut children = zk.list_children("/a").await.unwrap();
        children.sort();
        assert_eq!(children, ["b", "e1"]);
        let (mut children, stat) = zk.get_children("/a").await.unwrap();
        children.sort();
        assert_eq!(children, ["b", "e1"]);
        assert_eq!(stat, zk.get_data("/a").await.unwrap().1);
        assert_eq!(
            zk.list_children("/none").await.unwrap_err(),
            zk::Error::NoNode
        );

        assert_eq!(zk.count_descendants_number("/a").await.unwrap(), 4);
        assert_eq!(zk.count_descendants_number("/a/b/c").await.unwrap(), 0);

        let mut ephemerals = zk.list_ephemerals("/a").await.unwrap();
        ephemerals.sort();
        assert_eq!(ephemerals, ["/a/b/e2", "/a/e1"]);
        assert_eq!(zk.list_ephemerals("/a/b").await.unwrap(), ["/a/b/e2"]);
        let other = client(&server).await;
        assert!(
            other.list_ephemerals("/").await.unwrap().is_empty(),
            "ephemerals are per session"
        );
        // The root lists the system node /zookeeper too.
        assert!(zk
            .list_children("/")
            .await
            .unwrap()
            .contains(&"zookeeper".to_owned()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_auth_and_whoami() {
    deadline(async {
        let server = Server::start();
        let alice = client(&server).await;
        let (acls, stat) = alice.get_acl("/").await.unwrap();
        assert_eq!(
            acls,
            [zk::Acl::new(
                zk::Permission::ALL,
                zk::AuthId::new("world", "anyone")
            )]
        );
        assert_eq!(stat.aversion, 0);

        let users = bounded("whoami", alice.list_auth_users()).await.unwrap();
        assert_eq!(users, [zk::AuthUser::new("ip", "127.0.0.1")]);
        bounded("auth", alice.auth("digest", b"alice:secret"))
            .await
            .unwrap();
        let mut users = alice.list_auth_users().await.unwrap();
        users.sort_by(|a, b| a.scheme().cmp(b.scheme()));
        assert_eq!(
            users,
            [
                zk::AuthUser::new("digest", "alice"),
                zk::AuthUser::new("ip", "127.0.0.1")
            ]
        );

        let private = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
        alice.create("/private", b"secret", &private).await.unwrap();
        let (acls, _) = alice.get_acl("/private").await.unwrap();
        let alice_id = zk::AuthId::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
        assert_eq!(acls, [zk::Acl::new(zk::Permission::ALL, alice_id.clone())]);

        let stranger = client(&server).await;
        assert_eq!(
            stranger.get_data("/private").await.unwrap_err(),
            zk::Error::NoAuth
        );
        assert_eq!(
            stranger.set_data("/private", b"x", None).await.unwrap_err(),
            zk::Error::NoAuth
        );
        assert_eq!(
            stranger.create("/private/x", b"", OPEN).await.unwrap_err(),
            zk::Error::NoAuth
        );
        assert_eq!(
            stranger.list_children("/private").await.unwrap_err(),
            zk::Error::NoAuth
        );
        let friend = client_with(&server, |c| c.with_auth("digest", b"alice:secret")).await;
        assert_eq!(friend.get_data("/private").await.unwrap().0, b"secret");

        // setAcl checks the ACL version and bumps it.
        let read_only = [zk::Acl::new(
            zk::Permission::READ,
            zk::AuthId::new("world", "anyone"),
        )];
        let read_only = zk::Acls::new(&read_only);
        assert_eq!(
            alice
                .set_acl("/private", &read_only, Some(3))
                .await
                .unwrap_err(),
            zk::Error::BadVersion
        );
        let stat = alice
            .set_acl("/private", &read_only, Some(0))
            .await
            .unwrap();
        assert_eq!(stat.aversion, 1);
        assert_eq!(stranger.get_data("/private").await.unwrap().0, b"secret");
        assert_eq!(
            stranger.set_data("/private", b"x", None).await.unwrap_err(),
            zk::Error::NoAuth
        );
        assert_eq!(
            alice
                .set_acl("/private", &read_only, None)
                .await
                .unwrap_err(),
            zk::Error::NoAuth
        );
        assert_eq!(alice.get_acl("/none").await.unwrap_err(), zk::Error::NoNode);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_write_and_read() {
    deadline(async {
    let server = Server::start();
    let zk = client(&server).await;
    zk.create("/m", b"m0", OPEN).await.unwrap();

    let mut writer = zk.new_multi_writer();
    writer.add_create("/m/a", b"a", OPEN).unwrap();
    writer.add_check_version("/m", 0).unwrap();
    writer.add_set_data("/m", b"m1", Some(0)).unwrap();
    writer.add_create("/m/tmp", b"", OPEN).unwrap();
    writer.add_delete("/m/tmp", None).unwrap();
    let results = writer.commit().await.unwrap();
    assert_eq!(results.len(), 5);
    assert!(matches!(&results[0], zk::MultiWriteResult::Create { path, .. } if path == "/m/a"));
    assert_eq!(results[1], zk::MultiWriteResult::Check);
    let zk::MultiWriteResult::SetData { stat: m_stat } = &results[2] else {
        panic!("{results:?}")
    };
    assert_eq!(m_stat.version, 1);
    assert_eq!(results[4], zk::MultiWriteResult::Delete);
    let (_, a_stat) = zk.get_data("/m/a").await.unwrap();
    assert_eq!(a_stat.czxid, m_stat.mzxid, "one multi is one txn");

    // A failing op rolls back everything before it.
    writer.add_create("/m/b", b"", OPEN).unwrap();
    writer.add_set_data("/m", b"m2", None).unwrap();
    writer.add_check_version("/m", 7).unwrap();
    writer.add_create("/m/c", b"", OPEN).unwrap();
    let error = writer.commit().await.unwrap_err();
    assert_eq!(
        error,
        zk::MultiWriteError::OperationFailed {
            index: 2,
            source: zk::Error::BadVersion
        }
    );
    assert_eq!(zk.check_stat("/m/b").await.unwrap(), None);
    assert_eq!(zk.get_data("/m").await.unwrap().0, b"m1");

    writer.add_delete("/m/none", None).unwrap();
    let error = writer.commit().await.unwrap_err();
    assert_eq!(
        error,
        zk::MultiWriteError::OperationFailed {
            index: 0,
            source: zk::Error::NoNode
        }
    );
    writer.add_create("/m/a", b"", OPEN).unwrap();
    let error = writer.commit().await.unwrap_err();
    assert_eq!(
        error,
        zk::MultiWriteError::OperationFailed {
            index: 0,
            source: zk::Error::NodeExists
        }
    );

    let mut reader = zk.new_multi_reader();
    reader.add_get_data("/m").unwrap();
    reader.add_get_children("/m").unwrap();
    reader.add_get_data("/m/none").unwrap();
    let results = reader.commit().await.unwrap();
    assert_eq!(results.len(), 3);
    assert!(
        matches!(&results[0], zk::MultiReadResult::Data { data, stat } if data == b"m1" && stat.version == 1)
    );
    assert!(
        matches!(&results[1], zk::MultiReadResult::Children { children } if children == &["a"])
    );
    assert!(matches!(
        &results[2],
        zk::MultiReadResult::Error {
            err: zk::Error::NoNode
        }
    ));

    // The check writer: a version check guarding a write.
    let mut checked = zk.new_check_writer("/m", Some(1)).unwrap();
    checked.add_set_data("/m", b"m3", None).unwrap();
    checked.commit().await.unwrap();
    assert_eq!(zk.get_data("/m").await.unwrap().0, b"m3");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_then_read_sees_other_sessions_write() {
    deadline(async {
        let server = Server::start();
        let writer = client(&server).await;
        let reader = client(&server).await;
        writer.create("/s", b"written", OPEN).await.unwrap();
        reader.sync("/s").await.unwrap();
        assert_eq!(reader.get_data("/s").await.unwrap().0, b"written");
        reader.sync("/").await.unwrap();
    })
    .await;
}

// `remove()` is deprecated in favour of drop, but only it reports the server's answer.
#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneshot_watches() {
    deadline(async {
        let server = Server::start();
        let zk = client(&server).await;
        let writer = client(&server).await;

        // exists on a missing node leaves a watch that fires on create.
        let (stat, created) = zk.check_and_watch_stat("/w").await.unwrap();
        assert_eq!(stat, None);
        let (w_stat, _) = writer.create("/w", b"0", OPEN).await.unwrap();
        let event = bounded("NodeCreated", created.changed()).await;
        assert_eq!(
            (event.event_type, event.path.as_str()),
            (zk::EventType::NodeCreated, "/w")
        );
        assert!(event.zxid == zk::WatchedEvent::NO_ZXID || event.zxid == w_stat.czxid);

        let (_, _, data) = zk.get_and_watch_data("/w").await.unwrap();
        let (_, exists) = zk.check_and_watch_stat("/w").await.unwrap();
        let (_, children) = zk.list_and_watch_children("/w").await.unwrap();
        let (_, _, children2) = zk.get_and_watch_children("/w").await.unwrap();
        writer.set_data("/w", b"1", None).await.unwrap();
        let event = bounded("NodeDataChanged", data.changed()).await;
        assert_eq!(
            (event.event_type, event.path.as_str()),
            (zk::EventType::NodeDataChanged, "/w")
        );
        let event = bounded("NodeDataChanged (exists)", exists.changed()).await;
        assert_eq!(event.event_type, zk::EventType::NodeDataChanged);

        writer.create("/w/kid", b"", OPEN).await.unwrap();
        let event = bounded("NodeChildrenChanged", children.changed()).await;
        assert_eq!(
            (event.event_type, event.path.as_str()),
            (zk::EventType::NodeChildrenChanged, "/w")
        );
        let event = bounded("NodeChildrenChanged (getChildren2)", children2.changed()).await;
        assert_eq!(event.event_type, zk::EventType::NodeChildrenChanged);

        let (_, _, data) = zk.get_and_watch_data("/w/kid").await.unwrap();
        let (_, kid_children) = zk.list_and_watch_children("/w/kid").await.unwrap();
        let (_, parent_children) = zk.list_and_watch_children("/w").await.unwrap();
        writer.delete("/w/kid", None).await.unwrap();
        let event = bounded("NodeDeleted", data.changed()).await;
        assert_eq!(
            (event.event_type, event.path.as_str()),
            (zk::EventType::NodeDeleted, "/w/kid")
        );
        let event = bounded("NodeDeleted (child watch)", kid_children.changed()).await;
        assert_eq!(event.event_type, zk::EventType::NodeDeleted);
        let event = bounded("parent NodeChildrenChanged", parent_children.changed()).await;
        assert_eq!(
            (event.event_type, event.path.as_str()),
            (zk::EventType::NodeChildrenChanged, "/w")
        );

        // Removing a watch that has not fired succeeds; the server keeps serving the session.
        let (_, _, removable) = zk.get_and_watch_data("/w").await.unwrap();
        bounded("remove the data watch", removable.remove())
            .await
            .unwrap();
        let (_, removable) = zk.list_and_watch_children("/w").await.unwrap();
        bounded("remove the child watch", removable.remove())
            .await
            .unwrap();
        writer.set_data("/w", b"2", None).await.unwrap();
        assert_eq!(zk.get_data("/w").await.unwrap().0, b"2");
    })
    .await;
}

#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watches() {
    deadline(async {
        let server = Server::start();
        let zk = client(&server).await;
        let writer = client(&server).await;
        writer.create("/pw", b"", OPEN).await.unwrap();

        // One session per mode: a server keeps one watch mode per (connection, path), and
        // ZooKeeper replaces PERSISTENT by PERSISTENT_RECURSIVE when both are added.
        let recursive = client(&server).await;
        let mut node = zk.watch("/pw", zk::AddWatchMode::Persistent).await.unwrap();
        let mut tree = recursive
            .watch("/pw", zk::AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        writer.set_data("/pw", b"1", None).await.unwrap();
        writer.set_data("/pw", b"2", None).await.unwrap();
        writer.create("/pw/a", b"", OPEN).await.unwrap();
        writer.set_data("/pw/a", b"x", None).await.unwrap();
        writer.create("/pw/a/b", b"", OPEN).await.unwrap();
        writer.delete("/pw/a/b", None).await.unwrap();
        writer.delete("/pw/a", None).await.unwrap();

        let mut got = Vec::new();
        for _ in 0..4 {
            let event = bounded("a persistent event", node.changed()).await;
            got.push((event.event_type, event.path));
        }
        use zk::EventType::*;
        let want = [
            (NodeDataChanged, "/pw"),
            (NodeDataChanged, "/pw"),
            (NodeChildrenChanged, "/pw"),
            (NodeChildrenChanged, "/pw"),
        ];
        assert_eq!(got, want.map(|(t, p)| (t, p.to_owned())));

        // Recursive: created, changed and deleted for the node and every descendant, never
        // NodeChildrenChanged.
        let mut got = Vec::new();
        for _ in 0..7 {
            let event = bounded("a persistent recursive event", tree.changed()).await;
            got.push((event.event_type, event.path));
        }
        let want = [
            (NodeDataChanged, "/pw"),
            (NodeDataChanged, "/pw"),
            (NodeCreated, "/pw/a"),
            (NodeDataChanged, "/pw/a"),
            (NodeCreated, "/pw/a/b"),
            (NodeDeleted, "/pw/a/b"),
            (NodeDeleted, "/pw/a"),
        ];
        assert_eq!(got, want.map(|(t, p)| (t, p.to_owned())));

        bounded("remove the persistent watch", node.remove())
            .await
            .unwrap();
        bounded("remove the recursive watch", tree.remove())
            .await
            .unwrap();
        // Another watcher on the same node still works after the removals.
        let mut again = zk.watch("/pw", zk::AddWatchMode::Persistent).await.unwrap();
        writer.set_data("/pw", b"3", None).await.unwrap();
        let event = bounded("an event after re-adding", again.changed()).await;
        assert_eq!(
            (event.event_type, event.path.as_str()),
            (NodeDataChanged, "/pw")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_go_when_the_session_expires() {
    deadline(async {
        let server = Server::start();
        let observer = client(&server).await;
        // A detached client does not close its session when dropped: the connection just goes
        // away, as when a client process dies, and the session must expire on the server.
        let owner = client_with(&server, |c| {
            c.with_session_timeout(Duration::from_secs(2))
                .with_detached()
        })
        .await;
        owner.create("/gone", b"", EPHEMERAL).await.unwrap();
        let session = owner.session_id();
        assert_eq!(
            observer.get_data("/gone").await.unwrap().1.ephemeral_owner,
            session.0
        );
        drop(owner);
        wait_until("the expired session's ephemeral to vanish", || async {
            observer.check_stat("/gone").await.unwrap().is_none()
        })
        .await;
        assert!(observer.list_ephemerals("/").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_go_when_the_session_closes() {
    deadline(async {
        let server = Server::start();
        let observer = client(&server).await;
        let owner = client(&server).await;
        owner.create("/closing", b"", EPHEMERAL).await.unwrap();
        let mut state = owner.state_watcher();
        drop(owner);
        assert_eq!(
            bounded("the client to close", state.changed()).await,
            zk::SessionState::Closed
        );
        wait_until("the closed session's ephemeral to vanish", || async {
            observer.check_stat("/closing").await.unwrap().is_none()
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_resumes_with_id_and_password() {
    deadline(async {
        let server = Server::start();
        let first = client_with(&server, |c| c.with_detached()).await;
        first.create("/mine", b"", EPHEMERAL).await.unwrap();
        let id = first.session_id();
        let session = first.into_session();

        // Reattach on a new connection with the same id and password: the ephemeral survives.
        let second = client_with(&server, |c| c.with_session(session.clone())).await;
        assert_eq!(second.session_id(), id);
        assert_eq!(
            second.get_data("/mine").await.unwrap().1.ephemeral_owner,
            id.0
        );
        second.create("/mine2", b"", EPHEMERAL).await.unwrap();

        // Closing it ends the session; reattaching then is refused as expired.
        let mut state = second.state_watcher();
        drop(second);
        assert_eq!(
            bounded("the client to close", state.changed()).await,
            zk::SessionState::Closed
        );
        let addr = server.addr();
        let resumed = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_session(session)
            .connect(&addr);
        let error = bounded("reattach to a closed session", resumed)
            .await
            .unwrap_err();
        assert_eq!(error, zk::Error::SessionExpired);
        let observer = client(&server).await;
        assert_eq!(observer.check_stat("/mine").await.unwrap(), None);
        assert_eq!(observer.check_stat("/mine2").await.unwrap(), None);
    })
    .await;
}
