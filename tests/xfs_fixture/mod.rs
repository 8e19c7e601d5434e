//! XFS fixtures shared by the used-map tests: a filesystem made by mkfs.xfs on a sparse
//! file of the smallest size it accepts, and a loop mount undone on drop.

#![allow(dead_code)]

use crate::fsfixture::{run, run_status, sparse_file};
use std::path::{Path, PathBuf};

/// mkfs.xfs refuses data sections under 300 MB.
pub const SIZE: u64 = 320 << 20;

/// A loop mount, unmounted on drop.
pub struct LoopMount(PathBuf);

impl LoopMount {
    pub fn new(img: &Path, dir: &Path, opts: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let o = format!("loop,{opts}");
        run(
            "mount",
            &[
                "-t",
                "xfs",
                "-o",
                &o,
                img.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        LoopMount(dir.to_path_buf())
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = run_status("umount", &[self.0.to_str().unwrap()]);
    }
}

pub fn mkfs(img: &Path, args: &[&str]) {
    sparse_file(img, SIZE);
    let mut a = vec!["-q", "-f"];
    a.extend_from_slice(args);
    a.push(img.to_str().unwrap());
    run("mkfs.xfs", &a);
}
