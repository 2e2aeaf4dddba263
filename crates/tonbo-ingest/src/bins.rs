//! Where the stages are: in `$TONBO_INGEST_BIN_DIR`, then beside the front door itself, then on
//! PATH. All are looked up before anything runs, so that a missing one stops nothing half-way.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::sources::Source;

/// The stages a run needs, found.
#[derive(Debug)]
pub struct Stages {
    pub map: PathBuf,
    pub batch: PathBuf,
    pub post: PathBuf,
    /// The readers of the `--from` sources, in their order.
    pub readers: Vec<PathBuf>,
}

/// Where binaries are looked for.
pub struct Lookup {
    /// `$TONBO_INGEST_BIN_DIR`, unless empty.
    pub bin_dir: Option<PathBuf>,
    /// The front door's own folder.
    pub self_dir: Option<PathBuf>,
    /// `$PATH`.
    pub path: Option<OsString>,
}

impl Lookup {
    pub fn from_env() -> Lookup {
        let self_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        Lookup {
            bin_dir: std::env::var_os("TONBO_INGEST_BIN_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            self_dir,
            path: std::env::var_os("PATH"),
        }
    }

    /// The stages for `sources`: tonbo-map, tonbo-batch, tonbo-post, then the readers; the
    /// message for the first one missing.
    pub fn stages(&self, sources: &[&Source]) -> Result<Stages, String> {
        Ok(Stages {
            map: self.find("tonbo-map")?,
            batch: self.find("tonbo-batch")?,
            post: self.find("tonbo-post")?,
            readers: sources
                .iter()
                .map(|s| self.find(s.reader))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The binary `name`, or the message saying where it was looked for.
    pub fn find(&self, name: &str) -> Result<PathBuf, String> {
        let dirs = [&self.bin_dir, &self.self_dir];
        let found = dirs
            .into_iter()
            .flatten()
            .map(|d| d.join(name))
            .find(|p| is_executable(p));
        // An empty PATH entry is the current folder, as for a shell.
        let on_path = || {
            let path = self.path.as_deref()?;
            std::env::split_paths(path)
                .map(|d| {
                    let d = if d.as_os_str().is_empty() {
                        ".".into()
                    } else {
                        d
                    };
                    d.join(name)
                })
                .find(|p| is_executable(p))
        };
        found.or_else(on_path).ok_or_else(|| {
            let here = self.self_dir.as_deref().unwrap_or(Path::new(""));
            format!(
                "{name} not found (in $TONBO_INGEST_BIN_DIR, {}, or PATH); run make install",
                here.display()
            )
        })
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn executable(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn bin_dir_then_own_folder_then_path() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        for d in [&a, &b, &c] {
            std::fs::create_dir(d).unwrap();
        }
        let lookup = Lookup {
            bin_dir: Some(a.clone()),
            self_dir: Some(b.clone()),
            path: Some(std::env::join_paths([&c]).unwrap()),
        };
        let in_c = executable(&c, "x", 0o755);
        assert_eq!(lookup.find("x"), Ok(in_c));
        let in_b = executable(&b, "x", 0o755);
        assert_eq!(lookup.find("x"), Ok(in_b));
        // Not executable: passed over.
        executable(&a, "x", 0o644);
        assert_eq!(lookup.find("x"), Ok(b.join("x")));
        let in_a = executable(&a, "x", 0o700);
        assert_eq!(lookup.find("x"), Ok(in_a));
        // A folder of that name is no binary.
        std::fs::create_dir(a.join("y")).unwrap();
        let err = lookup.find("y").unwrap_err();
        assert_eq!(
            err,
            format!(
                "y not found (in $TONBO_INGEST_BIN_DIR, {}, or PATH); run make install",
                b.display()
            )
        );
    }
}
