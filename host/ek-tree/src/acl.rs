//! ZooKeeper's ACL rules (zk-wire §8): digest ids, permission checks, validation and
//! `auth` expansion of ACL lists in create/setACL, and the masking getACL applies.

use base64::Engine as _;
use ek_types::{perms, Acl, ErrorCode, Id};
use sha1::{Digest as _, Sha1};
use std::net::IpAddr;

/// The `digest` id for `user:password`: `user:base64(sha1("user:password"))`.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    let encoded = base64::engine::general_purpose::STANDARD.encode(hash);
    format!("{user}:{encoded}")
}

/// Whether a caller holding `ids` may do something needing any bit of `perm` on a node
/// with `acl`. An empty ACL allows everything, and so does a `super` id.
pub fn check(acl: &[Acl], perm: i32, ids: &[Id]) -> bool {
    if acl.is_empty() || ids.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter()
        .filter(|entry| entry.perms & perm != 0)
        .any(|entry| entry_matches(&entry.id, ids))
}

fn entry_matches(acl_id: &Id, ids: &[Id]) -> bool {
    if acl_id.scheme == "world" {
        return acl_id.id == "anyone";
    }
    ids.iter()
        .filter(|id| id.scheme == acl_id.scheme)
        .any(|id| match acl_id.scheme.as_str() {
            "ip" => ip_matches(&id.id, &acl_id.id),
            _ => id.id == acl_id.id,
        })
}

/// Whether the client address `client` falls in the ACL expression `addr` or `addr/bits`.
fn ip_matches(client: &str, expr: &str) -> bool {
    let (Ok(client), Some((net, bits))) = (client.parse::<IpAddr>(), parse_ip_expr(expr)) else {
        return false;
    };
    let (client, net) = match (client, net) {
        (IpAddr::V4(c), IpAddr::V4(n)) => (c.octets().to_vec(), n.octets().to_vec()),
        (IpAddr::V6(c), IpAddr::V6(n)) => (c.octets().to_vec(), n.octets().to_vec()),
        _ => return false,
    };
    prefix_equal(&client, &net, bits)
}

fn prefix_equal(a: &[u8], b: &[u8], bits: u32) -> bool {
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

/// Parses `addr` or `addr/bits` into the address and the prefix length.
fn parse_ip_expr(expr: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (expr, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(bits) => bits.parse::<u32>().ok().filter(|b| *b <= width)?,
        None => width,
    };
    Some((addr, bits))
}

/// Whether an explicit ACL id is well formed for its scheme.
fn id_is_valid(id: &Id) -> bool {
    match id.scheme.as_str() {
        "world" => id.id == "anyone",
        "digest" => digest_id_is_valid(&id.id),
        "ip" => parse_ip_expr(&id.id).is_some(),
        "sasl" | "x509" => !id.id.is_empty(),
        _ => false,
    }
}

/// Java's `id.split(":").length == 2`, which drops trailing empty parts.
fn digest_id_is_valid(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// Whether a caller id is an authenticated identity that `auth` expands to.
fn is_authenticated(id: &Id) -> bool {
    !matches!(id.scheme.as_str(), "ip" | "world" | "super")
}

/// Validates the ACL list of a create or setACL (ZooKeeper's `fixupACL`): drops exact
/// duplicates, replaces each `auth` entry by one entry per authenticated id of the caller,
/// and rejects with [`ErrorCode::InvalidAcl`] an empty list, permission bits outside
/// [`perms::ALL`], an unknown scheme, a malformed id, or an `auth` entry when the caller
/// has no authenticated id.
pub fn fixup(acl: &[Acl], caller_ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        if entry.perms & !perms::ALL != 0 {
            return Err(ErrorCode::InvalidAcl);
        }
        if entry.id.scheme == "auth" {
            let before = fixed.len();
            fixed.extend(
                caller_ids
                    .iter()
                    .filter(|id| is_authenticated(id))
                    .map(|id| Acl {
                        perms: entry.perms,
                        id: id.clone(),
                    }),
            );
            if fixed.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if id_is_valid(&entry.id) {
            fixed.push(entry.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(fixed)
}

/// Replaces each `digest` id `user:hash` by `user:x`, as getACL shows ACLs to a caller
/// without ADMIN.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| match entry.id.id.split_once(':') {
            Some((user, _)) if entry.id.scheme == "digest" => Acl {
                perms: entry.perms,
                id: Id::new("digest", format!("{user}:x")),
            },
            _ => entry.clone(),
        })
        .collect()
}

/// What getACL returns to a caller: the ACL as is with ADMIN, masked with READ only, or
/// `None` (NoAuth) with neither.
pub fn acl_for_get(acl: &[Acl], ids: &[Id]) -> Option<Vec<Acl>> {
    if check(acl, perms::ADMIN, ids) {
        Some(acl.to_vec())
    } else if check(acl, perms::READ, ids) {
        Some(mask_digests(acl))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
