//! Fake roots for tests: a temporary directory tree, removed when dropped.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

pub(crate) struct Tree(pub PathBuf);

impl Tree {
    pub fn new(name: &str) -> Tree {
        let p = std::env::temp_dir().join(format!("unithunt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tree(p)
    }

    /// Writes `text` at `inside` (an absolute path in the tree), making its directories.
    pub fn file(&self, inside: &str, text: &str) {
        let p = self.0.join(inside.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Makes a symbolic link at `inside` to `target` (written as given).
    pub fn link(&self, inside: &str, target: &str) {
        let p = self.0.join(inside.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
