//! ZooKeeper path rules (`PathUtils.validatePath`) and path helpers.

/// Why a path is not a valid znode path. The server answers all of these with BadArguments.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("path length must be > 0")]
    Empty,
    /// The path does not start with `/`.
    #[error("path must start with / character")]
    NotAbsolute,
    /// The path ends with `/` and is not the root.
    #[error("path must not end with / character")]
    TrailingSlash,
    /// The path contains a NUL character.
    #[error("null character not allowed @{0}")]
    NulChar(usize),
    /// The path contains `//`.
    #[error("empty node name specified @{0}")]
    EmptyComponent(usize),
    /// The path contains a `.` or `..` component.
    #[error("relative paths not allowed @{0}")]
    Relative(usize),
    /// The path contains a control, surrogate-range, private-use or non-BMP character.
    #[error("invalid character @{0}")]
    InvalidChar(usize),
}

/// Checks a path as ZooKeeper does. Positions count UTF-8 bytes.
pub fn validate(path: &str) -> Result<(), PathError> {
    let bytes = path.as_bytes();
    if bytes.is_empty() {
        return Err(PathError::Empty);
    }
    if bytes[0] != b'/' {
        return Err(PathError::NotAbsolute);
    }
    if bytes.len() == 1 {
        return Ok(());
    }
    if bytes[bytes.len() - 1] == b'/' {
        return Err(PathError::TrailingSlash);
    }
    for component_start in component_starts(path) {
        let component = path[component_start..].split('/').next().unwrap_or("");
        if component.is_empty() {
            return Err(PathError::EmptyComponent(component_start));
        }
        if component == "." || component == ".." {
            return Err(PathError::Relative(component_start));
        }
    }
    for (position, ch) in path.char_indices() {
        if ch == '\0' {
            return Err(PathError::NulChar(position));
        }
        if is_invalid_char(ch) {
            return Err(PathError::InvalidChar(position));
        }
    }
    Ok(())
}

/// Byte offsets where each component starts (just after each `/`).
fn component_starts(path: &str) -> impl Iterator<Item = usize> + '_ {
    path.match_indices('/').map(|(index, _)| index + 1)
}

fn is_invalid_char(ch: char) -> bool {
    let code = ch as u32;
    (0x01..=0x1f).contains(&code)
        || (0x7f..=0x9f).contains(&code)
        || (0xd800..=0xf8ff).contains(&code)
        || (0xfff0..=0xffff).contains(&code)
        // Java strings hold these as surrogate pairs, which ZooKeeper rejects.
        || code > 0xffff
}

/// The parent of a valid path (`/` for top-level nodes and for the root itself).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(index) => &path[..index],
    }
}

/// The last component of a valid path (empty for the root).
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(index) => &path[index + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_zookeeper_paths() {
        for path in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/..a",
            "/a/...",
            "/zookeeper/quota",
            "/ü",
        ] {
            assert_eq!(validate(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(validate(""), Err(PathError::Empty));
        assert_eq!(validate("a"), Err(PathError::NotAbsolute));
        assert_eq!(validate("/a/"), Err(PathError::TrailingSlash));
        assert_eq!(validate("/a//b"), Err(PathError::EmptyComponent(3)));
        assert_eq!(validate("/a/./b"), Err(PathError::Relative(3)));
        assert_eq!(validate("/a/.."), Err(PathError::Relative(3)));
        assert_eq!(validate("/a\0"), Err(PathError::NulChar(2)));
        assert_eq!(validate("/a\u{1}"), Err(PathError::InvalidChar(2)));
        assert_eq!(validate("/\u{e000}"), Err(PathError::InvalidChar(1)));
        assert_eq!(validate("/\u{1f600}"), Err(PathError::InvalidChar(1)));
    }

    #[test]
    fn parent_and_name() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
