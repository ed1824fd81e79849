//! [`ObjectStore`] over a local folder. Object names may contain `/`, which
//! become sub-folders. Writes go to a temporary file in the same folder,
//! are flushed to disk, then renamed over the target: readers never see a
//! half-written object.

use super::{ObjectStore, StoreError};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A local folder as an object store.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created on the first write if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        if name.split('/').any(|c| c == "..") || name.starts_with('/') {
            return Err(StoreError::InvalidLocation(format!(
                "object name '{name}' leaves the store"
            )));
        }
        Ok(self.root.join(name))
    }

    fn io(&self, name: &str, e: std::io::Error) -> StoreError {
        if e.kind() == std::io::ErrorKind::NotFound {
            StoreError::NotFound {
                location: self.describe(),
                name: name.to_string(),
            }
        } else if e.kind() == std::io::ErrorKind::PermissionDenied {
            StoreError::Denied {
                location: self.describe(),
                name: name.to_string(),
                detail: e.to_string(),
            }
        } else {
            StoreError::Io {
                location: self.describe(),
                name: name.to_string(),
                detail: e.to_string(),
            }
        }
    }
}

impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == self.root => {
                    return Ok(out)
                }
                Err(e) => return Err(self.io(&dir.display().to_string(), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.io("", e))?;
                let path = entry.path();
                let ft = entry.file_type().map_err(|e| self.io("", e))?;
                if ft.is_dir() {
                    stack.push(path);
                } else if ft.is_file() {
                    let rel = path.strip_prefix(&self.root).expect("under root");
                    let name = rel.to_string_lossy().replace('\\', "/");
                    let is_temp = rel
                        .file_name()
                        .is_some_and(|f| f.to_string_lossy().starts_with(".tmp-"));
                    if name.starts_with(prefix) && !is_temp {
                        out.push(name);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        fs::read(self.path(name)?).map_err(|e| self.io(name, e))
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let target = self.path(name)?;
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| self.io(name, e))?;
        let file_name = target
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), file_name));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &target)?;
            // Make the rename itself durable.
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io(name, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_and_list_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        s.put("b/2.csv", b"two").unwrap();
        s.put("b/1.csv", b"one").unwrap();
        s.put("a.txt", b"a").unwrap();
        assert_eq!(s.list("").unwrap(), vec!["a.txt", "b/1.csv", "b/2.csv"]);
        assert_eq!(s.list("b/").unwrap(), vec!["b/1.csv", "b/2.csv"]);
        assert_eq!(s.get("b/1.csv").unwrap(), b"one");
        s.put("b/1.csv", b"uno").unwrap();
        assert_eq!(s.get("b/1.csv").unwrap(), b"uno");
    }

    #[test]
    fn a_missing_object_is_not_found_and_a_missing_root_lists_empty() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path().join("nope"));
        assert!(s.get("x").unwrap_err().is_not_found());
        assert!(s.list("").unwrap().is_empty());
    }

    #[test]
    fn names_cannot_escape_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        assert!(matches!(
            s.put("../evil", b"x"),
            Err(StoreError::InvalidLocation(_))
        ));
    }
}
