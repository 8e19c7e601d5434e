//! Drives the real binary in a real terminal (tmux, 80x25, TERM=linux) with keystrokes:
//! raw mode, the input thread, drawing and the terminal's restoration on exit, on the
//! demo data (`--demo-data`); tests/tui_real_tmux.rs drives the real services.

use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is required for this test (apt-get install tmux)");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "t", k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    fn wait_for(&self, text: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(Instant::now() < end, "waited for {text:?}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn backup_then_restore_by_keystrokes_in_a_real_terminal() {
    let bin = env!("CARGO_BIN_EXE_ironclone");
    let t = Tmux {
        socket: format!("ironclone-tui-{}", std::process::id()),
    };
    let script =
        format!("TERM=linux IRONCLONE_DEMO_STEP_MS=5 {bin} --demo-data; echo EXIT=$?; sleep 60");
    t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "80",
        "-y",
        "25",
        &script,
    ]);
    t.wait_for("What do you want to do?");
    assert_eq!(
        t.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
        "1"
    );

    // Backup: sda -> /dev/sdd1 -> default name -> summary -> run -> verify -> done.
    t.keys(&["b"]);
    t.wait_for("Windows on partition 3 is hibernated");
    t.keys(&["Enter"]);
    t.wait_for("Seagate Expansion");
    t.keys(&["Enter"]);
    t.wait_for("samsung-ssd-860-evo-500gb-2026-11-23");
    t.keys(&["Enter"]);
    t.wait_for("Backup: check and start");
    t.keys(&["Enter"]);
    let done = t.wait_for("Verified:");
    assert!(done.contains("every chunk read back"), "{done}");
    t.keys(&["Enter"]);

    // Restore onto nvme0n1: the plan, a refused confirmation, then the exact name.
    t.keys(&["r", "Enter", "Down", "Enter", "Down", "Down", "Enter"]);
    t.wait_for("new start");
    t.keys(&["Enter"]);
    t.wait_for("ERASE EVERYTHING");
    t.keys(&["s", "d", "a", "Enter"]);
    t.wait_for("That does not match");
    t.keys(&["BSpace", "BSpace", "BSpace"]);
    for c in "nvme0n1".chars() {
        t.keys(&[&c.to_string()]);
    }
    t.keys(&["Enter"]);
    let done = t.wait_for("Boot repairs done:");
    assert!(done.contains("restored onto /dev/nvme0n1"), "{done}");
    t.keys(&["Enter", "q", "y"]);
    t.wait_for("EXIT=0");
    assert_eq!(
        t.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
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
    let t = Tmux {
        socket: format!("ironclone-tui-panic-{}", std::process::id()),
    };
    let script = format!(
        "TERM=linux RUST_BACKTRACE=0 {} 2>&1; echo EXIT=$?; sleep 60",
        bin.display()
    );
    t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "80",
        "-y",
        "25",
        &script,
    ]);
    let s = t.wait_for("EXIT=");
    assert!(
        s.contains("deliberate panic"),
        "the panic message must be readable:\n{s}"
    );
    assert_eq!(
        t.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
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
