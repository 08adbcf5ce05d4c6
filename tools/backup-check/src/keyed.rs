//! A few values per guest, by (storage, a second key): the storage and format of a
//! backup, looked up without building a key.

/// Values by (storage, a second key): a guest has a few of them, so a list searched without
/// building a key (no allocation a record).
#[derive(Debug)]
pub struct Keyed<T>(Vec<(Option<String>, String, T)>);

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed(Vec::new())
    }
}

impl<T: Default> Keyed<T> {
    pub fn slot(&mut self, storage: Option<&str>, other: &str) -> &mut T {
        let at = self
            .0
            .iter()
            .position(|(s, o, _)| s.as_deref() == storage && o == other);
        let at = at.unwrap_or_else(|| {
            let key = (storage.map(String::from), other.to_string());
            self.0.push((key.0, key.1, T::default()));
            self.0.len() - 1
        });
        &mut self.0[at].2
    }
}

impl<T> Keyed<T> {
    pub fn get(&self, storage: Option<&str>, other: &str) -> Option<&T> {
        self.0
            .iter()
            .find(|(s, o, _)| s.as_deref() == storage && o == other)
            .map(|(_, _, t)| t)
    }

    /// Every (storage, value).
    pub fn iter(&self) -> impl Iterator<Item = (Option<&str>, &T)> {
        self.0.iter().map(|(s, _, t)| (s.as_deref(), t))
    }
}
