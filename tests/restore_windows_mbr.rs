//! Issue 16: a Windows BIOS/MBR disk (an active NTFS "System Reserved" holding bootmgr
//! and \Boot\BCD, then C:) restored onto larger and smaller disks keeps System
//! Reserved's size and C:'s start, so the BCD's partition offsets stay true; where a
//! start must move (an explicit size) or the disk signature changes (--new-ids), the
//! BCD's device elements are rewritten. The BCD hive is made at test time with
//! Debian's hivexsh and judged after the restore with ntfscat + hivexsh, not with
//! ironclone's own reader.

mod common;
mod fsfixture;

use common::{path_str, require_tool, run, run_in, run_status, Rng};
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;
const BIN: &str = env!("CARGO_BIN_EXE_ironclone");
const SIGNATURE: u32 = 0x1234_abcd;
const BOOTMGR: &str = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}";
const LOADER: &str = "{b2721d73-1db4-4c62-bf78-c548a880142d}";

/// An empty registry hive: the base block and one bin holding the root key and its
/// security cell. hivex cannot create a hive from nothing, so the test writes these
/// fixed bytes and hivexsh fills in everything else.
fn empty_hive() -> Vec<u8> {
    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let mut base = vec![0u8; 4096];
    base[..4].copy_from_slice(b"regf");
    for (at, v) in [
        (4, 1),
        (8, 1),
        (0x14, 1),
        (0x18, 3),
        (0x20, 1),
        (0x24, 0x20),
    ] {
        put32(&mut base, at, v);
    }
    put32(&mut base, 0x28, 4096);
    put32(&mut base, 0x2c, 1);
    let sum = (0..0x1fc).step_by(4).fold(0u32, |x, i| {
        x ^ u32::from_le_bytes(base[i..i + 4].try_into().unwrap())
    });
    put32(&mut base, 0x1fc, sum.clamp(1, 0xffff_fffe));
    let mut bin = vec![0u8; 4096];
    bin[..4].copy_from_slice(b"hbin");
    put32(&mut bin, 8, 4096);
    // Root key node "ROOT" (flags: hive entry, no delete, compressed name).
    let mut nk = vec![0u8; 0x50];
    nk[..2].copy_from_slice(b"nk");
    nk[2] = 0x2c;
    for at in [0x10, 0x1c, 0x20, 0x28, 0x30] {
        put32(&mut nk, at, u32::MAX);
    }
    let sk_at = 0x20 + 0x58;
    put32(&mut nk, 0x2c, sk_at);
    nk[0x48] = 4;
    nk[0x4c..0x50].copy_from_slice(b"ROOT");
    // Security cell pointing at itself, with a minimal self-relative descriptor.
    let mut sk = vec![0u8; 0x14 + 20];
    sk[..2].copy_from_slice(b"sk");
    for (at, v) in [(4, sk_at), (8, sk_at), (12, 1), (16, 20)] {
        put32(&mut sk, at, v);
    }
    sk[0x14] = 1;
    sk[0x16..0x18].copy_from_slice(&0x8004u16.to_le_bytes());
    let mut at = 0x20;
    for cell in [&nk, &sk] {
        let size = (cell.len() + 4).div_ceil(8) * 8;
        put32(&mut bin, at, (-(size as i32)) as u32);
        bin[at + 4..at + 4 + cell.len()].copy_from_slice(cell);
        at += size;
    }
    put32(&mut bin, at, (4096 - at) as u32);
    [base, bin].concat()
}

/// A BCD device element naming the MBR partition at `offset` of disk `sig`.
fn device_element(offset: u64, sig: u32) -> String {
    let mut d = [0u8; 0x58];
    d[0x10] = 6;
    d[0x18] = 0x48;
    d[0x20..0x28].copy_from_slice(&offset.to_le_bytes());
    d[0x34] = 1;
    d[0x38..0x3c].copy_from_slice(&sig.to_le_bytes());
    let hex: Vec<String> = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("hex:3:{}", hex.join(","))
}

fn make_bcd(path: &Path, sysres: u64, windows: u64) {
    std::fs::write(path, empty_hive()).unwrap();
    let mut script = String::from("add Objects\ncd Objects\n");
    for (obj, elems) in [
        (
            BOOTMGR,
            vec![("11000001", device_element(sysres, SIGNATURE))],
        ),
        (
            LOADER,
            vec![
                ("11000001", device_element(windows, SIGNATURE)),
                ("21000001", device_element(windows, SIGNATURE)),
                ("12000004", "string:Windows 10".to_string()),
            ],
        ),
    ] {
        script.push_str(&format!("add {obj}\ncd {obj}\nadd Elements\ncd Elements\n"));
        for (name, value) in elems {
            script.push_str(&format!(
                "add {name}\ncd {name}\nsetval 1\nElement\n{value}\ncd ..\n"
            ));
        }
        script.push_str("cd ..\ncd ..\n");
    }
    script.push_str("commit\n");
    run_in("hivexsh", &["-w", path_str(path)], Some(&script));
}

