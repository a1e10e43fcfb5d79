/// A name pattern where `*` is any run of characters and `?` any one
/// character (as in exception name patterns), compiled once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    /// The pattern has no wildcard: it matches itself only.
    literal: bool,
    /// The pattern's characters, when it is not ASCII.
    chars: Option<Box<[char]>>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob {
            pattern: pattern.to_owned(),
            literal: !pattern.contains(['*', '?']),
            chars: (!pattern.is_ascii()).then(|| pattern.chars().collect()),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        if self.literal {
            return self.pattern == name;
        }
        match &self.chars {
            // Object names are nearly always ASCII: compare bytes, no copy.
            None if name.is_ascii() => {
                wildcard(self.pattern.as_bytes(), name.as_bytes(), b'*', b'?')
            }
            None => {
                let pattern: Vec<char> = self.pattern.chars().collect();
                let name: Vec<char> = name.chars().collect();
                wildcard(&pattern, &name, '*', '?')
            }
            Some(pattern) => {
                let name: Vec<char> = name.chars().collect();
                wildcard(pattern, &name, '*', '?')
            }
        }
    }
}

/// Matches `name` against a glob where `*` is any run of characters and `?`
/// any one character (as in exception name patterns).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    Glob::new(pattern).matches(name)
}

/// Iterative matcher with backtracking to the last `*`: linear in practice
/// and no recursion, so hostile patterns cannot blow the stack.
fn wildcard<T: Copy + PartialEq>(p: &[T], n: &[T], star: T, one: T) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == one || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == star {
            last_star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = last_star {
            pi = sp + 1;
            ni = sn + 1;
            last_star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == star)
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs() {
        assert!(glob_matches("web-*", "web-frontend"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "abbc"));
        assert!(!glob_matches("web-*", "api-web"));
        assert!(glob_matches("*-db-*", "orders-db-0"));
        assert!(!glob_matches("exact", "exact2"));
        assert!(glob_matches("exact", "exact"));
        assert!(glob_matches("système:*", "système:nœud"));
        assert!(glob_matches("sys?", "sysé"));
        assert!(!glob_matches("sys?", "sysé2"));
    }
}
