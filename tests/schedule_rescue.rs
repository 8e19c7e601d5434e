//! `ironclone rescue install|status|remove` and the scheduled run's rescue request,
//! through the binary with `--root`, `--efivars` on a temp dir laid out like efivarfs,
//! and the ESP as a GPT disk-image file (`--esp-partition`). The mounted-disk and
//! `schedule run --rescue` cases use loop devices (root, like tests/schedule.rs).
//! tests/qemu/test-schedule-rescue.sh runs the whole cycle under OVMF,
//! tests/qemu/test-schedule-rescue-bios.sh under SeaBIOS with GRUB.

mod ext_fixture;
mod fsfixture;
mod schedule_common;

use schedule_common::{ext4_image, ic, init, s, status_json, tool, Mounted, Out};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
const ESP_GUID: &str = "1C0EC1A5-00EE-4000-8000-000000000001";

fn var(efivars: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(efivars.join(format!("{name}-{GLOBAL}"))).ok()
}

/// A machine under a temp dir: root/, efivars/ (with an OS entry first in BootOrder),
/// esp/ (the mounted ESP's directory) and esp.img (its disk: GPT, partition 1 an ESP),
/// plus a kernel and an initramfs to install.
struct Machine {
    t: tempfile::TempDir,
    root: PathBuf,
    efivars: PathBuf,
    esp: PathBuf,
    esp_img: PathBuf,
}

