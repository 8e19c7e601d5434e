//! A real terminal for the TUI tests: one private tmux server per test, one 80x25
//! session (the Linux console's size) running a shell script, driven by keystrokes
//! and read back as text. Only a real tty shows raw mode, the alternate screen and
//! the terminal's restoration on exit; the server is killed on drop, so a failing
//! test leaves no session behind.

use std::process::Command;
use std::time::{Duration, Instant};

/// How often `wait_for` looks at the screen again.
const POLL: Duration = Duration::from_millis(100);

pub struct Tmux {
    socket: String,
    /// Pause after each key, so the TUI has drawn before the next one arrives.
    key_delay: Duration,
}

impl Tmux {
    /// Starts `script` in session `t`, 80x25, on a server named `<name>-<pid>`.
    pub fn start(name: &str, key_delay: Duration, script: &str) -> Tmux {
        let t = Tmux {
            socket: format!("{name}-{}", std::process::id()),
            key_delay,
        };
        t.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "80",
            "-y",
            "25",
            script,
        ]);
        t
    }

    /// Runs a tmux command on this server, asserts it succeeded and returns stdout.
    pub fn cmd(&self, args: &[&str]) -> String {
        let mut all = vec!["-L", self.socket.as_str()];
        all.extend_from_slice(args);
        super::run("tmux", &all)
    }

    /// Sends each key (tmux key names: "Enter", "Down", "a") with a pause after it.
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "t", k]);
            std::thread::sleep(self.key_delay);
        }
    }

    /// Types `text` one character at a time.
    pub fn type_text(&self, text: &str) {
        for c in text.chars() {
            self.keys(&[&c.to_string()]);
        }
    }

    /// Moves the selection down `n` rows.
    pub fn down(&self, n: usize) {
        for _ in 0..n {
            self.keys(&["Down"]);
        }
    }

    /// Moves the selection down `n` rows and picks that row.
    pub fn pick(&self, n: usize) {
        self.down(n);
        self.keys(&["Enter"]);
    }

    /// The visible pane as text.
    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits up to `secs` for `text` on the screen and returns that screen; fails the
    /// test with the last screen shown when it does not appear.
    pub fn wait_for(&self, text: &str, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(Instant::now() < end, "waited for {text:?}; screen:\n{s}");
            std::thread::sleep(POLL);
        }
    }

    /// Sends `keys`, then waits up to `secs` for `text`: one step through the screens.
    pub fn step(&self, keys: &[&str], text: &str, secs: u64) -> String {
        self.keys(keys);
        self.wait_for(text, secs)
    }

    /// tmux's `#{alternate_on}` for the pane: "1" while the TUI holds the alternate
    /// screen, "0" once the terminal is given back.
    pub fn alternate_on(&self) -> String {
        self.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim()
            .to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
