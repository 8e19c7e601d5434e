//! Drives the real binary in a real terminal (tmux, 80x25, TERM=linux) with keystrokes:
//! raw mode, the input thread, drawing and the terminal's restoration on exit, on the
//! demo data (`--demo-data`); tests/tui_real_tmux.rs drives the real services.

mod common;

use common::tmux::Tmux;
use std::process::Command;
use std::time::Duration;

const KEY_DELAY: Duration = Duration::from_millis(150);
const SECS: u64 = 20;

#[test]
fn backup_then_restore_by_keystrokes_in_a_real_terminal() {
    let bin = env!("CARGO_BIN_EXE_ironclone");
    let script =
        format!("TERM=linux IRONCLONE_DEMO_STEP_MS=5 {bin} --demo-data; echo EXIT=$?; sleep 60");
    let t = Tmux::start("ironclone-tui", KEY_DELAY, &script);
    t.wait_for("What do you want to do?", SECS);
    assert_eq!(t.alternate_on(), "1");

    // Backup: sda -> /dev/sdd1 -> default name -> summary -> run -> verify -> done.
    t.step(&["b"], "Windows on partition 3 is hibernated", SECS);
    t.step(&["Enter"], "Seagate Expansion", SECS);
    t.step(&["Enter"], "samsung-ssd-860-evo-500gb-2026-11-23", SECS);
    t.step(&["Enter"], "Backup: check and start", SECS);
    let done = t.step(&["Enter"], "Verified:", SECS);
    assert!(done.contains("every chunk read back"), "{done}");
    t.keys(&["Enter"]);

    // Restore onto nvme0n1: the plan, a refused confirmation, then the exact name.
    t.step(
        &["r", "Enter", "Down", "Enter", "Down", "Down", "Enter"],
        "new start",
        SECS,
    );
    t.step(&["Enter"], "ERASE EVERYTHING", SECS);
    t.step(&["s", "d", "a", "Enter"], "That does not match", SECS);
    t.keys(&["BSpace", "BSpace", "BSpace"]);
    t.type_text("nvme0n1");
    let done = t.step(&["Enter"], "Boot repairs done:", SECS);
    assert!(done.contains("restored onto /dev/nvme0n1"), "{done}");
    t.step(&["Enter", "q", "y"], "EXIT=0", SECS);
    assert_eq!(
        t.alternate_on(),
        "0",
        "the terminal must leave the alternate screen on exit"
    );
}

/// Builds the probe example (a plain `cargo test --test tui_tmux` does not) and returns
/// its path next to the test binaries: target/<profile>/examples.
fn probe_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let p = profile_dir.join("examples").join("tui_panic_probe");
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--example", "tui_panic_probe"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example");
        assert!(st.success(), "building the panic probe failed");
    }
    assert!(p.exists(), "{} missing after the build", p.display());
    p
}

#[test]
fn a_panic_restores_the_terminal_and_shows_the_message() {
    let bin = probe_bin();
    let script = format!(
        "TERM=linux RUST_BACKTRACE=0 {} 2>&1; echo EXIT=$?; sleep 60",
        bin.display()
    );
    let t = Tmux::start("ironclone-tui-panic", KEY_DELAY, &script);
    let s = t.wait_for("EXIT=", SECS);
    assert!(
        s.contains("deliberate panic"),
        "the panic message must be readable:\n{s}"
    );
    assert_eq!(
        t.alternate_on(),
        "0",
        "a panic must leave the alternate screen"
    );
    // Raw mode off: the shell's line discipline echoes and handles Enter again.
    t.cmd(&["send-keys", "-t", "t", "x", "y"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        t.screen().contains("xy"),
        "typed keys echo after the panic (cooked mode)"
    );
}
