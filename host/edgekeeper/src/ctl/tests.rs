use zookeeper_client as zk;

use super::{describe, event_type_name, format_stat, java_date};

#[test]
fn java_date_matches_date_to_string_in_utc() {
    assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    assert_eq!(java_date(999), "Thu Jan 01 00:00:00 UTC 1970");
    assert_eq!(java_date(-1), "Wed Dec 31 23:59:59 UTC 1969");
    // 2024-02-29T13:45:07.123Z, a leap day.
    assert_eq!(java_date(1_709_214_307_123), "Thu Feb 29 13:45:07 UTC 2024");
    // 2000-03-01T00:00:00Z, after a century leap day.
    assert_eq!(java_date(951_868_800_000), "Wed Mar 01 00:00:00 UTC 2000");
    // 2038-01-19T03:14:08Z, past i32 seconds.
    assert_eq!(java_date(2_147_483_648_000), "Tue Jan 19 03:14:08 UTC 2038");
}

#[test]
fn stat_is_printed_like_zkcli() {
    let stat = zk::Stat {
        czxid: 0x1_0000_0002,
        mzxid: 0x1_0000_0005,
        pzxid: 0x1_0000_0007,
        ctime: 1_709_214_307_123,
        mtime: 0,
        version: 3,
        cversion: 2,
        aversion: 0,
        ephemeral_owner: 0x1000_0abc_def0_0001,
        data_length: 11,
        num_children: 1,
    };
    let expected = "\
cZxid = 0x100000002
ctime = Thu Feb 29 13:45:07 UTC 2024
mZxid = 0x100000005
mtime = Thu Jan 01 00:00:00 UTC 1970
pZxid = 0x100000007
cversion = 2
dataVersion = 3
aclVersion = 0
ephemeralOwner = 0x10000abcdef00001
dataLength = 11
numChildren = 1
";
    assert_eq!(format_stat(&stat), expected);
}

#[test]
fn negative_zxids_print_as_java_long_to_hex_string() {
    let stat = zk::Stat {
        czxid: -1,
        mzxid: 0,
        pzxid: 0,
        ctime: 0,
        mtime: 0,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 0,
        num_children: 0,
    };
    assert!(format_stat(&stat).starts_with("cZxid = 0xffffffffffffffff\n"));
    assert!(format_stat(&stat).contains("\nephemeralOwner = 0x0\n"));
}

#[test]
fn errors_use_zookeeper_wording() {
    let cases = [
        (zk::Error::NoNode, "Node does not exist: /x"),
        (zk::Error::NodeExists, "Node already exists: /x"),
        (zk::Error::NotEmpty, "Node not empty: /x"),
        (
            zk::Error::NoChildrenForEphemerals,
            "Ephemerals cannot have children: /x",
        ),
        (zk::Error::BadVersion, "version No is not valid : /x"),
        (zk::Error::NoAuth, "Insufficient permission : /x"),
        (zk::Error::InvalidAcl, "Acl is not valid : /x"),
        (
            zk::Error::ConnectionLoss,
            "KeeperErrorCode = ConnectionLoss for /x",
        ),
        (
            zk::Error::Timeout,
            "KeeperErrorCode = OperationTimeout for /x",
        ),
        (
            zk::Error::SessionExpired,
            "KeeperErrorCode = Session expired for /x",
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(describe(&error, "/x"), expected);
    }
}

#[test]
fn event_types_use_zookeeper_names() {
    assert_eq!(
        event_type_name(zk::EventType::NodeDataChanged),
        "NodeDataChanged"
    );
    assert_eq!(
        event_type_name(zk::EventType::NodeChildrenChanged),
        "NodeChildrenChanged"
    );
    assert_eq!(event_type_name(zk::EventType::Session), "None");
}
