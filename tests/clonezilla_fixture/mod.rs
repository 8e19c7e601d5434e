//! A Clonezilla savedisk folder built the way ocs-sr writes one, from a GPT disk image
//! made here: ESP (FAT16: mtools refuses a 32 MiB FAT32) and ext4, each filesystem imaged by Debian's partclone and
//! compressed (zstd for the ESP, gzip for ext4), the table saved by `sfdisk -d`, the
//! GPT head and tail and the MBR cut out with dd, and the small list files.

#![allow(dead_code)]

pub mod shapes;

use crate::fsfixture::{prng_bytes, run, run_status};
use std::fs;
use std::path::{Path, PathBuf};

pub const MIB: u64 = 1 << 20;

pub struct Fixture {
    /// The source disk image the folder was made from.
    pub disk: PathBuf,
    /// The folder holding the image folder (Clonezilla's /home/partimag).
    pub root: PathBuf,
    /// The image folder itself.
    pub image: PathBuf,
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Builds `<dir>/partimag/<name>` from a 160 MiB GPT disk; `seed` varies the files,
/// `later` adds one new 500 kB file (a later save of the same machine).
pub fn build(dir: &Path, name: &str, seed: u64, later: bool) -> Fixture {
    build_with(dir, name, seed, later, false)
}

/// The same on an MBR disk: p1 FAT, p2 extended holding p5 ext4 (parts `sda1 sda5`).
pub fn build_mbr(dir: &Path, name: &str, seed: u64) -> Fixture {
    build_with(dir, name, seed, false, true)
}

fn build_with(dir: &Path, name: &str, seed: u64, later: bool, mbr: bool) -> Fixture {
    fs::create_dir_all(dir).unwrap();
    let disk = dir.join(format!("{name}-disk.img"));
    run("truncate", &["-s", "160M", s(&disk)]);
    let (root_start, root_part) = if mbr {
        (69632u64, "sda5")
    } else {
        (67584, "sda2")
    };
    if mbr {
        let mut c = std::process::Command::new("sfdisk")
            .args(["-q", s(&disk)])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(b"label: dos\nstart=2048, size=65536, type=c, bootable\nstart=67584, type=5\nstart=69632, type=83\n")
            .unwrap();
        assert!(c.wait().unwrap().success(), "sfdisk failed");
    } else {
        run(
            "sgdisk",
            &[
                "-Z",
                "-n",
                "1:2048:+32M",
                "-t",
                "1:EF00",
                "-n",
                "2:0:0",
                "-t",
                "2:8300",
                s(&disk),
            ],
        );
    }
    // the two filesystems, made as files and placed at their partitions' offsets
    let esp = dir.join(format!("{name}-esp.img"));
    run("truncate", &["-s", "32M", s(&esp)]);
    run("mkfs.vfat", &["-F", "16", "-n", "ESP", s(&esp)]);
    let efi = dir.join(format!("{name}-BOOTX64.EFI"));
    fs::write(&efi, prng_bytes(seed + 100, 300_000)).unwrap();
    run("mmd", &["-i", s(&esp), "::/EFI", "::/EFI/BOOT"]);
    run(
        "mcopy",
        &["-i", s(&esp), s(&efi), "::/EFI/BOOT/BOOTX64.EFI"],
    );
    let tree = dir.join(format!("{name}-tree"));
    fs::create_dir_all(tree.join("etc")).unwrap();
    for i in 0..4u64 {
        fs::write(
            tree.join(format!("data{i}")),
            prng_bytes(seed * 10 + i, 2_000_000),
        )
        .unwrap();
    }
    fs::write(tree.join("etc/hostname"), format!("host{seed}\n")).unwrap();
    if later {
        fs::write(tree.join("new-file"), prng_bytes(seed + 1000, 500_000)).unwrap();
    }
    let root_fs = dir.join(format!("{name}-root.img"));
    let root_sectors = 160 * 2048 - if mbr { 0 } else { 34 } - root_start;
    run(
        "truncate",
        &[
            "-s",
            &format!("{}", (root_sectors / 8 * 8) * 512),
            s(&root_fs),
        ],
    );
    run(
        "mke2fs",
        &[
            "-F",
            "-q",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-d",
            s(&tree),
            s(&root_fs),
        ],
    );
    for (img, start) in [(&esp, 2048u64), (&root_fs, root_start)] {
        run(
            "dd",
            &[
                &format!("if={}", s(img)),
                &format!("of={}", s(&disk)),
                "bs=512",
                &format!("seek={start}"),
                "conv=notrunc,sparse",
                "status=none",
            ],
        );
    }
    let root = dir.join("partimag");
    let image = root.join(name);
    fs::create_dir_all(&image).unwrap();
    let log = dir.join("pc.log");
    for (src, tool, file, comp) in [
        (&esp, "partclone.vfat", "sda1.vfat-ptcl-img", "zstd"),
        (
            &root_fs,
            "partclone.ext4",
            &*format!("{root_part}.ext4-ptcl-img"),
            "gzip",
        ),
    ] {
        let out = image.join(file);
        run(
            tool,
            &["-q", "-c", "-s", s(src), "-O", s(&out), "-L", s(&log)],
        );
        run(comp, &["-q", "-f", s(&out)]);
    }
    let sf = run("sfdisk", &["-d", s(&disk)]);
    // Clonezilla saves the dump with /dev/sda names; sfdisk on a file prints the path.
    let text = String::from_utf8_lossy(&sf.stdout).replace(s(&disk), "/dev/sda");
    fs::write(image.join("sda-pt.sf"), text).unwrap();
    let cut = |out: &str, skip: u64, count: u64| {
        dd_range(&disk, (skip * 512, count * 512), &image.join(out));
    };
    let sectors = 160 * 2048;
    cut("sda-mbr", 0, 1);
    if !mbr {
        cut("sda-gpt-1st", 0, 34);
        cut("sda-gpt-2nd", sectors - 33, 33);
    }
    cut("sda-hidden-data-after-mbr", 1, 2047);
    fs::write(image.join("sda-pt.parted"), format!("Model: (file)\nDisk /dev/sda: {sectors}s\nSector size (logical/physical): 512B/512B\nPartition Table: {}\n", if mbr { "msdos" } else { "gpt" })).unwrap();
    fs::write(image.join("disk"), "sda\n").unwrap();
    fs::write(image.join("parts"), format!("sda1 {root_part}\n")).unwrap();
    fs::write(
        image.join("dev-fs.list"),
        format!("# <Device name>   <File system>   <Size>\n/dev/sda1 vfat 32M\n/dev/{root_part} ext4 127.9M\n"),
    )
    .unwrap();
    fs::write(
        image.join("clonezilla-img"),
        "This image was saved by Clonezilla\n### Image created time: 2026-1130-1200\n",
    )
    .unwrap();
    Fixture { disk, root, image }
}

/// (start, size) in bytes of partition `n` of `disk`, from sfdisk's JSON.
pub fn part(disk: &Path, n: usize) -> (u64, u64) {
    let o = run("sfdisk", &["-J", s(disk)]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &j["partitiontable"]["partitions"][n - 1];
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    )
}

pub fn extract(disk: &Path, n: usize, out: &Path) {
    dd_range(disk, part(disk, n), out);
}

/// Copies `len` bytes of `disk` from byte `start` into a new file `out`.
pub fn dd_range(disk: &Path, (start, len): (u64, u64), out: &Path) {
    let _ = fs::remove_file(out);
    run(
        "dd",
        &[
            &format!("if={}", s(disk)),
            &format!("of={}", s(out)),
            "bs=1M",
            "iflag=skip_bytes,count_bytes",
            &format!("skip={start}"),
            &format!("count={len}"),
            "status=none",
        ],
    );
}

/// Saves the GPT disk image `disk` as disk `name` (`sda`) into the image folder `image`
/// the way ocs-sr savedisk does: the sfdisk dump, the MBR, the GPT head and tail, the
/// gap after the MBR and parted's summary (the caller writes `disk` and `parts`).
pub fn save_gpt_disk(disk: &Path, image: &Path, name: &str) {
    let sf = run("sfdisk", &["-d", s(disk)]);
    let text = String::from_utf8_lossy(&sf.stdout).replace(s(disk), &format!("/dev/{name}"));
    fs::write(image.join(format!("{name}-pt.sf")), text).unwrap();
    let sectors = fs::metadata(disk).unwrap().len() / 512;
    for (out, skip, count) in [
        ("mbr", 0, 1),
        ("gpt-1st", 0, 34),
        ("gpt-2nd", sectors - 33, 33),
        ("hidden-data-after-mbr", 1, 2047),
    ] {
        let out = image.join(format!("{name}-{out}"));
        dd_range(disk, (skip * 512, count * 512), &out);
    }
    fs::write(
        image.join(format!("{name}-pt.parted")),
        format!("Model: (file)\nDisk /dev/{name}: {sectors}s\nSector size (logical/physical): 512B/512B\nPartition Table: gpt\n"),
    )
    .unwrap();
}

/// The restored disk's filesystems are clean and hold the fixture's files.
/// `root` is the ext4 partition's place in sfdisk's list (an extended one counts).
pub fn check_restored(dir: &Path, target: &Path, seed: u64, root: usize) {
    let esp = dir.join("esp.out");
    extract(target, 1, &esp);
    let o = run_status("fsck.vfat", &["-n", s(&esp)]);
    assert!(
        o.status.success(),
        "fsck.vfat -n: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let efi = dir.join("efi.out");
    let _ = fs::remove_file(&efi);
    run(
        "mcopy",
        &["-i", s(&esp), "::/EFI/BOOT/BOOTX64.EFI", s(&efi)],
    );
    assert_eq!(
        fs::read(&efi).unwrap(),
        prng_bytes(seed + 100, 300_000),
        "ESP file differs"
    );
    let (root_n, root_img) = (root, dir.join("root.out"));
    extract(target, root_n, &root_img);
    let o = run_status("e2fsck", &["-fn", s(&root_img)]);
    assert!(
        o.status.success(),
        "e2fsck -fn: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    for i in 0..4u64 {
        let o = run("debugfs", &["-R", &format!("cat /data{i}"), s(&root_img)]);
        assert!(
            o.stdout == prng_bytes(seed * 10 + i, 2_000_000),
            "/data{i} differs after restore"
        );
    }
}

/// Flips a bit 5000 bytes before the end of the decoded gzip partition image `gz` (in
/// the last used blocks, past the metadata a planner reads) and compresses it again.
pub fn damage_gz(gz: &Path) {
    damage_with(gz, "gzip");
}

/// `damage_gz` for a zstd partition image.
pub fn damage_zst(zst: &Path) {
    damage_with(zst, "zstd");
}

fn damage_with(image: &Path, tool: &str) {
    let mut raw = run(tool, &["-q", "-dc", s(image)]).stdout;
    let at = raw.len() - 5000;
    raw[at] ^= 0x10;
    let plain = image.with_extension("");
    fs::write(&plain, &raw).unwrap();
    fs::remove_file(image).unwrap();
    run(tool, &["-q", s(&plain)]);
    if tool == "zstd" {
        // zstd keeps its input.
        fs::remove_file(&plain).unwrap();
    }
}

/// Runs `ironclone ARGS --scratch SCRATCH`; (success, stdout + stderr). Whatever the
/// outcome, nothing may be left in the scratch folder.
pub fn run_with_scratch(args: &[&str], scratch: &Path) -> (bool, String) {
    run_with_scratch_env(args, scratch, &[])
}

/// `run_with_scratch` with the environment variables `env` set.
pub fn run_with_scratch_env(args: &[&str], scratch: &Path, env: &[(&str, &str)]) -> (bool, String) {
    fs::create_dir_all(scratch).unwrap();
    let mut all = args.to_vec();
    all.extend(["--scratch", scratch.to_str().unwrap()]);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(&all)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let left: Vec<_> = fs::read_dir(scratch).unwrap().collect();
    assert!(left.is_empty(), "scratch files left behind: {left:?}");
    (o.status.success(), text)
}

/// A LUKS2 volume of `len` bytes in `dir` (a plain file: no device-mapper needed),
/// formatted with the passphrase `pass`, its header saved as Clonezilla saves it
/// (`cryptsetup luksHeaderBackup` into `header`, 16 MiB). Returns its UUID.
pub fn luks_header(dir: &Path, len: u64, pass: &str, header: &Path) -> String {
    let key = dir.join("luks.key");
    fs::write(&key, pass).unwrap();
    let vol = dir.join("luks.img");
    fs::File::create(&vol).unwrap().set_len(len).unwrap();
    let (key_s, vol_s) = (key.to_str().unwrap(), vol.to_str().unwrap());
    run(
        "cryptsetup",
        &[
            "luksFormat",
            "--type",
            "luks2",
            "-q",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key_s,
            vol_s,
        ],
    );
    let uuid = String::from_utf8(run("cryptsetup", &["luksUUID", vol_s]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let header_s = header.to_str().unwrap();
    run(
        "cryptsetup",
        &["luksHeaderBackup", vol_s, "--header-backup-file", header_s],
    );
    fs::remove_file(&vol).unwrap();
    uuid
}

/// Runs ironclone with `args`: success, stdout, and stdout and stderr as text.
pub fn cli(args: &[&str]) -> (bool, Vec<u8>, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        o.stdout.clone(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// `browse ROOT IMAGE AREA ARGS --cache CACHE`, which must succeed: its stdout.
pub fn browse(root: &Path, image: &str, area: &str, args: &[&str], cache: &Path) -> Vec<u8> {
    let mut all = vec!["browse", root.to_str().unwrap(), image, area];
    all.extend(args);
    all.extend(["--cache", cache.to_str().unwrap()]);
    let (ok, stdout, text) = cli(&all);
    assert!(ok, "browse {area} {args:?}: {text}");
    stdout
}

/// On the TUI's LUKS passphrase screen (the image just picked): a wrong passphrase is
/// refused on the screen and asked again, then `right` is typed and taken.
pub fn tui_wrong_then_right_key(app: &mut ironclone::tui::App, right: &str) {
    use crossterm::event::KeyCode;
    use ironclone::tui::app::Screen;
    assert!(
        matches!(app.screen(), Screen::LuksKey { .. }),
        "{:?}",
        app.screen()
    );
    app.type_str("not the passphrase");
    app.press(KeyCode::Enter);
    // Checked on a thread of its own (the header's Argon2id).
    app.settle(std::time::Duration::from_secs(60));
    match app.screen() {
        Screen::LuksKey { note: Some(n), .. } => assert!(n.contains("Wrong passphrase"), "{n}"),
        other => panic!("a wrong key went on: {other:?}"),
    }
    app.type_str(right);
    app.press(KeyCode::Enter);
    app.settle(std::time::Duration::from_secs(60));
}
