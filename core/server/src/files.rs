//! Files in the endpoint's data directory that must be its owner's alone: the
//! directory itself, the SQLite database (visit records in plain JSON, so the
//! operating system's permissions are what keeps them from other accounts on
//! the server), its backups, and the lock files `doorstep-serve.lock`, held
//! while an endpoint serves, and `signing-keys.lock`, held while a key is made
//! or replaced.

use std::fs::File;
use std::path::Path;

/// Opens (making it if needed) the lock file at `path`, its owner's alone:
/// holding an advisory lock needs only to open the file, so one readable by
/// others could be held by any user of the machine. A file made by an older
/// build, readable by others, is made its owner's too where this process
/// owns it.
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<File> {
    open_private(path)
}

/// Opens the file at `path` for writing, made empty and its owner's alone if
/// missing, and made its owner's alone if it is not, where this process owns it.
fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    Ok(file)
}

/// Makes the directory `dir` and any missing parents, each new one its owner's
/// alone (0700). A directory that already exists keeps its permissions: it is
/// the operator's, who may share it on purpose; the files in it are private
/// whatever the directory allows.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes the file at `path` its owner's alone (0600), creating it empty if it
/// is missing, before SQLite opens it. SQLite gives the `-wal` and `-shm` files
/// it makes beside a database the database's own permissions, so those are
/// private too; ones an older build left readable by others are made private
/// here as well, where this process owns them. An empty file is what both
/// `Connection::open` and `VACUUM INTO` accept as a new database.
pub(crate) fn make_private_file(path: &Path) -> std::io::Result<()> {
    open_private(path)?;
    #[cfg(unix)]
    for suffix in ["-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut beside = path.as_os_str().to_owned();
        beside.push(suffix);
        let private = std::fs::Permissions::from_mode(0o600);
        let _ = std::fs::set_permissions(std::path::PathBuf::from(beside), private);
    }
    Ok(())
}
