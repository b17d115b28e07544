use super::*;

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id::new(scheme, id),
    }
}

#[test]
fn digest_id_matches_zookeeper() {
    // The example from ZooKeeper's administrator guide.
    assert_eq!(
        digest_id("super:test"),
        "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    );
    assert_eq!(digest_id("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
}

#[test]
fn empty_acl_and_super_allow_everything() {
    assert!(check(&[], perms::ADMIN, &[]));
    let only_bob = [acl(perms::ALL, "digest", "bob:x")];
    assert!(!check(&only_bob, perms::READ, &[Id::new("ip", "10.0.0.1")]));
    assert!(check(&only_bob, perms::READ, &[Id::new("super", "")]));
}

#[test]
fn world_digest_and_permission_bits() {
    let list = [
        acl(perms::READ, "world", "anyone"),
        acl(perms::WRITE, "digest", "bob:h"),
    ];
    assert!(check(&list, perms::READ, &[]));
    assert!(!check(&list, perms::WRITE, &[]));
    assert!(check(&list, perms::WRITE, &[Id::new("digest", "bob:h")]));
    assert!(!check(
        &list,
        perms::WRITE,
        &[Id::new("digest", "bob:other")]
    ));
    assert!(!check(&list, perms::ADMIN, &[Id::new("digest", "bob:h")]));
    assert!(!check(
        &[acl(perms::ALL, "world", "someone")],
        perms::READ,
        &[]
    ));
}

#[test]
fn ip_addresses_and_cidrs() {
    let v4 = [acl(perms::READ, "ip", "10.1.0.0/16")];
    assert!(check(&v4, perms::READ, &[Id::new("ip", "10.1.200.3")]));
    assert!(!check(&v4, perms::READ, &[Id::new("ip", "10.2.0.1")]));
    assert!(!check(&v4, perms::READ, &[Id::new("ip", "::1")]));
    let exact = [acl(perms::READ, "ip", "127.0.0.1")];
    assert!(check(&exact, perms::READ, &[Id::new("ip", "127.0.0.1")]));
    assert!(!check(&exact, perms::READ, &[Id::new("ip", "127.0.0.2")]));
    let odd = [acl(perms::READ, "ip", "192.168.0.0/23")];
    assert!(check(&odd, perms::READ, &[Id::new("ip", "192.168.1.9")]));
    assert!(!check(&odd, perms::READ, &[Id::new("ip", "192.168.2.9")]));
    let v6 = [acl(perms::READ, "ip", "fd00::/8")];
    assert!(check(&v6, perms::READ, &[Id::new("ip", "fd12:3456::1")]));
    assert!(!check(&v6, perms::READ, &[Id::new("ip", "fe80::1")]));
    assert!(!check(&v6, perms::READ, &[Id::new("ip", "not-an-ip")]));
}

#[test]
fn fixup_rejects_bad_lists() {
    let ids = [Id::new("ip", "127.0.0.1")];
    for bad in [
        vec![],
        vec![acl(32, "world", "anyone")],
        vec![acl(perms::ALL, "world", "everyone")],
        vec![acl(perms::ALL, "nosuch", "x")],
        vec![acl(perms::ALL, "super", "")],
        vec![acl(perms::ALL, "digest", "nocolon")],
        vec![acl(perms::ALL, "digest", "a:b:c")],
        vec![acl(perms::ALL, "ip", "10.0.0.0/33")],
        vec![acl(perms::ALL, "ip", "10.0.0")],
        vec![acl(perms::ALL, "ip", "::1/129")],
        vec![acl(perms::ALL, "auth", "")],
    ] {
        assert_eq!(fixup(&bad, &ids), Err(ErrorCode::InvalidAcl), "{bad:?}");
    }
}

#[test]
fn fixup_expands_auth_and_drops_duplicates() {
    let ids = [
        Id::new("ip", "127.0.0.1"),
        Id::new("digest", "bob:h"),
        Id::new("super", ""),
        Id::new("x509", "CN=alice"),
    ];
    let list = [
        acl(perms::READ, "auth", ""),
        acl(perms::ALL, "ip", "10.0.0.0/8"),
        acl(perms::ALL, "ip", "10.0.0.0/8"),
        acl(perms::ADMIN, "digest", "carol:h"),
    ];
    assert_eq!(
        fixup(&list, &ids),
        Ok(vec![
            acl(perms::READ, "digest", "bob:h"),
            acl(perms::READ, "x509", "CN=alice"),
            acl(perms::ALL, "ip", "10.0.0.0/8"),
            acl(perms::ADMIN, "digest", "carol:h"),
        ])
    );
    assert_eq!(fixup(&Acl::open_unsafe(), &[]), Ok(Acl::open_unsafe()));
}

#[test]
fn get_acl_masks_digests_without_admin() {
    let list = [
        acl(perms::READ, "world", "anyone"),
        acl(perms::ADMIN, "digest", "bob:h"),
    ];
    assert_eq!(
        acl_for_get(&list, &[]),
        Some(vec![
            acl(perms::READ, "world", "anyone"),
            acl(perms::ADMIN, "digest", "bob:x")
        ])
    );
    assert_eq!(
        acl_for_get(&list, &[Id::new("digest", "bob:h")]),
        Some(list.to_vec())
    );
    assert_eq!(
        acl_for_get(&[acl(perms::WRITE, "digest", "bob:h")], &[]),
        None
    );
}