/// (offset, signature) of element `elem` of `obj`, read with hivexsh.
fn bcd_device(hive: &Path, obj: &str, elem: &str) -> (u64, u32) {
    let out = run_in(
        "hivexsh",
        &[path_str(hive)],
        Some(&format!("cd Objects\\{obj}\\Elements\\{elem}\nlsval\n")),
    );
    let hex = out
        .split("hex(3):")
        .nth(1)
        .unwrap_or_else(|| panic!("no binary Element in:\n{out}"));
    let bytes: Vec<u8> = hex
        .trim()
        .split(',')
        .map(|b| u8::from_str_radix(b.trim(), 16).unwrap())
        .collect();
    (
        u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()),
        u32::from_le_bytes(bytes[0x38..0x3c].try_into().unwrap()),
    )
}

/// (start, size) in bytes of partition `n`, from sfdisk.
fn part(disk: &Path, n: u32) -> (u64, u64) {
    let j = common::sfdisk_json(disk);
    let p = j["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"].as_str().unwrap().ends_with(&n.to_string()))
        .unwrap_or_else(|| panic!("no partition {n}"))
        .clone();
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    )
}

fn dd(disk: &Path, img: &Path, offset: u64, len: u64, into_disk: bool) {
    let (i, o) = if into_disk { (img, disk) } else { (disk, img) };
    let mut args = vec![
        format!("if={}", path_str(i)),
        format!("of={}", path_str(o)),
        "bs=1M".into(),
        "status=none".into(),
    ];
    if into_disk {
        args.extend([
            "oflag=seek_bytes".into(),
            format!("seek={offset}"),
            "conv=notrunc,sparse".into(),
        ]);
    } else {
        let _ = std::fs::remove_file(img);
        args.extend([
            "iflag=skip_bytes,count_bytes".into(),
            format!("skip={offset}"),
            format!("count={len}"),
        ]);
    }
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    run("dd", &a);
}

struct Machine {
    _td: tempfile::TempDir,
    dir: PathBuf,
    disk: PathBuf,
    repo: PathBuf,
    size: u64,
    winfile: Vec<u8>,
}

/// NTFS in `img` (hidden sectors = its start) with `files` (path, bytes) put in
/// through an ntfs-3g mount, which creates the directories ntfscp cannot.
fn ntfs(img: &Path, len: u64, start: u64, label: &str, files: &[(&str, &[u8])]) {
    std::fs::File::create(img).unwrap().set_len(len).unwrap();
    let hidden = (start / 512).to_string();
    run(
        "mkntfs",
        &["-q", "-F", "-Q", "-L", label, "-p", &hidden, path_str(img)],
    );
    let mnt = fsfixture::Mount::new(img, &img.with_extension("mnt"));
    for (p, data) in files {
        let dst = mnt.0.join(p);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(&dst, data).unwrap();
    }
    // Dropping the mount waits for ntfs-3g to have written everything.
    drop(mnt);
}

fn machine() -> Machine {
    for t in [
        "sfdisk", "mkntfs", "ntfs-3g", "ntfscat", "ntfsfix", "hivexsh", "dd",
    ] {
        require_tool(t);
    }
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("win.img");
    let size = 600 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    run_in(
        "sfdisk",
        &["-q", path_str(&disk)],
        Some(&format!(
            "label: dos\nlabel-id: 0x{SIGNATURE:08x}\n,100M,7,*\n,,7\n"
        )),
    );
    let (s1, l1) = part(&disk, 1);
    let (s2, l2) = part(&disk, 2);
    let bcd = dir.join("BCD");
    make_bcd(&bcd, s1, s2);
    let hive = std::fs::read(&bcd).unwrap();
    let mut bootmgr = vec![0u8; 400_000];
    Rng::new(1).fill(&mut bootmgr);
    let mut winfile = vec![0u8; 3 * MIB as usize];
    Rng::new(2).fill(&mut winfile);
    let p1 = dir.join("p1.img");
    ntfs(
        &p1,
        l1,
        s1,
        "System Reserved",
        &[("bootmgr", &bootmgr), ("Boot/BCD", &hive)],
    );
    let p2 = dir.join("p2.img");
    ntfs(
        &p2,
        l2,
        s2,
        "Windows",
        &[("Windows/System32/ntoskrnl.exe", &winfile)],
    );
    dd(&disk, &p1, s1, 0, true);
    dd(&disk, &p2, s2, 0, true);
    let repo = dir.join("repo");
    let (ok, out) = run_status(
        BIN,
        &["backup", path_str(&disk), path_str(&repo), "--name", "win"],
    );
    assert!(ok, "backup:\n{out}");
    Machine {
        _td: td,
        dir,
        disk,
        repo,
        size,
        winfile,
    }
}

