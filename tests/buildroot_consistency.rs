//! The Buildroot BR2_EXTERNAL tree cannot be built offline, so this runs
//! `tests/buildroot_consistency.sh` on it, and on a copy with one misspelled symbol to prove the
//! checker actually rejects what Buildroot would silently ignore.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_checker(tree: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg(root().join("tests/buildroot_consistency.sh"))
        .arg(tree)
        .output()
        .expect("bash must be installed to run tests/buildroot_consistency.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn buildroot_tree_is_consistent() {
    let (ok, text) = run_checker(&root().join("buildroot-config"));
    assert!(ok, "buildroot-config is inconsistent:\n{text}");
}

#[test]
fn checker_rejects_a_misspelled_symbol() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let top = tmp.path();
    let status = Command::new("cp")
        .arg("-a")
        .arg(root().join("buildroot-config"))
        .arg(top)
        .status()
        .expect("cp");
    assert!(status.success(), "copying buildroot-config failed");
    // The checker also looks at the checkout around the tree; share it by symlinks.
    for name in ["initramfs", "image", "Cargo.toml", "Cargo.lock", ".git"] {
        std::os::unix::fs::symlink(root().join(name), top.join(name)).expect("symlink");
    }
    let tree = top.join("buildroot-config");
    let (ok, text) = run_checker(&tree);
    assert!(ok, "the unmodified copy must pass first:\n{text}");

    let defconfig = tree.join("configs/ironclone_x86_64_defconfig");
    let original = std::fs::read_to_string(&defconfig).expect("read defconfig");
    let broken = original.replace(
        "BR2_PACKAGE_NTFS_3G_NTFSPROGS=y",
        "BR2_PACKAGE_NTFS3G_NTFSPROGS=y",
    );
    assert_ne!(original, broken, "defconfig no longer enables ntfsprogs");
    std::fs::write(&defconfig, broken).expect("write defconfig");
    let (ok, text) = run_checker(&tree);
    assert!(!ok, "a misspelled symbol was accepted:\n{text}");
    assert!(text.contains("BR2_PACKAGE_NTFS3G_NTFSPROGS"), "{text}");
}
