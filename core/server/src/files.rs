//! Lock files in the endpoint's data directory: `doorstep-serve.lock`, held
//! while an endpoint serves, and `signing-keys.lock`, held while a key is
//! made or replaced.

use std::fs::File;
use std::path::Path;

/// Opens (making it if needed) the lock file at `path`, its owner's alone:
/// holding an advisory lock needs only to open the file, so one readable by
/// others could be held by any user of the machine. A file made by an older
/// build, readable by others, is made its owner's too where this process
/// owns it.
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<File> {
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
