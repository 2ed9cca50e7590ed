//! The database files at rest. They hold payloads, destination URLs, custom headers and,
//! without an encryption key, endpoint secrets, so a data directory webhookd creates is `0700`
//! and the database files (the database, its `-wal` and `-shm`, the lock) are made `0600` at
//! every start, whatever the umask; an existing directory that others can enter is reported.
//! Deleted content is zeroed (`PRAGMA secure_delete`, set on every connection), and after
//! secrets are rewritten [`checkpoint_and_truncate`] leaves no older copy in the write-ahead log.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::OpenFlags;

use super::{map_error, open_connection};
use crate::{Result, StoreError};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Directories webhookd creates.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// Database files.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, `0700`. An existing directory is left as it is, with
/// a warning when other users may enter it.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        {
            let mode = std::fs::metadata(dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    directory = %dir.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the data directory is open to other users; restrict it with `chmod 700`"
                );
            }
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder.create(dir)?;
    // The mode given at creation is reduced by the umask; set it exactly.
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
    Ok(())
}

/// Opens (creating it when missing) a file readable and writable by its owner alone.
pub(crate) fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(FILE_MODE);
    let file = options.open(path)?;
    restrict(path)?;
    Ok(file)
}

/// Makes the database and its `-wal` and `-shm` files, where they exist, `0600`.
pub(crate) fn restrict_database_files(database: &Path) -> io::Result<()> {
    for path in [
        database.to_path_buf(),
        suffixed(database, "-wal"),
        suffixed(database, "-shm"),
    ] {
        match restrict(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(unix)]
fn restrict(path: &Path) -> io::Result<()> {
    let permissions = std::fs::metadata(path)?.permissions();
    if permissions.mode() & 0o777 != FILE_MODE {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Whether another open file description holds the lock file's lock (a running server).
pub(crate) fn is_locked(lock_path: &Path) -> bool {
    File::open(lock_path).is_ok_and(|lock| lock.try_lock().is_err())
}

/// Copies the write-ahead log into the database and truncates it to nothing. It runs on a
/// connection of its own (a checkpoint cannot run inside the writer's transactions) and waits
/// (busy timeout) for readers to let go of older snapshots. Blocking.
pub(crate) fn checkpoint_and_truncate(database: &Path) -> Result<()> {
    let connection = open_connection(database, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let busy: i64 = connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(map_error)?;
    if busy != 0 {
        return Err(StoreError::Unavailable(
            "the write-ahead log is in use; try again".into(),
        ));
    }
    Ok(())
}