impl Machine {
    fn restore(&self, name: &str, size: u64, extra: &[&str]) -> (PathBuf, String) {
        let t = self.dir.join(name);
        let _ = std::fs::remove_file(&t);
        std::fs::File::create(&t)
            .unwrap()
            .set_len(size / MIB * MIB)
            .unwrap();
        let mut a = vec![
            "restore",
            path_str(&self.repo),
            "win",
            path_str(&t),
            "--yes",
            "--no-nvram",
        ];
        a.extend_from_slice(extra);
        let (ok, log) = run_status(BIN, &a);
        assert!(ok, "restore {extra:?}:\n{log}");
        (t, log)
    }

    /// System Reserved passes ntfsfix -n; what its BCD says, read with ntfscat + hivexsh.
    fn bcd(&self, t: &Path, log: &str) -> [(u64, u32); 3] {
        let (s, l) = part(t, 1);
        let img = self.dir.join("chk1.img");
        dd(t, &img, s, l, false);
        let (ok, out) = run_status("ntfsfix", &["-n", path_str(&img)]);
        assert!(ok, "ntfsfix -n p1:\n{out}\n{log}");
        let got = std::process::Command::new("ntfscat")
            .args([path_str(&img), "Boot/BCD"])
            .output()
            .unwrap();
        assert!(got.status.success(), "ntfscat Boot/BCD\n{log}");
        let hive = self.dir.join("BCD.out");
        std::fs::write(&hive, &got.stdout).unwrap();
        std::fs::remove_file(&img).unwrap();
        [
            bcd_device(&hive, BOOTMGR, "11000001"),
            bcd_device(&hive, LOADER, "11000001"),
            bcd_device(&hive, LOADER, "21000001"),
        ]
    }

    fn check_all(&self, t: &Path, log: &str) -> [(u64, u32); 3] {
        let sig = u32::from_str_radix(
            common::sfdisk_json(t)["partitiontable"]["id"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let p2 = {
            let (s, l) = part(t, 2);
            let img = self.dir.join("chk2.img");
            dd(t, &img, s, l, false);
            let (ok, out) = run_status("ntfsfix", &["-n", path_str(&img)]);
            assert!(ok, "ntfsfix -n p2:\n{out}\n{log}");
            let got = std::process::Command::new("ntfscat")
                .args([path_str(&img), "Windows/System32/ntoskrnl.exe"])
                .output()
                .unwrap();
            assert!(got.stdout == self.winfile, "C: file differs\n{log}");
            std::fs::remove_file(&img).unwrap();
            s
        };
        let r = self.bcd(t, log);
        let p1 = part(t, 1).0;
        assert_eq!(r[0], (p1, sig), "bootmgr's device after restore\n{log}");
        assert_eq!(r[1], (p2, sig), "osloader's application device\n{log}");
        assert_eq!(r[2], (p2, sig), "osloader's OS device\n{log}");
        r
    }
}

#[test]
#[ignore = "needs root"]
fn system_reserved_keeps_its_size_and_c_its_start() {
    let m = machine();
    let (s1, l1) = part(&m.disk, 1);
    let (s2, l2) = part(&m.disk, 2);
    for (name, pct) in [("grow.img", 150), ("shrink.img", 60)] {
        let (t, log) = m.restore(name, m.size * pct / 100, &[]);
        assert_eq!(
            part(&t, 1),
            (s1, l1),
            "System Reserved moved or resized\n{log}"
        );
        let (ns2, nl2) = part(&t, 2);
        assert_eq!(ns2, s2, "C: moved\n{log}");
        if pct > 100 {
            assert!(nl2 > l2, "C: did not grow\n{log}");
        } else {
            assert!(nl2 < l2, "C: did not shrink\n{log}");
        }
        assert!(log.contains("left as it is"), "no BCD line in:\n{log}");
        m.check_all(&t, &log);
        std::fs::remove_file(&t).unwrap();
    }
}

#[test]
#[ignore = "needs root"]
fn bcd_follows_a_moved_start_and_a_new_signature() {
    let m = machine();
    let (s2, _) = part(&m.disk, 2);
    // System Reserved asked smaller: C:'s start must move, and the BCD with it.
    let (t, log) = m.restore("moved.img", m.size * 3 / 2, &["--size", "1=60M"]);
    let (ns2, _) = part(&t, 2);
    assert!(ns2 < s2, "C: did not move\n{log}");
    assert!(
        log.contains("rewritten"),
        "the plan does not say the BCD is rewritten:\n{log}"
    );
    assert!(
        log.contains("partition 2 moves from") && log.contains("points Windows' BCD at it"),
        "the plan notes do not say C: moves:\n{log}"
    );
    m.check_all(&t, &log);
    std::fs::remove_file(&t).unwrap();
    // A new disk signature: every element names the new one.
    let (t, log) = m.restore("newid.img", m.size, &["--new-ids"]);
    let r = m.check_all(&t, &log);
    assert_ne!(r[1].1, SIGNATURE, "the signature did not change\n{log}");
}
