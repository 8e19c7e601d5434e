//! The passphrase of an encrypted repository, drawn as stars, never as text.

use super::passphrase::{self, Prompt};
use ratatui::Frame;
use std::path::Path;

pub fn draw(repo: &Path, password_len: usize, note: Option<&str>, f: &mut Frame) {
    let name = repo.display().to_string();
    let prompt = Prompt {
        title: "Unlock the encrypted repository",
        keys: "type  Enter unlock  Esc back",
        label: "Repository",
        name: &name,
        about: &[
            "Its images, index and chunks are encrypted; any of its passphrases",
            "(key slots) opens it for the rest of this session.",
        ],
    };
    passphrase::draw(&prompt, password_len, note, f);
}
