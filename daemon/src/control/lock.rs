//! Who holds the state's lock: sled takes a `flock` on `<state_dir>/db`, which the kernel
//! lists in /proc/locks with the holder's pid. Unknown (None) when /proc is hidden, as under
//! the unit's ProtectProc=invisible for another user.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The pid holding the lock on the state in `state_dir`, if the kernel tells.
pub fn lock_holder(state_dir: &Path) -> Option<u32> {
    let meta = std::fs::metadata(state_dir.join("db")).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    holder_in(&locks, meta.dev(), meta.ino())
}

/// The same split of a device number as glibc's `major()` and `minor()`.
fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// Reads lines like `1: FLOCK  ADVISORY  WRITE 4711 fd:01:1234 0 EOF` (major and minor in
/// hex, the inode in decimal).
fn holder_in(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = major_minor(dev);
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // Blocked waiters are listed as "1: -> FLOCK ...": not the holder.
        if f.get(1) != Some(&"FLOCK") {
            return None;
        }
        let mut id = f.get(5)?.split(':');
        let (ma, mi, i) = (id.next()?, id.next()?, id.next()?);
        let same = u64::from_str_radix(ma, 16).ok()? == major
            && u64::from_str_radix(mi, 16).ok()? == minor
            && i.parse::<u64>().ok()? == ino;
        if same {
            f.get(4)?.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_found_by_device_and_inode() {
        let locks = "1: POSIX  ADVISORY  WRITE 99 fd:01:1234 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4711 fd:01:1234 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 4712 fd:01:1234 0 EOF\n";
        let dev = (0xfd << 8) | 0x01;
        assert_eq!(holder_in(locks, dev, 1234), Some(4711));
        assert_eq!(holder_in(locks, dev, 1235), None);
    }

    #[test]
    fn a_held_state_names_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let _state = crate::state::Store::open(dir.path(), 1 << 20).unwrap();
        if std::fs::read_to_string("/proc/locks").is_ok() {
            assert_eq!(lock_holder(dir.path()), Some(std::process::id()));
        }
    }
}
