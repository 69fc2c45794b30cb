//! The package databases of a root, asked together: a file is owned when dpkg or RPM lists it
//! (a Debian host may carry an RPM database too, for `alien` or a vendor's agent).

use crate::dpkg::{Dpkg, Ownership};
use crate::root::Root;
use crate::rpm::Rpm;

#[derive(Debug, Default)]
pub struct Packages {
    pub dpkg: Dpkg,
    pub rpm: Rpm,
}

impl Packages {
    pub fn load(root: &Root) -> Packages {
        Packages {
            dpkg: Dpkg::load(root),
            rpm: Rpm::load(root),
        }
    }

    /// True when no package database was found (every file would be unowned).
    pub fn is_empty(&self) -> bool {
        self.dpkg.is_empty() && self.rpm.is_empty()
    }

    /// The databases found, for the summary line (`dpkg`, `rpm`, `dpkg and rpm`).
    pub fn kinds(&self) -> String {
        let found = match (self.dpkg.is_empty(), self.rpm.is_empty()) {
            (false, false) => "dpkg and rpm",
            (false, true) => "dpkg",
            (true, false) => "rpm",
            (true, true) => "none found (ownership unknown: not scored)",
        };
        if self.rpm.refused {
            format!("{found} (an RPM database refused: see the warnings)")
        } else {
            found.to_string()
        }
    }

    /// What could not be read in either database.
    pub fn problems(&self) -> impl Iterator<Item = &String> {
        self.dpkg.problems.iter().chain(self.rpm.problems.iter())
    }

    /// Who owns `path` and whether its content is the package's: dpkg's answer, or RPM's when
    /// dpkg does not list the file.
    pub fn check(&self, root: &Root, path: &str) -> Ownership {
        if self.is_empty() {
            return Ownership::Unknown;
        }
        match self.dpkg.check(root, path) {
            Ownership::Unowned => self.rpm.check(root, path),
            owned => owned,
        }
    }
}
