//! The LUKS passphrase of an image that holds the plaintext of encrypted volumes,
//! drawn as stars, never as text.

use super::passphrase::{self, Prompt};
use crate::tui::model::ImageView;
use ratatui::Frame;

pub fn draw(image: Option<&ImageView>, password_len: usize, note: Option<&str>, f: &mut Frame) {
    let prompt = Prompt {
        title: "The image's LUKS passphrase",
        keys: "type  Enter check  Esc back",
        label: "Image",
        name: image.map_or("", |i| i.name.as_str()),
        about: &[
            "The image holds the decrypted contents of encrypted (LUKS) volumes.",
            "Restoring writes their headers back and opens the volumes with a",
            "passphrase the headers accept; it is checked now, before the plan.",
        ],
    };
    passphrase::draw(&prompt, password_len, note, f);
}
