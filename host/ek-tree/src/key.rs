//! Map keys: a path whose last `/` is replaced by [`SEP`].
//!
//! Valid paths never contain `\u{2}`, and it sorts below every byte a path name may hold,
//! so all children of one node share the prefix `parent + SEP` and sit next to each other
//! in byte order. The root's key is `SEP` alone (empty parent part, empty name).

/// The separator between the parent part and the name.
pub(crate) const SEP: char = '\u{2}';

/// The byte after [`SEP`], bounding a children range from above.
const SEP_NEXT: char = '\u{3}';

/// The key of a path, or `None` when the path has no `/` at all.
pub(crate) fn key_of(path: &str) -> Option<String> {
    let slash = path.rfind('/')?;
    let mut key = String::with_capacity(path.len());
    key.push_str(&path[..slash]);
    key.push(SEP);
    key.push_str(&path[slash + 1..]);
    Some(key)
}

/// The parent part and the name of a key.
pub(crate) fn split_key(key: &str) -> (&str, &str) {
    match key.find(SEP) {
        Some(index) => (&key[..index], &key[index + SEP.len_utf8()..]),
        None => (key, ""),
    }
}

/// The path a key stands for.
pub(crate) fn path_of(key: &str) -> String {
    let (parent, name) = split_key(key);
    let mut path = String::with_capacity(key.len());
    path.push_str(parent);
    path.push('/');
    path.push_str(name);
    path
}

/// The key of the parent of the node with this key (the root is its own parent).
pub(crate) fn parent_key(key: &str) -> String {
    let (parent, _) = split_key(key);
    if parent.is_empty() {
        return SEP.to_string();
    }
    key_of(parent).unwrap_or_else(|| SEP.to_string())
}

/// The half-open key range `[low, high)` holding exactly the children of `path`
/// (for the root it also holds the root's own key, which has an empty name).
pub(crate) fn children_range(path: &str) -> (String, String) {
    let parent = if path == "/" { "" } else { path };
    let mut low = String::with_capacity(parent.len() + 1);
    low.push_str(parent);
    let mut high = low.clone();
    low.push(SEP);
    high.push(SEP_NEXT);
    (low, high)
}

/// Feeds the path of a key to a hasher without building the path.
pub(crate) fn hash_path(key: &str, hasher: &mut xxhash_rust::xxh3::Xxh3) {
    let (parent, name) = split_key(key);
    let len = (parent.len() + 1 + name.len()) as u64;
    hasher.update(&len.to_le_bytes());
    hasher.update(parent.as_bytes());
    hasher.update(b"/");
    hasher.update(name.as_bytes());
}

/// A stored key: reference-counted without a weak count (8 bytes less per key than
/// `std::sync::Arc<str>`, which for typical keys is one allocator size class less).
pub(crate) type Key = triomphe::Arc<str>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for path in ["/", "/a", "/a/b", "/zookeeper/config", "/a/b/c-0000000001"] {
            let key = key_of(path).expect("absolute");
            assert_eq!(path_of(&key), path);
        }
        assert_eq!(key_of("a"), None);
        assert_eq!(parent_key(&key_of("/a/b").unwrap()), key_of("/a").unwrap());
        assert_eq!(parent_key(&key_of("/a").unwrap()), key_of("/").unwrap());
        assert_eq!(parent_key(&key_of("/").unwrap()), key_of("/").unwrap());
    }

    #[test]
    fn children_are_contiguous() {
        let mut keys: Vec<String> = ["/a", "/a/b", "/a/b/c", "/a-b", "/a/c", "/b", "/a0", "/"]
            .iter()
            .map(|p| key_of(p).unwrap())
            .collect();
        keys.sort();
        let (low, high) = children_range("/a");
        let children: Vec<String> = keys
            .iter()
            .filter(|k| k.as_str() >= low.as_str() && k.as_str() < high.as_str())
            .map(|k| path_of(k))
            .collect();
        assert_eq!(children, ["/a/b", "/a/c"]);
    }
}
