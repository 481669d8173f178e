//! Files that appear complete or not at all: written to a temporary file in the destination
//! directory, then renamed into place.
//!
//! Temporary files are created with mode `0666` minus the umask, which is what
//! `File::create` gives, so what stackci writes (mirror objects, CI files, reports) is as
//! readable by other users as any file the user creates; `tempfile`'s own default is `0600`.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

/// The mode asked for at creation; the process umask is applied by the kernel.
const MODE: u32 = 0o666;

/// Creates a temporary file named `<prefix><random>` in `dir`, with `File::create`'s mode.
pub fn temp_in(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(Permissions::from_mode(MODE))
        .tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_get_the_mode_file_create_gives() {
        let dir = tempfile::tempdir().unwrap();
        let ours = temp_in(dir.path(), ".x-").unwrap();
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(ours.path()), mode(&plain));
    }
}
