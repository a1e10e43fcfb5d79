//! The service accounts an RBAC analysis reasons about, each known by a
//! number: its place in namespace and name order.

use std::ops::Range;

/// A service account: `(namespace, name)`.
pub type AccountKey = (String, String);

/// An account's place in [`Accounts`].
pub type AccountId = usize;

/// Service accounts sorted by namespace and name, each once, packed into
/// one string: a large cluster has hundreds of thousands of accounts, and
/// two strings of their own cost each of them four times its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    text: String,
    /// Where each account's namespace and then its name end in `text`.
    ends: Vec<(usize, usize)>,
}

impl Accounts {
    /// The accounts of `keys` (namespace and name), sorted, each once.
    pub fn new(mut keys: Vec<(&str, &str)>) -> Accounts {
        keys.sort_unstable();
        keys.dedup();
        let mut accounts = Accounts {
            text: String::with_capacity(keys.iter().map(|(ns, name)| ns.len() + name.len()).sum()),
            ends: Vec::with_capacity(keys.len()),
        };
        for (namespace, name) in keys {
            accounts.text.push_str(namespace);
            let namespace_end = accounts.text.len();
            accounts.text.push_str(name);
            accounts.ends.push((namespace_end, accounts.text.len()));
        }
        accounts
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every account's number, in order.
    pub fn ids(&self) -> Range<AccountId> {
        0..self.len()
    }

    /// The account's namespace and name; empty for a number past the end.
    pub fn get(&self, id: AccountId) -> (&str, &str) {
        let Some(&(namespace_end, end)) = self.ends.get(id) else {
            return ("", "");
        };
        let start = match id {
            0 => 0,
            _ => self.ends[id - 1].1,
        };
        let namespace = self.text.get(start..namespace_end).unwrap_or_default();
        let name = self.text.get(namespace_end..end).unwrap_or_default();
        (namespace, name)
    }

    pub fn namespace(&self, id: AccountId) -> &str {
        self.get(id).0
    }

    /// The number of the account, if it is one of these.
    pub fn find(&self, namespace: &str, name: &str) -> Option<AccountId> {
        let wanted = (namespace, name);
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            match self.get(middle).cmp(&wanted) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(middle),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_sorted_once_each_and_found_by_name() {
        let accounts = Accounts::new(vec![
            ("shop", "web"),
            ("a", "default"),
            ("shop", "api"),
            ("shop", "web"),
            ("", "nameless-namespace"),
            ("ünï", "cödé"),
        ]);
        let all: Vec<(&str, &str)> = accounts.ids().map(|id| accounts.get(id)).collect();
        assert_eq!(
            all,
            [
                ("", "nameless-namespace"),
                ("a", "default"),
                ("shop", "api"),
                ("shop", "web"),
                ("ünï", "cödé"),
            ]
        );
        for (id, (namespace, name)) in all.iter().enumerate() {
            assert_eq!(accounts.find(namespace, name), Some(id));
        }
        assert_eq!(accounts.find("shop", "worker"), None);
        assert_eq!(
            accounts.find("sho", "papi"),
            None,
            "the same letters split elsewhere"
        );
        assert_eq!(accounts.find("", ""), None);
        assert_eq!(accounts.get(5), ("", ""), "past the end");
        assert_eq!(accounts.namespace(3), "shop");
    }

    #[test]
    fn no_accounts_find_nothing() {
        let accounts = Accounts::new(Vec::new());
        assert!(accounts.is_empty());
        assert_eq!(accounts.find("a", "b"), None);
    }
}