fn machine() -> Machine {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let efivars = t.path().join("efivars");
    let esp = t.path().join("esp");
    for d in [&root, &efivars, &esp] {
        std::fs::create_dir_all(d).unwrap();
    }
    // BootOrder = [0005]: the OS's entry, which must stay first and alone.
    std::fs::write(
        efivars.join(format!("BootOrder-{GLOBAL}")),
        [7, 0, 0, 0, 5, 0],
    )
    .unwrap();
    let esp_img = t.path().join("esp.img");
    std::fs::File::create(&esp_img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    tool(
        "sgdisk",
        &[
            "-n",
            "1:2048:+32M",
            "-t",
            "1:EF00",
            "-u",
            &format!("1:{ESP_GUID}"),
            s(&esp_img),
        ],
    );
    std::fs::write(t.path().join("vmlinuz"), b"MZ kernel").unwrap();
    std::fs::write(t.path().join("initrd.img"), vec![0x1f; 4096]).unwrap();
    Machine {
        t,
        root,
        efivars,
        esp,
        esp_img,
    }
}

/// `ironclone rescue VERB` on the machine's root and efivars, plus `extra`.
/// `rescue install --boot BOOT` of the machine's kernel and initramfs (a BIOS machine).
fn install_bios(m: &Machine, boot: &Path) -> Out {
    let (k, i) = (m.t.path().join("vmlinuz"), m.t.path().join("initrd.img"));
    ic(&[
        "rescue",
        "install",
        "--root",
        s(&m.root),
        "--boot",
        s(boot),
        "--kernel",
        s(&k),
        "--initramfs",
        s(&i),
        "--root-uuid",
        "ABCD-1234",
        "--yes",
    ])
}

fn rescue(m: &Machine, verb: &str, extra: &[&str]) -> Out {
    let mut a = vec![
        "rescue",
        verb,
        "--root",
        s(&m.root),
        "--efivars",
        s(&m.efivars),
    ];
    a.extend_from_slice(extra);
    ic(&a)
}

fn install(m: &Machine, extra: &[&str]) -> Out {
    install_part(m, 1, extra)
}

fn install_part(m: &Machine, n: u32, extra: &[&str]) -> Out {
    let k = m.t.path().join("vmlinuz");
    let i = m.t.path().join("initrd.img");
    let part = format!("{}:{n}", s(&m.esp_img));
    let mut a = vec![
        "rescue",
        "install",
        "--root",
        s(&m.root),
        "--efivars",
        s(&m.efivars),
        "--esp",
        s(&m.esp),
        "--esp-partition",
        &part,
        "--kernel",
        s(&k),
        "--initramfs",
        s(&i),
        "--root-uuid",
        "6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e000a",
        "--append",
        "console=ttyS0,115200",
    ];
    a.extend_from_slice(extra);
    ic(&a)
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

#[test]
fn install_status_remove_uefi() {
    let m = machine();
    // Without --yes nothing is written.
    let o = install(&m, &[]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("add --yes"), "{}", o.stderr);
    assert!(std::fs::read_dir(&m.esp).unwrap().next().is_none());
    assert!(var(&m.efivars, "Boot0000").is_none());

    let o = install(&m, &["--yes"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("Boot0000"), "{}", o.stdout);
    assert_eq!(
        std::fs::read(m.esp.join("EFI/ironclone/vmlinuz")).unwrap(),
        b"MZ kernel"
    );
    assert_eq!(
        std::fs::read(m.esp.join("EFI/ironclone/initrd.img")).unwrap(),
        vec![0x1f; 4096]
    );
    // The load option: NV|BS|RT, active, our description, HD() of partition 1 with the
    // GPT GUID from esp.img, File(\EFI\ironclone\vmlinuz), the command line in UCS-2.
    let b = var(&m.efivars, "Boot0000").expect("Boot0000 written");
    assert_eq!(&b[..8], &[7, 0, 0, 0, 1, 0, 0, 0]);
    let hay = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
    assert!(hay(&utf16("ironclone rescue\0")));
    assert!(hay(&utf16("\\EFI\\ironclone\\vmlinuz\0")));
    let guid = uuid::Uuid::parse_str(ESP_GUID).unwrap().to_bytes_le();
    assert!(hay(&guid), "the ESP's partition GUID in HD()");
    assert!(hay(&2048u64.to_le_bytes()), "the ESP's start LBA in HD()");
    let cmdline = "initrd=\\EFI\\ironclone\\initrd.img ironclone.run=schedule+run+--rescue+6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e000a ironclone.reboot=1 panic=10 console=ttyS0,115200\0";
    assert!(b.ends_with(&utf16(cmdline)));
    // Not in BootOrder: a normal boot never starts it.
    assert_eq!(
        var(&m.efivars, "BootOrder").unwrap(),
        vec![7, 0, 0, 0, 5, 0]
    );
    assert!(var(&m.efivars, "BootNext").is_none());

    // Installing again reuses the entry.
    let o = install(&m, &["--yes"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(var(&m.efivars, "Boot0001").is_none());

    let o = rescue(&m, "status", &["--json"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["nvram_entry"], 0);
    assert_eq!(v["entry"]["firmware"], "uefi");

    // The entry gone from NVRAM (a firmware reset) shows as broken.
    std::fs::remove_file(m.efivars.join(format!("Boot0000-{GLOBAL}"))).unwrap();
    let o = rescue(&m, "status", &[]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("BROKEN") && o.stdout.contains("MISSING"),
        "{}",
        o.stdout
    );
    let o = install(&m, &["--yes"]);
    assert_eq!(o.code, 0, "{}", o.stderr);

    let o = rescue(&m, "remove", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(var(&m.efivars, "Boot0000").is_none());
    assert!(!m.esp.join("EFI/ironclone").exists());
    assert_eq!(
        var(&m.efivars, "BootOrder").unwrap(),
        vec![7, 0, 0, 0, 5, 0]
    );
    let o = rescue(&m, "status", &[]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("not installed"));
}

#[test]
fn install_refuses_bad_input_before_writing() {
    let m = machine();
    let o = install(&m, &["--yes", "--append", "a;reboot"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("kernel argument"), "{}", o.stderr);
    let o = install(&m, &["--yes", "--root-uuid", "x y"]);
    assert_ne!(o.code, 0);
    // Partition 2 does not exist on esp.img.
    let o = install_part(&m, 2, &["--yes"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no partition 2"), "{}", o.stderr);
    assert!(std::fs::read_dir(&m.esp).unwrap().next().is_none());
    assert!(var(&m.efivars, "Boot0000").is_none());
    assert!(!m.root.join("etc/ironclone/rescue-entry.json").exists());
}

#[test]
fn install_bios_writes_a_grub_script() {
    let m = machine();
    let boot = m.root.join("boot");
    let o = install_bios(&m, &boot);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(boot.join("ironclone/vmlinuz").is_file());
    let script = m.root.join("etc/grub.d/42_ironclone-rescue");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o111,
        0o111
    );
    // What update-grub would put in grub.cfg.
    let printed = tool("sh", &[s(&script)]);
    assert!(
        printed.starts_with("menuentry 'ironclone rescue' --id ironclone-rescue {"),
        "{printed}"
    );
    assert!(printed.contains(
        "linux $icdir/vmlinuz ironclone.run=schedule+run+--rescue+ABCD-1234 ironclone.reboot=1 panic=10\n"
    ));
    let o = ic(&["rescue", "remove", "--root", s(&m.root)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!script.exists() && !boot.join("ironclone").exists());
}

#[test]
#[ignore = "needs root"]
fn mounted_disk_requests_the_rescue_entry_once_per_run() {
    let m = machine();
    let disk = m.t.path().join("d1.img");
    ext4_image(&disk, 16, None);
    let repo = m.t.path().join("repo");
    let o = init(&m.root, s(&repo), &[&disk], "1G", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mp = m.t.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    tool("mount", &["-o", "loop", s(&disk), s(&mp)]);
    let _m = Mounted(mp.clone());
    let run = || {
        ic(&[
            "schedule",
            "run",
            "--root",
            s(&m.root),
            "--efivars",
            s(&m.efivars),
            "--no-reboot",
        ])
    };
    // No entry installed: the run fails and says what to do.
    let o = run();
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("rescue-entry mode") && o.stderr.contains("ironclone rescue install"),
        "{}",
        o.stderr
    );
    assert!(var(&m.efivars, "BootNext").is_none());

    let o = install(&m, &["--yes"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run();
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout
            .contains("rescue run requested (BootNext=Boot0000)"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("mounted read-write"), "{}", o.stdout);
    assert_eq!(var(&m.efivars, "BootNext").unwrap(), vec![7, 0, 0, 0, 0, 0]);
    assert_eq!(
        var(&m.efivars, "BootOrder").unwrap(),
        vec![7, 0, 0, 0, 5, 0]
    );
    assert!(
        !repo.exists(),
        "the repository is the rescue run's business"
    );
    let (_, st) = status_json(&m.root);
    assert_eq!(st["pending_rescue"]["how"], "BootNext=Boot0000");
    let text = ic(&["schedule", "status", "--root", s(&m.root)]);
    assert!(text.stdout.contains("not reported yet"), "{}", text.stdout);

    // The rescue boot never happened (BootNext consumed, nothing recorded): the next
    // run says so in the state and asks again.
    std::fs::remove_file(m.efivars.join(format!("BootNext-{GLOBAL}"))).unwrap();
    let o = run();
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (code, st) = status_json(&m.root);
    assert_eq!(code, 1, "an unanswered request is a failure in status");
    assert!(
        st["last_run"]["error"]
            .as_str()
            .unwrap()
            .contains("never reported back"),
        "{st}"
    );
    assert!(st["pending_rescue"].is_object());
    assert!(var(&m.efivars, "BootNext").is_some());
}

#[test]
#[ignore = "needs root"]
fn mounted_disk_on_bios_sets_grub_next_entry_after_checking_grub_cfg() {
    let m = machine();
    let boot = m.root.join("boot");
    std::fs::create_dir_all(boot.join("grub")).unwrap();
    let disk = m.t.path().join("d1.img");
    ext4_image(&disk, 16, None);
    let repo = m.t.path().join("repo");
    let o = init(&m.root, s(&repo), &[&disk], "1G", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = install_bios(&m, &boot);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mp = m.t.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    tool("mount", &["-o", "loop", s(&disk), s(&mp)]);
    let _m = Mounted(mp.clone());
    let run = || ic(&["schedule", "run", "--root", s(&m.root), "--no-reboot"]);
    let env = boot.join("grub/grubenv");
    // grub.cfg was not regenerated since the install (with --root that is the
    // system's job): GRUB would boot the installed system; the run refuses and says so.
    std::fs::write(boot.join("grub/grub.cfg"), "menuentry 'os' {\n}\n").unwrap();
    let o = run();
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("has no menu entry ironclone-rescue") && o.stderr.contains("update-grub"),
        "{}",
        o.stderr
    );
    assert!(!env.exists(), "nothing written");
    // What update-grub makes: grub-mkconfig's next_entry header, then the scripts.
    let header = "load_env\nif [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\n   \
                  set next_entry=\n   save_env next_entry\nfi\n";
    let entry = tool("sh", &[s(&m.root.join("etc/grub.d/42_ironclone-rescue"))]);
    std::fs::write(boot.join("grub/grub.cfg"), format!("{header}{entry}")).unwrap();
    let o = run();
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let how = format!(
        "grub-reboot ironclone-rescue: next_entry in {}",
        env.display()
    );
    assert!(
        o.stdout.contains(&format!("rescue run requested ({how})")),
        "{}",
        o.stdout
    );
    let list = tool("grub-editenv", &[s(&env), "list"]);
    assert!(
        list.lines().any(|l| l == "next_entry=ironclone-rescue"),
        "{list}"
    );
    let (_, st) = status_json(&m.root);
    assert_eq!(st["pending_rescue"]["how"], how.as_str());
    assert!(
        !repo.exists(),
        "the repository is the rescue run's business"
    );
}

#[test]
#[ignore = "needs root"]
fn rescue_run_images_from_the_installed_root_and_records_there() {
    let t = tempfile::tempdir().unwrap();
    // The "installed root": an ext4 filesystem with a schedule naming a disk image
    // file and a repository on the host, found by its UUID through blkid.
    let uuid = "6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e00ff";
    let rootimg = t.path().join("root.img");
    ext4_image(&rootimg, 16, Some(uuid));
    let disk = t.path().join("d1.img");
    ext4_image(&disk, 16, None);
    let repo = t.path().join("repo");
    let staging = t.path().join("staging");
    let o = init(&staging, s(&repo), &[&disk], "1G", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let cfg = staging.join("etc/ironclone/schedule.json");
    tool("debugfs", &["-w", "-R", "mkdir /etc", s(&rootimg)]);
    tool(
        "debugfs",
        &["-w", "-R", "mkdir /etc/ironclone", s(&rootimg)],
    );
    tool(
        "debugfs",
        &[
            "-w",
            "-R",
            &format!("write {} /etc/ironclone/schedule.json", s(&cfg)),
            s(&rootimg),
        ],
    );
    std::fs::write(t.path().join("hostname"), "pc7\n").unwrap();
    tool(
        "debugfs",
        &[
            "-w",
            "-R",
            &format!("write {} /etc/hostname", s(&t.path().join("hostname"))),
            s(&rootimg),
        ],
    );
    let lo = tool("losetup", &["-f", "--show", s(&rootimg)]);
    let lo = lo.trim().to_string();
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").args(["-d", &self.0]).status();
        }
    }
    let _d = Detach(lo.clone());

    let o = ic(&["schedule", "run", "--rescue", uuid]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("(rescue)"), "{}", o.stdout);
    // The root is unmounted again, and its state file says what happened.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("installed-root"), "left mounted");
    let state = tool(
        "debugfs",
        &["-R", "cat /var/lib/ironclone/schedule-state.json", &lo],
    );
    let st: Value = serde_json::from_str(&state).expect(&state);
    assert_eq!(st["last_run"]["ok"], true, "{st}");
    assert_eq!(st["last_run"]["rescue"], true);
    let image = st["last_run"]["images"][0]["image"].as_str().unwrap();
    assert!(
        image.starts_with("pc7-d1.img-"),
        "{image}: the installed system's host name"
    );
    let o = ic(&["verify", s(&repo)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // Unknown UUID: a clear error, nothing mounted.
    let o = ic(&[
        "schedule",
        "run",
        "--rescue",
        "6b1e0d2a-0000-0000-0000-00000000dead",
    ]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no filesystem with UUID"), "{}", o.stderr);
}
