//! The share login: a typed `//server/share` that a guest could not mount gets a user
//! name and password field, and is mounted again with them. The password is held as
//! `share::Password` (it never prints itself) and drawn as stars.

use super::input::edit;
use super::{App, Screen};
use crate::share::Password;
use crate::tui::model::RepoTarget;
use crossterm::event::{KeyCode, KeyEvent};

impl App {
    /// After a failed open: a typed SMB share gets the login screen (showing why the
    /// open failed), anything else the failure as a note.
    pub(super) fn ask_share_login(&mut self, target: &RepoTarget, why: String) {
        let location = match target {
            RepoTarget::Path(p) => p.to_string_lossy().into_owned(),
            RepoTarget::Share { .. } | RepoTarget::Partition(_) | RepoTarget::Remote { .. } => {
                return self.set_note(Some(why));
            }
        };
        if !crate::share::is_smb_location(&location) {
            return self.set_note(Some(why));
        }
        self.push(Screen::ShareLogin {
            location,
            user: String::new(),
            password: Password::default(),
            on_password: false,
            note: Some(why),
        });
    }

    pub(super) fn on_share_login(&mut self, k: &KeyEvent) {
        let Some(Screen::ShareLogin {
            location,
            user,
            password,
            on_password,
            ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        match k.code {
            KeyCode::Esc => {
                self.back();
                self.stop_opening();
            }
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                *on_password = !*on_password
            }
            KeyCode::Enter if !*on_password => *on_password = true,
            KeyCode::Enter => {
                let target = RepoTarget::Share {
                    location: location.clone(),
                    user: user.trim().to_string(),
                    password: password.clone(),
                };
                self.choose_repo(target);
            }
            _ if *on_password => {
                edit(password, k);
            }
            _ => {
                edit(user, k);
            }
        }
    }
}
